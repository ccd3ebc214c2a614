//! Attachments from and to files, streamed (spec/content.md CONTENT-25a to CONTENT-25k): a
//! file is encrypted chunk by chunk to a temporary file, uploaded with progress and resumed
//! after a cut connection; a download goes to a temporary file beside the target, then is
//! decrypted chunk by chunk and renamed into place only when it all checked out. Memory stays
//! at a few chunks whatever the file size. Blobs of deleted and expired messages are erased
//! from the store ([`Client::erase_deleted_blobs`]).

use std::path::{Path, PathBuf};

use super::{Client, Error, Message};
use crate::blob::{BlobError, ProgressFn};
use crate::content::{
    decrypt_stream_to_path, encrypt_stream, Attachment, AttachmentCodec, AttachmentSource,
    ContentCodec as _, StreamedAttachment, MAX_INLINE_ATTACHMENT,
};
use crate::group::{mailbox_for, GroupId};
use crate::storage::{blob_erasure, tables};

/// Queued erasures handled per call.
const ERASE_BATCH: u32 = 256;

/// A file removed when dropped (the temporaries of a transfer, whatever happens).
struct TempFile(PathBuf);

impl TempFile {
    fn beside(dir: &Path) -> Self {
        let name = format!(".atmls-{}", hex::encode(rand::random::<[u8; 8]>()));
        TempFile(dir.join(name))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn parent_of(target: &Path) -> &Path {
    target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

impl Client {
    /// Behind [`Conversation::attach_file`](super::Conversation::attach_file).
    pub(crate) async fn attach_file(
        &self,
        group: &GroupId,
        path: &Path,
        filename: &str,
        mime_type: &str,
        progress: ProgressFn<'_>,
    ) -> Result<Message, Error> {
        let size = tokio::fs::metadata(path)
            .await
            .map_err(BlobError::from)?
            .len();
        if size <= MAX_INLINE_ATTACHMENT as u64 {
            let data = tokio::fs::read(path).await.map_err(BlobError::from)?;
            return self.attach(group, filename, mime_type, &data).await;
        }
        let blobs = self.blob_store.as_ref().ok_or(Error::NoBlobStore)?;
        let tmp = TempFile::beside(&std::env::temp_dir());
        let sealed = {
            let mut input = tokio::io::BufReader::new(
                tokio::fs::File::open(path).await.map_err(BlobError::from)?,
            );
            let mut output = tokio::io::BufWriter::new(
                tokio::fs::File::create(&tmp.0)
                    .await
                    .map_err(BlobError::from)?,
            );
            encrypt_stream(&mut input, &mut output).await?
        };
        let cap = self.current_mailbox(group).await?.post_secret;
        let url = blobs.put_file(cap.as_ref(), &tmp.0, progress).await?;
        let a = Attachment {
            filename: filename.to_owned(),
            mime_type: mime_type.to_owned(),
            size: sealed.size,
            source: AttachmentSource::Streamed(StreamedAttachment {
                url,
                digest: sealed.digest,
                key: sealed.key,
            }),
        };
        self.send_content(group, &AttachmentCodec::encode(&a)?)
            .await
    }

    /// Writes the bytes of `attachment` to the file `target`: a streamed blob is downloaded
    /// to a temporary file beside `target` (`progress` told after each piece; resumed after a
    /// cut connection where the store can), then decrypted chunk by chunk into another one,
    /// renamed to `target` only once every chunk, the padding and the digest checked out
    /// (CONTENT-25f). On any error `target` is untouched and the temporaries are gone.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # use std::sync::Arc;
    /// # use atmls::{Client, directory::MemoryDirectory, transport::MemoryTransport, storage::Store};
    /// # use atmls::identity::DeviceIdentity;
    /// # let (dir, net) = (Arc::new(MemoryDirectory::new()), Arc::new(MemoryTransport::new()));
    /// # let alice = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    /// #     .identity(DeviceIdentity::new_account("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?)).build().await?;
    /// # let bob = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    /// #     .identity(DeviceIdentity::new_account("did:plc:bbbbbbbbbbbbbbbbbbbbbbbb".parse()?)).build().await?;
    /// use atmls::content::Content;
    /// let dm = alice.dm(bob.did()).await?;
    /// let sent = alice.conversation(&dm).attach("note.txt", "text/plain", b"hello").await?;
    /// bob.sync().await?;
    /// let item = bob.conversation(&dm).message(&sent.id).await?.expect("delivered");
    /// let Some(Content::Attachment(a)) = item.decoded() else { panic!("an attachment") };
    /// let dir = std::env::temp_dir().join(format!("atmls-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir)?;
    /// let target = dir.join("note.txt");
    /// bob.download_to(&a, &target, &atmls::blob::no_progress).await?;
    /// assert_eq!(std::fs::read(&target)?, b"hello");
    /// std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn download_to(
        &self,
        attachment: &Attachment,
        target: &Path,
        progress: ProgressFn<'_>,
    ) -> Result<(), Error> {
        let r = match &attachment.source {
            AttachmentSource::Streamed(r) => r,
            _ => {
                // Inline and whole-file blobs are small or held whole anyway.
                let data = self.download(attachment).await?;
                let tmp = TempFile::beside(parent_of(target));
                tokio::fs::write(&tmp.0, &data)
                    .await
                    .map_err(BlobError::from)?;
                tokio::fs::rename(&tmp.0, target)
                    .await
                    .map_err(BlobError::from)?;
                return Ok(());
            }
        };
        let blobs = self.blob_store.as_ref().ok_or(Error::NoBlobStore)?;
        let blob = TempFile::beside(parent_of(target));
        blobs.get_to_file(&r.url, &blob.0, progress).await?;
        decrypt_stream_to_path(&r.key, &r.digest, attachment.size, &blob.0, target).await?;
        Ok(())
    }

    /// Erases from the blob store the blobs of attachments whose messages were deleted or
    /// expired on this device (CONTENT-25k); done by every [`sync`](Self::sync) and
    /// [`purge_expired`](Self::purge_expired). Each device of each member erases them (the
    /// first that reaches the store does; the others find them gone). A blob the store could
    /// not be reached for stays queued for the next call. Returns how many were erased or
    /// found gone.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # use std::sync::Arc;
    /// # use atmls::{Client, directory::MemoryDirectory, transport::MemoryTransport, storage::Store};
    /// # use atmls::identity::DeviceIdentity;
    /// # let (dir, net) = (Arc::new(MemoryDirectory::new()), Arc::new(MemoryTransport::new()));
    /// # let blobs = Arc::new(atmls::blob::MemoryBlobStore::new());
    /// # let alice = Client::builder(dir.clone(), net.clone(), Store::in_memory()?).blob_store(blobs.clone())
    /// #     .identity(DeviceIdentity::new_account("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?)).build().await?;
    /// # let bob = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    /// #     .identity(DeviceIdentity::new_account("did:plc:bbbbbbbbbbbbbbbbbbbbbbbb".parse()?)).build().await?;
    /// let dm = alice.dm(bob.did()).await?;
    /// let sent = alice.conversation(&dm).attach("big.bin", "application/octet-stream", &vec![3u8; 300_000]).await?;
    /// alice.conversation(&dm).delete(&sent.id).await?;
    /// // The deleted message's blob goes from the store (a sync does this too).
    /// assert_eq!(alice.erase_deleted_blobs().await?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn erase_deleted_blobs(&self) -> Result<usize, Error> {
        let pending = self
            .session()
            .await
            .inner
            .atomic(|cx| blob_erasure::pending(cx.c, ERASE_BATCH))?;
        let Some(blobs) = self.blob_store.as_ref() else {
            return Ok(0);
        };
        let mut done = 0;
        for (url, group) in pending {
            match erase(
                blobs.as_ref(),
                &self.group_capabilities(&group).await?,
                &url,
            )
            .await
            {
                Err(e) if e.is_retryable() => {
                    tracing::debug!(error = %e, "blob erasure: store unreachable, kept queued");
                    continue;
                }
                Err(e) => tracing::warn!(error = %e, "blob erasure refused; dropped"),
                Ok(_) => {}
            }
            self.session()
                .await
                .inner
                .atomic(|cx| blob_erasure::done(cx.c, &url))?;
            done += 1;
        }
        Ok(done)
    }
}

/// Erases a blob stored under one of a group's capabilities, newest first (GROUP-4a: the
/// mailbox it was stored in may be one the group moved from); `Ok(false)` if none holds it.
async fn erase(
    blobs: &dyn crate::blob::BlobStore,
    caps: &[[u8; 32]],
    url: &str,
) -> Result<bool, BlobError> {
    if caps.is_empty() {
        return blobs.delete(None, url).await;
    }
    for cap in caps {
        if blobs.delete(Some(cap), url).await? {
            return Ok(true);
        }
    }
    Ok(false)
}

impl Client {
    /// Every capability `group`'s mailbox had, the current one first (GROUP-4a); for a
    /// group this device no longer has, the one derived from its id.
    async fn group_capabilities(&self, group: &[u8]) -> Result<Vec<[u8; 32]>, Error> {
        let caps = self
            .session()
            .await
            .inner
            .read(|c| tables::group_capabilities(c, group))?;
        Ok(match caps.is_empty() {
            true => mailbox_for(group).post_secret.into_iter().collect(),
            false => caps,
        })
    }
}
