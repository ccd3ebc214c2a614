//! The typed-content half of the client API: replies, reactions, receipts, typing,
//! attachments, edits, deletes, history queries and disappearing messages
//! (spec/content.md CONTENT-17 to CONTENT-30).

use std::time::Duration;

use super::history::{self, HistoryCursor, HistoryItem, HistoryPage, ReadPosition, Revision};
use super::outgoing::Intent;
use super::{Client, Error, Message, Session};
use crate::content::{
    decrypt_stream, encrypt_stream, Attachment, AttachmentCodec, AttachmentSource,
    ContentCodec as _, Delete, DeleteCodec, Edit, EditCodec, EncodedContent, MarkdownCodec,
    MessageId, Reaction, ReactionAction, ReactionCodec, ReadReceipt, ReadReceiptCodec, Reply,
    ReplyCodec, StreamedAttachment, Typing, TypingCodec, MAX_INLINE_ATTACHMENT,
};
use crate::group::{disappearing_secs, GroupId, MAX_DISAPPEARING_SECS};
use crate::storage::history as store;

/// Most items one history page or search returns.
const MAX_PAGE: u32 = 500;

impl Session<'_> {
    /// Deletes the disappearing messages that expired by `now`, in one transaction.
    pub(crate) fn purge_expired(&mut self, now: u64) -> Result<usize, Error> {
        self.inner
            .atomic(|cx| Ok::<_, Error>(store::purge_expired(cx.c, now)?))
    }
}

impl Client {
    /// Behind [`Conversation::send_content`](super::Conversation::send_content).
    pub(crate) async fn send_content(
        &self,
        group: &GroupId,
        content: &EncodedContent,
    ) -> Result<Message, Error> {
        self.session().await.send(group, content, true).await
    }

    /// Sends content without checking it against this device's history, as a modified
    /// client could: for tests of what receivers enforce (CONTENT-29).
    #[cfg(feature = "test-utils")]
    #[doc(hidden)]
    pub async fn send_unchecked(
        &self,
        group: &GroupId,
        content: &EncodedContent,
    ) -> Result<Message, Error> {
        self.session().await.send(group, content, false).await
    }

    /// Behind [`Conversation::send_markdown`](super::Conversation::send_markdown).
    pub(crate) async fn send_markdown(
        &self,
        group: &GroupId,
        markdown: &str,
    ) -> Result<Message, Error> {
        self.send_content(group, &MarkdownCodec::encode(&markdown.to_owned())?)
            .await
    }

    /// Behind [`Conversation::reply`](super::Conversation::reply).
    pub(crate) async fn reply(
        &self,
        group: &GroupId,
        to: &MessageId,
        content: EncodedContent,
    ) -> Result<Message, Error> {
        let reply = Reply {
            in_reply_to: *to,
            content,
        };
        self.send_content(group, &ReplyCodec::encode(&reply)?).await
    }

    /// Behind [`Conversation::react`](super::Conversation::react).
    pub(crate) async fn react(
        &self,
        group: &GroupId,
        to: &MessageId,
        emoji: &str,
    ) -> Result<Message, Error> {
        self.reaction(group, to, emoji, ReactionAction::Add).await
    }

    /// Behind [`Conversation::unreact`](super::Conversation::unreact).
    pub(crate) async fn unreact(
        &self,
        group: &GroupId,
        to: &MessageId,
        emoji: &str,
    ) -> Result<Message, Error> {
        self.reaction(group, to, emoji, ReactionAction::Remove)
            .await
    }

    async fn reaction(
        &self,
        group: &GroupId,
        to: &MessageId,
        emoji: &str,
        action: ReactionAction,
    ) -> Result<Message, Error> {
        let r = Reaction {
            target: *to,
            action,
            emoji: emoji.to_owned(),
        };
        self.send_content(group, &ReactionCodec::encode(&r)?).await
    }

    /// Behind [`Conversation::mark_read`](super::Conversation::mark_read).
    pub(crate) async fn mark_read(
        &self,
        group: &GroupId,
        up_to: &MessageId,
    ) -> Result<Message, Error> {
        let r = ReadReceipt { up_to: *up_to };
        self.send_content(group, &ReadReceiptCodec::encode(&r)?)
            .await
    }

