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
    /// Sends any typed content. Edits, deletes, reactions and receipts are first checked
    /// against this device's history (CONTENT-29): one that breaks a rule fails with
    /// [`Error::History`] and nothing is sent. Group updates cannot be sent (CONTENT-27).
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
    /// use atmls::content::{Content, ContentCodec, MarkdownCodec};
    /// let dm = alice.dm(bob.did()).await?;
    /// let sent = alice.send_content(&dm, &MarkdownCodec::encode(&"**hi**".to_string())?).await?;
    /// bob.sync().await?;
    /// let item = bob.message(&dm, &sent.id).await?.expect("bob has it");
    /// assert_eq!(item.decoded(), Some(Content::Markdown("**hi**".into())));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn send_content(
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

    /// Sends markdown text (`atmls.dev/markdown:1.0`); see the example on
    /// [`send_content`](Self::send_content).
    pub async fn send_markdown(&self, group: &GroupId, markdown: &str) -> Result<Message, Error> {
        self.send_content(group, &MarkdownCodec::encode(&markdown.to_owned())?)
            .await
    }

    /// Replies to message `to` with `content` (text, markdown, an attachment...).
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
    /// use atmls::content::Content;
    /// let dm = alice.dm(bob.did()).await?;
    /// let question = alice.send_text(&dm, "lunch?").await?;
    /// bob.sync().await?;
    /// bob.reply(&dm, &question.id, Content::text("yes")).await?;
    /// alice.sync().await?;
    /// let last = alice.history(&dm, None, 10).await?.items.pop().unwrap();
    /// assert_eq!(last.in_reply_to, Some(question.id));
    /// assert_eq!(last.text().as_deref(), Some("yes"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn reply(
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

    /// Adds the reaction `emoji` to message `to`; fails with
    /// [`HistoryError::UnknownMessage`](super::HistoryError::UnknownMessage) if this device
    /// has no such message.
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
    /// let m = alice.send_text(&dm, "shipped!").await?;
    /// bob.sync().await?;
    /// bob.react(&dm, &m.id, "🎉").await?;
    /// alice.sync().await?;
    /// let item = alice.message(&dm, &m.id).await?.unwrap();
    /// assert_eq!(item.reactions[0].emoji, "🎉");
    /// assert_eq!(item.reactions[0].by, vec![bob.did().clone()]);
    /// bob.unreact(&dm, &m.id, "🎉").await?;
    /// alice.sync().await?;
    /// assert!(alice.message(&dm, &m.id).await?.unwrap().reactions.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn react(
        &self,
        group: &GroupId,
        to: &MessageId,
        emoji: &str,
    ) -> Result<Message, Error> {
        self.reaction(group, to, emoji, ReactionAction::Add).await
    }

    /// Takes back this account's reaction `emoji` on message `to`; see [`react`](Self::react).
    pub async fn unreact(
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

    /// Tells the group this account has read everything up to message `up_to`.
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
    /// let m = alice.send_text(&dm, "read me").await?;
    /// bob.sync().await?;
    /// bob.mark_read(&dm, &m.id).await?;
    /// alice.sync().await?;
    /// let read = alice.read_positions(&dm).await?;
    /// assert!(read.iter().any(|r| r.did == *bob.did() && r.up_to == m.id));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn mark_read(&self, group: &GroupId, up_to: &MessageId) -> Result<Message, Error> {
        let r = ReadReceipt { up_to: *up_to };
        self.send_content(group, &ReadReceiptCodec::encode(&r)?)
            .await
    }

    /// Each account's latest read position in the group; see [`mark_read`](Self::mark_read).
    pub async fn read_positions(&self, group: &GroupId) -> Result<Vec<ReadPosition>, Error> {
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

    /// Tells the group this account started (`true`) or stopped typing. Receivers get an
    /// [`Event::Message`](super::Event::Message) but store nothing (CONTENT-24).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # use std::sync::Arc;
    /// # use atmls::{Client, Event, directory::MemoryDirectory, transport::MemoryTransport, storage::Store};
    /// # use atmls::identity::DeviceIdentity;
    /// # let (dir, net) = (Arc::new(MemoryDirectory::new()), Arc::new(MemoryTransport::new()));
    /// # let alice = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    /// #     .identity(DeviceIdentity::new_account("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?)).build().await?;
    /// # let bob = Client::builder(dir, net, Store::in_memory()?)
    /// #     .identity(DeviceIdentity::new_account("did:plc:bbbbbbbbbbbbbbbbbbbbbbbb".parse()?)).build().await?;
    /// use atmls::content::{Content, Typing};
    /// let dm = alice.dm(bob.did()).await?;
    /// alice.typing(&dm, true).await?;
    /// let events = bob.sync().await?;
    /// assert!(events.iter().any(|e| matches!(e, Event::Message(m)
    ///     if m.decoded() == Content::Typing(Typing { typing: true }))));
    /// assert!(bob.history(&dm, None, 10).await?.items.iter().all(|i| i.group != dm || i.text().is_some()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn typing(&self, group: &GroupId, typing: bool) -> Result<Message, Error> {
        self.send_content(group, &TypingCodec::encode(&Typing { typing })?)
            .await
    }

    /// Sends a file. Up to [`MAX_INLINE_ATTACHMENT`] bytes travel in the message; larger
    /// files are encrypted with a fresh key, stored in the client's blob store, and the
    /// message carries the URL, digest, key and nonce (CONTENT-25).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # use std::sync::Arc;
    /// # use atmls::{Client, directory::MemoryDirectory, transport::MemoryTransport, storage::Store};
    /// # use atmls::identity::DeviceIdentity;
    /// use atmls::blob::MemoryBlobStore;
    /// use atmls::content::Content;
    /// # let (dir, net) = (Arc::new(MemoryDirectory::new()), Arc::new(MemoryTransport::new()));
    /// let blobs = Arc::new(MemoryBlobStore::new());
    /// # let alice = Client::builder(dir.clone(), net.clone(), Store::in_memory()?).blob_store(blobs.clone())
    /// #     .identity(DeviceIdentity::new_account("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?)).build().await?;
    /// # let bob = Client::builder(dir, net, Store::in_memory()?).blob_store(blobs.clone())
    /// #     .identity(DeviceIdentity::new_account("did:plc:bbbbbbbbbbbbbbbbbbbbbbbb".parse()?)).build().await?;
    /// let dm = alice.dm(bob.did()).await?;
    /// let photo = vec![7u8; 300_000]; // over the inline limit: goes to the blob store
    /// let sent = alice.attach(&dm, "photo.jpg", "image/jpeg", &photo).await?;
    /// bob.sync().await?;
    /// let Some(Content::Attachment(a)) = bob.message(&dm, &sent.id).await?.unwrap().decoded() else { panic!() };
    /// assert_eq!(bob.download(&a).await?, photo);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn attach(
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
    /// See the example on [`attach`](Self::attach).
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

    /// Replaces the content of this account's message `id`. Other members' devices apply
    /// it only if the editor is the author (CONTENT-26); the previous versions stay in
    /// [`edit_history`](Self::edit_history).
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
    /// use atmls::{client::HistoryError, content::Content, Error};
    /// let dm = alice.dm(bob.did()).await?;
    /// let m = alice.send_text(&dm, "teh plan").await?;
    /// alice.edit(&dm, &m.id, Content::text("the plan")).await?;
    /// bob.sync().await?;
    /// let item = bob.message(&dm, &m.id).await?.unwrap();
    /// assert_eq!((item.text().as_deref(), item.edits), (Some("the plan"), 1));
    /// let revisions = bob.edit_history(&dm, &m.id).await?;
    /// assert_eq!(revisions[0].content, Content::text("the plan"));
    /// // Bob cannot edit Alice's message.
    /// let err = bob.edit(&dm, &m.id, Content::text("bob's plan")).await.unwrap_err();
    /// assert!(matches!(err, Error::History(HistoryError::NotAuthor(_))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn edit(
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

    /// The versions an edited message had, oldest first (the original is not included:
    /// it is the item's content before the first revision). See the example on
    /// [`edit`](Self::edit).
    pub async fn edit_history(
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

    /// Deletes message `id` on every member's device: its content, edits and reactions go,
    /// a tombstone stays. Only the author may, unless the moderation policy allows more
    /// (CONTENT-26).
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
    /// let m = alice.send_text(&dm, "oops").await?;
    /// alice.delete(&dm, &m.id).await?;
    /// bob.sync().await?;
    /// let item = bob.message(&dm, &m.id).await?.unwrap();
    /// assert_eq!(item.content, None);
    /// assert_eq!(item.deleted.unwrap().by, *alice.did());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn delete(&self, group: &GroupId, id: &MessageId) -> Result<Message, Error> {
        self.send_content(group, &DeleteCodec::encode(&Delete { target: *id })?)
            .await
    }

    /// One page of the group's timeline: up to `limit` (at most 500) items older
    /// than `before` (the newest if `None`), oldest first, with edits, tombstones and
    /// reactions applied. Pass `page.older` to get the next page.
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
    /// for i in 0..5 {
    ///     alice.send_text(&dm, &format!("m{i}")).await?;
    /// }
    /// let newest = alice.history(&dm, None, 2).await?;
    /// let texts: Vec<_> = newest.items.iter().filter_map(|i| i.text()).collect();
    /// assert_eq!(texts, ["m3", "m4"]);
    /// let older = alice.history(&dm, newest.older, 2).await?;
    /// let texts: Vec<_> = older.items.iter().filter_map(|i| i.text()).collect();
    /// assert_eq!(texts, ["m1", "m2"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn history(
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
        Ok(HistoryPage { items, older })
    }

    /// One item of a group's history by id (`None` if this device has no such message or
    /// it expired). See the example on [`react`](Self::react).
    pub async fn message(
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
    /// alice.send_text(&dm, "the Café opens at nine").await?;
    /// alice.send_text(&dm, "something else").await?;
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

    /// Sets the group's disappearing-messages timer (`None` turns it off) with a commit, so
    /// every member's device applies the same timer (CONTENT-28): each message stored
    /// afterwards is deleted from every device that timer after that device stored it. At
    /// most one year; whole seconds.
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
    /// use std::time::Duration;
    /// let dm = alice.dm(bob.did()).await?;
    /// alice.set_disappearing(&dm, Some(Duration::from_secs(3600))).await?;
    /// bob.sync().await?;
    /// assert_eq!(bob.disappearing(&dm).await?, Some(Duration::from_secs(3600)));
    /// let m = bob.send_text(&dm, "gone in an hour").await?;
    /// assert!(bob.message(&dm, &m.id).await?.unwrap().expires_at.is_some());
    /// assert_eq!(bob.purge_expired().await?, 0, "not yet: it has an hour left");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn set_disappearing(
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

    /// The group's disappearing-messages timer; see [`set_disappearing`](Self::set_disappearing).
    pub async fn disappearing(&self, group: &GroupId) -> Result<Option<Duration>, Error> {
        let mut s = self.session().await;
        let secs = s
            .inner
            .atomic(|cx| Ok::<_, Error>(cx.peek(group, |g| disappearing_secs(g.extensions()))??))?;
        Ok(secs.map(|s| Duration::from_secs(u64::from(s))))
    }

    /// Deletes the disappearing messages that have expired, now (also done by every
    /// [`sync`](Self::sync); expired items are never returned by history queries).
    /// Returns how many were deleted. See the example on
    /// [`set_disappearing`](Self::set_disappearing).
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