    /// Behind [`Conversation::read_positions`](super::Conversation::read_positions).
    pub(crate) async fn read_positions(&self, group: &GroupId) -> Result<Vec<ReadPosition>, Error> {
        let s = self.session().await;
        let rows = s.inner.read(|c| store::receipts_of(c, &group.0))?;
        Ok(rows
            .into_iter()
            .map(|(did, id, at)| ReadPosition {
                did,
                up_to: MessageId::from_bytes(id),
                at,
            })
            .collect())
    }

    /// Behind [`Conversation::typing`](super::Conversation::typing).
    pub(crate) async fn typing(&self, group: &GroupId, typing: bool) -> Result<Message, Error> {
        self.send_content(group, &TypingCodec::encode(&Typing { typing })?)
            .await
    }

    /// Behind [`Conversation::attach`](super::Conversation::attach).
    pub(crate) async fn attach(
        &self,
        group: &GroupId,
        filename: &str,
        mime_type: &str,
        data: &[u8],
    ) -> Result<Message, Error> {
        let size = u64::try_from(data.len())
            .map_err(|_| Error::InvalidArgument("attachment too large"))?;
        let source = if data.len() <= MAX_INLINE_ATTACHMENT {
            AttachmentSource::Inline(data.to_vec())
        } else {
            let blobs = self.blob_store.as_ref().ok_or(Error::NoBlobStore)?;
            let mut blob = Vec::new();
            let sealed = encrypt_stream(&mut &data[..], &mut blob).await?;
            let cap = self.current_mailbox(group).await?.post_secret;
            AttachmentSource::Streamed(StreamedAttachment {
                url: blobs.put_for(cap.as_ref(), &blob).await?,
                digest: sealed.digest,
                key: sealed.key,
            })
        };
        let a = Attachment {
            filename: filename.to_owned(),
            mime_type: mime_type.to_owned(),
            size,
            source,
        };
        self.send_content(group, &AttachmentCodec::encode(&a)?)
            .await
    }

    /// The bytes of an attachment: inline data, or the blob fetched from the blob store
    /// with its digest checked before decryption (CONTENT-25). A tampered blob fails with
    /// [`ContentError::DigestMismatch`](crate::content::ContentError::DigestMismatch).
    /// See the example on [`Conversation::attach`](super::Conversation::attach).
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
    /// let sent = alice.conversation(&dm).attach("hi.txt", "text/plain", b"hi").await?;
    /// bob.sync().await?;
    /// let item = bob.conversation(&dm).message(&sent.id).await?.expect("delivered");
    /// let Some(Content::Attachment(a)) = item.decoded() else { panic!("an attachment") };
    /// assert_eq!(bob.download(&a).await?, b"hi");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn download(&self, attachment: &Attachment) -> Result<Vec<u8>, Error> {
        let data = match &attachment.source {
            AttachmentSource::Inline(d) => d.clone(),
            AttachmentSource::Remote(r) => {
                let blobs = self.blob_store.as_ref().ok_or(Error::NoBlobStore)?;
                r.decrypt(&blobs.get(&r.url).await?)?
            }
            AttachmentSource::Streamed(r) => {
                let blobs = self.blob_store.as_ref().ok_or(Error::NoBlobStore)?;
                let blob = blobs.get(&r.url).await?;
                let mut out = Vec::new();
                decrypt_stream(&r.key, &r.digest, attachment.size, &mut &blob[..], &mut out)
                    .await?;
                out
            }
        };
        if u64::try_from(data.len()).ok() != Some(attachment.size) {
            return Err(crate::content::ContentError::Malformed(
                "attachment size differs from the size in the message",
            )
            .into());
        }
        Ok(data)
    }

    /// Behind [`Conversation::edit`](super::Conversation::edit).
    pub(crate) async fn edit(
        &self,
        group: &GroupId,
        id: &MessageId,
        content: EncodedContent,
    ) -> Result<Message, Error> {
        let e = Edit {
            target: *id,
            content,
        };
        self.send_content(group, &EditCodec::encode(&e)?).await
    }

    /// Behind [`Conversation::edit_history`](super::Conversation::edit_history).
    pub(crate) async fn edit_history(
        &self,
        group: &GroupId,
        id: &MessageId,
    ) -> Result<Vec<Revision>, Error> {
        let s = self.session().await;
        let rows = s
            .inner
            .read(|c| store::edits_of(c, &group.0, id.as_bytes()))?;
        rows.into_iter()
            .map(|(_, bytes, at)| {
                Ok(Revision {
                    content: EncodedContent::from_bytes(&bytes)?,
                    at,
                })
            })
            .collect()
    }

    /// Behind [`Conversation::delete`](super::Conversation::delete).
    pub(crate) async fn delete(&self, group: &GroupId, id: &MessageId) -> Result<Message, Error> {
        self.send_content(group, &DeleteCodec::encode(&Delete { target: *id })?)
            .await
    }

    /// Behind [`Conversation::history`](super::Conversation::history).
    pub(crate) async fn history(
        &self,
        group: &GroupId,
        before: Option<HistoryCursor>,
        limit: u32,
    ) -> Result<HistoryPage, Error> {
        let limit = limit.clamp(1, MAX_PAGE);
        let s = self.session().await;
        let now = s.inner.now();
        let c = &s.inner.store.conn;
        let rows = store::page(c, &group.0, before.map(|b| b.0), limit, now)?;
        let full = rows.len() == limit as usize;
        let mut items = rows
            .into_iter()
            .map(|r| history::to_item(c, r))
            .collect::<Result<Vec<_>, _>>()?;
        items.reverse();
        let older = if full {
            items.first().map(|i| i.cursor)
        } else {
            None
        };
        // A blocked account's messages are hidden, not deleted (CONSENT-6).
        let blocked =
            crate::storage::consent::accounts_in(c, crate::trust::AccountConsent::Blocked)?;
        items.retain(|i| !blocked.iter().any(|d| *d == i.sender.did.as_str()));
        Ok(HistoryPage { items, older })
    }

    /// Behind [`Conversation::message`](super::Conversation::message).
    pub(crate) async fn message(
        &self,
        group: &GroupId,
        id: &MessageId,
    ) -> Result<Option<HistoryItem>, Error> {
        let s = self.session().await;
        let c = &s.inner.store.conn;
        let now = s.inner.now();
        Ok(store::get(c, &group.0, id.as_bytes(), now)?
            .map(|r| history::to_item(c, r))
            .transpose()?)
    }

    /// Full-text search over the decrypted history of one group (or all if `group` is
    /// `None`): items whose current text contains every word of `text` (case- and
    /// accent-insensitive, whole words), newest first, at most `limit` (≤ 500).
    /// Deleted and expired messages are not found (CONTENT-30).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # use std::sync::Arc;
    /// # use atmls::{Client, directory::MemoryDirectory, transport::MemoryTransport, storage::Store};
    /// # use atmls::identity::DeviceIdentity;
    /// # let (dir, net) = (Arc::new(MemoryDirectory::new()), Arc::new(MemoryTransport::new()));
    /// # let alice = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    /// #     .identity(DeviceIdentity::new_account("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?)).build().await?;
    /// # let bob = Client::builder(dir, net, Store::in_memory()?)
    /// #     .identity(DeviceIdentity::new_account("did:plc:bbbbbbbbbbbbbbbbbbbbbbbb".parse()?)).build().await?;
    /// let dm = alice.dm(bob.did()).await?;
    /// alice.conversation(&dm).send_text("the Café opens at nine").await?;
    /// alice.conversation(&dm).send_text("something else").await?;
    /// bob.sync().await?;
    /// let found = bob.search(Some(&dm), "cafe", 10).await?;
    /// assert_eq!(found.len(), 1);
    /// assert_eq!(found[0].text().as_deref(), Some("the Café opens at nine"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn search(
        &self,
        group: Option<&GroupId>,
        text: &str,
        limit: u32,
    ) -> Result<Vec<HistoryItem>, Error> {
        let Some(q) = history::fts_query(text) else {
            return Ok(Vec::new());
        };
        let s = self.session().await;
        let c = &s.inner.store.conn;
        let now = s.inner.now();
        let rows = store::search(
            c,
            group.map(|g| g.0.as_slice()),
            &q,
            limit.clamp(1, MAX_PAGE),
            now,
        )?;
        Ok(rows
            .into_iter()
            .map(|r| history::to_item(c, r))
            .collect::<Result<Vec<_>, _>>()?)
    }

    /// Behind [`Conversation::set_disappearing`](super::Conversation::set_disappearing).
    pub(crate) async fn set_disappearing(
        &self,
        group: &GroupId,
        timer: Option<Duration>,
    ) -> Result<(), Error> {
        let secs = match timer {
            None => 0,
            Some(d) if d.is_zero() => {
                return Err(Error::InvalidArgument("a zero timer: use None to turn off"))
            }
            Some(d) => u32::try_from(d.as_secs().max(1))
                .ok()
                .filter(|s| *s <= MAX_DISAPPEARING_SECS)
                .ok_or(Error::InvalidArgument("disappearing timer over one year"))?,
        };
        self.session()
            .await
            .run_commit(group, Intent::SetDisappearing(secs))
            .await
    }

    /// Commits raw bytes into a group-context extension without any check, as a modified
    /// client could: for tests of what receivers refuse (CONTENT-28).
    #[cfg(feature = "test-utils")]
    #[doc(hidden)]
    pub async fn set_context_extension_unchecked(
        &self,
        group: &GroupId,
        extension_type: u16,
        bytes: Vec<u8>,
    ) -> Result<(), Error> {
        self.session()
            .await
            .run_commit(group, Intent::RawContextExtension(extension_type, bytes))
            .await
    }

    /// Behind [`Conversation::disappearing`](super::Conversation::disappearing).
    pub(crate) async fn disappearing(&self, group: &GroupId) -> Result<Option<Duration>, Error> {
        let mut s = self.session().await;
        let secs = s
            .inner
            .atomic(|cx| Ok::<_, Error>(cx.peek(group, |g| disappearing_secs(g.extensions()))??))?;
        Ok(secs.map(|s| Duration::from_secs(u64::from(s))))
    }

    /// Deletes the disappearing messages that have expired, now (also done by every
    /// [`sync`](Self::sync); expired items are never returned by history queries).
    /// Returns how many were deleted. See the example on
    /// [`Conversation::set_disappearing`](super::Conversation::set_disappearing).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # use std::sync::Arc;
    /// # use atmls::{Client, directory::MemoryDirectory, transport::MemoryTransport, storage::Store};
    /// # use atmls::identity::DeviceIdentity;
    /// # let (dir, net) = (Arc::new(MemoryDirectory::new()), Arc::new(MemoryTransport::new()));
    /// # let alice = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    /// #     .identity(DeviceIdentity::new_account("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?)).build().await?;
    /// use std::time::Duration;
    /// let g = alice.create_group(&[]).await?;
    /// alice.conversation(&g).set_disappearing(Some(Duration::from_secs(3600))).await?;
    /// alice.conversation(&g).send_text("gone in an hour").await?;
    /// assert_eq!(alice.purge_expired().await?, 0); // not expired yet
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn purge_expired(&self) -> Result<usize, Error> {
        let n = {
            let mut s = self.session().await;
            let now = s.inner.now();
            s.purge_expired(now)?
        };
        self.erase_deleted_blobs().await?;
        Ok(n)
    }

    /// [`purge_expired`](Self::purge_expired) as if the clock read `now` (unix seconds), for
    /// tests that cannot wait.
    #[cfg(feature = "test-utils")]
    #[doc(hidden)]
    pub async fn purge_expired_at(&self, now: u64) -> Result<usize, Error> {
        let n = self.session().await.purge_expired(now)?;
        self.erase_deleted_blobs().await?;
        Ok(n)
    }
}
