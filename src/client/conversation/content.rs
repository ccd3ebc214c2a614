//! Typed content and history of one conversation (spec/content.md CONTENT-17 to CONTENT-30).

use std::time::Duration;

use super::Conversation;
use crate::client::{
    Error, HistoryCursor, HistoryItem, HistoryPage, Message, ReadPosition, Revision,
};
use crate::content::{EncodedContent, MessageId};

impl Conversation<'_> {
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
    /// # let bob = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    /// #     .identity(DeviceIdentity::new_account("did:plc:bbbbbbbbbbbbbbbbbbbbbbbb".parse()?)).build().await?;
    /// use atmls::content::{Content, ContentCodec, MarkdownCodec};
    /// let dm = alice.dm(bob.did()).await?;
    /// let markdown = MarkdownCodec::encode(&"**hi**".to_string())?;
    /// let sent = alice.conversation(&dm).send_content(&markdown).await?;
    /// bob.sync().await?;
    /// let item = bob.conversation(&dm).message(&sent.id).await?.expect("bob has it");
    /// assert_eq!(item.decoded(), Some(Content::Markdown("**hi**".into())));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn send_content(self, content: &EncodedContent) -> Result<Message, Error> {
        self.client.send_content(self.id, content).await
    }

    /// Sends markdown text (`atmls.dev/markdown:1.0`).
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
    /// let sent = alice.conversation(&dm).send_markdown("**lunch** at noon?").await?;
    /// bob.sync().await?;
    /// let item = bob.conversation(&dm).message(&sent.id).await?.expect("bob has it");
    /// assert_eq!(item.decoded(), Some(Content::Markdown("**lunch** at noon?".into())));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn send_markdown(self, markdown: &str) -> Result<Message, Error> {
        self.client.send_markdown(self.id, markdown).await
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
    /// # let bob = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    /// #     .identity(DeviceIdentity::new_account("did:plc:bbbbbbbbbbbbbbbbbbbbbbbb".parse()?)).build().await?;
    /// use atmls::content::Content;
    /// let dm = alice.dm(bob.did()).await?;
    /// let question = alice.conversation(&dm).send_text("lunch?").await?;
    /// bob.sync().await?;
    /// bob.conversation(&dm).reply(&question.id, Content::text("yes")).await?;
    /// alice.sync().await?;
    /// let last = alice.conversation(&dm).history(None, 10).await?.items.pop().unwrap();
    /// assert_eq!(last.in_reply_to, Some(question.id));
    /// assert_eq!(last.text().as_deref(), Some("yes"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn reply(self, to: &MessageId, content: EncodedContent) -> Result<Message, Error> {
        self.client.reply(self.id, to, content).await
    }

    /// Adds the reaction `emoji` to message `to`; fails with
    /// [`HistoryError::UnknownMessage`](crate::client::HistoryError::UnknownMessage) if this
    /// device has no such message.
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
    /// let dm = alice.dm(bob.did()).await?;
    /// let m = alice.conversation(&dm).send_text("shipped!").await?;
    /// bob.sync().await?;
    /// bob.conversation(&dm).react(&m.id, "🎉").await?;
    /// alice.sync().await?;
    /// let item = alice.conversation(&dm).message(&m.id).await?.unwrap();
    /// assert_eq!(item.reactions[0].emoji, "🎉");
    /// assert_eq!(item.reactions[0].by, vec![bob.did().clone()]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn react(self, to: &MessageId, emoji: &str) -> Result<Message, Error> {
        self.client.react(self.id, to, emoji).await
    }

    /// Takes back this account's reaction `emoji` on message `to`; see [`react`](Self::react).
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
    /// let dm = alice.dm(bob.did()).await?;
    /// let m = alice.conversation(&dm).send_text("shipped!").await?;
    /// bob.sync().await?;
    /// let chat = bob.conversation(&dm);
    /// chat.react(&m.id, "🎉").await?;
    /// chat.unreact(&m.id, "🎉").await?;
    /// alice.sync().await?;
    /// assert!(alice.conversation(&dm).message(&m.id).await?.unwrap().reactions.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn unreact(self, to: &MessageId, emoji: &str) -> Result<Message, Error> {
        self.client.unreact(self.id, to, emoji).await
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
    /// # let bob = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    /// #     .identity(DeviceIdentity::new_account("did:plc:bbbbbbbbbbbbbbbbbbbbbbbb".parse()?)).build().await?;
    /// let dm = alice.dm(bob.did()).await?;
    /// let m = alice.conversation(&dm).send_text("read me").await?;
    /// bob.sync().await?;
    /// bob.conversation(&dm).accept().await?; // no receipts while it is a message request
    /// bob.conversation(&dm).mark_read(&m.id).await?;
    /// alice.sync().await?;
    /// let read = alice.conversation(&dm).read_positions().await?;
    /// assert!(read.iter().any(|r| r.did == *bob.did() && r.up_to == m.id));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn mark_read(self, up_to: &MessageId) -> Result<Message, Error> {
        self.client.mark_read(self.id, up_to).await
    }

    /// Each account's latest read position in the group; see [`mark_read`](Self::mark_read).
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
    /// let dm = alice.dm(bob.did()).await?;
    /// let chat = alice.conversation(&dm);
    /// assert!(chat.read_positions().await?.is_empty());
    /// let m = chat.send_text("read me").await?;
    /// bob.sync().await?;
    /// bob.conversation(&dm).accept().await?; // no receipts while it is a message request
    /// bob.conversation(&dm).mark_read(&m.id).await?;
    /// alice.sync().await?;
    /// let read = chat.read_positions().await?;
    /// assert_eq!((&read[0].did, &read[0].up_to), (bob.did(), &m.id));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn read_positions(self) -> Result<Vec<ReadPosition>, Error> {
        self.client.read_positions(self.id).await
    }

    /// Tells the group this account started (`true`) or stopped typing. Receivers get an
    /// [`Event::Message`](crate::client::Event::Message) but store nothing (CONTENT-24).
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
    /// use atmls::content::{Content, Typing};
    /// use atmls::Event;
    /// let dm = alice.dm(bob.did()).await?;
    /// bob.sync().await?;
    /// bob.conversation(&dm).accept().await?; // a message request shows no typing
    /// alice.conversation(&dm).typing(true).await?;
    /// let events = bob.sync().await?;
    /// assert!(events.iter().any(|e| matches!(e, Event::Message(m)
    ///     if m.decoded() == Content::Typing(Typing { typing: true }))));
    /// assert!(bob.conversation(&dm).history(None, 10).await?.items.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn typing(self, typing: bool) -> Result<Message, Error> {
        self.client.typing(self.id, typing).await
    }

    /// Sends a file. Up to [`MAX_INLINE_ATTACHMENT`](crate::content::MAX_INLINE_ATTACHMENT)
    /// bytes travel in the message; larger files are encrypted with a fresh key, stored in
    /// the client's blob store, and the message carries the URL, digest, key and nonce
    /// (CONTENT-25).
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
    /// # let bob = Client::builder(dir.clone(), net.clone(), Store::in_memory()?).blob_store(blobs.clone())
    /// #     .identity(DeviceIdentity::new_account("did:plc:bbbbbbbbbbbbbbbbbbbbbbbb".parse()?)).build().await?;
    /// use atmls::content::Content;
    /// let dm = alice.dm(bob.did()).await?;
    /// let photo = vec![7u8; 300_000]; // over the inline limit: goes to the blob store
    /// let sent = alice.conversation(&dm).attach("photo.jpg", "image/jpeg", &photo).await?;
    /// bob.sync().await?;
    /// let item = bob.conversation(&dm).message(&sent.id).await?.expect("delivered");
    /// let Some(Content::Attachment(a)) = item.decoded() else { panic!("an attachment") };
    /// assert_eq!(bob.download(&a).await?, photo);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn attach(
        self,
        filename: &str,
        mime_type: &str,
        data: &[u8],
    ) -> Result<Message, Error> {
        self.client.attach(self.id, filename, mime_type, data).await
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
    /// # let bob = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    /// #     .identity(DeviceIdentity::new_account("did:plc:bbbbbbbbbbbbbbbbbbbbbbbb".parse()?)).build().await?;
    /// use atmls::{client::HistoryError, content::Content, Error};
    /// let dm = alice.dm(bob.did()).await?;
    /// let m = alice.conversation(&dm).send_text("teh plan").await?;
    /// alice.conversation(&dm).edit(&m.id, Content::text("the plan")).await?;
    /// bob.sync().await?;
    /// let item = bob.conversation(&dm).message(&m.id).await?.unwrap();
    /// assert_eq!((item.text().as_deref(), item.edits), (Some("the plan"), 1));
    /// // Bob cannot edit Alice's message.
    /// let err = bob.conversation(&dm).edit(&m.id, Content::text("bob's plan")).await.unwrap_err();
    /// assert!(matches!(err, Error::History(HistoryError::NotAuthor(_))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn edit(self, id: &MessageId, content: EncodedContent) -> Result<Message, Error> {
        self.client.edit(self.id, id, content).await
    }

    /// The versions an edited message had, oldest first (the original is not included:
    /// it is the item's content before the first revision). See [`edit`](Self::edit).
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
    /// let chat = alice.conversation(&dm);
    /// let m = chat.send_text("teh plan").await?;
    /// chat.edit(&m.id, Content::text("the plan")).await?;
    /// chat.edit(&m.id, Content::text("the new plan")).await?;
    /// let revisions = chat.edit_history(&m.id).await?;
    /// assert_eq!(revisions.len(), 2);
    /// assert_eq!(revisions[0].content, Content::text("the plan"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn edit_history(self, id: &MessageId) -> Result<Vec<Revision>, Error> {
        self.client.edit_history(self.id, id).await
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
    /// # let bob = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    /// #     .identity(DeviceIdentity::new_account("did:plc:bbbbbbbbbbbbbbbbbbbbbbbb".parse()?)).build().await?;
    /// let dm = alice.dm(bob.did()).await?;
    /// let m = alice.conversation(&dm).send_text("oops").await?;
    /// alice.conversation(&dm).delete(&m.id).await?;
    /// bob.sync().await?;
    /// let item = bob.conversation(&dm).message(&m.id).await?.unwrap();
    /// assert_eq!(item.content, None);
    /// assert_eq!(item.deleted.unwrap().by, *alice.did());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn delete(self, id: &MessageId) -> Result<Message, Error> {
        self.client.delete(self.id, id).await
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
    /// # let bob = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    /// #     .identity(DeviceIdentity::new_account("did:plc:bbbbbbbbbbbbbbbbbbbbbbbb".parse()?)).build().await?;
    /// let dm = alice.dm(bob.did()).await?;
    /// let chat = alice.conversation(&dm);
    /// for i in 0..5 {
    ///     chat.send_text(&format!("m{i}")).await?;
    /// }
    /// let newest = chat.history(None, 2).await?;
    /// let texts: Vec<_> = newest.items.iter().filter_map(|i| i.text()).collect();
    /// assert_eq!(texts, ["m3", "m4"]);
    /// let older = chat.history(newest.older, 2).await?;
    /// let texts: Vec<_> = older.items.iter().filter_map(|i| i.text()).collect();
    /// assert_eq!(texts, ["m1", "m2"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn history(
        self,
        before: Option<HistoryCursor>,
        limit: u32,
    ) -> Result<HistoryPage, Error> {
        self.client.history(self.id, before, limit).await
    }

    /// One item of the group's history by id (`None` if this device has no such message or
    /// it expired).
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
    /// let dm = alice.dm(bob.did()).await?;
    /// let m = alice.conversation(&dm).send_text("hello").await?;
    /// let chat = bob.conversation(&dm);
    /// bob.sync().await?;
    /// let item = chat.message(&m.id).await?.expect("bob has it");
    /// assert_eq!(item.text().as_deref(), Some("hello"));
    /// assert_eq!(item.sender.did, *alice.did());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn message(self, id: &MessageId) -> Result<Option<HistoryItem>, Error> {
        self.client.message(self.id, id).await
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
    /// # let bob = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    /// #     .identity(DeviceIdentity::new_account("did:plc:bbbbbbbbbbbbbbbbbbbbbbbb".parse()?)).build().await?;
    /// use std::time::Duration;
    /// let dm = alice.dm(bob.did()).await?;
    /// alice.conversation(&dm).set_disappearing(Some(Duration::from_secs(3600))).await?;
    /// bob.sync().await?;
    /// let chat = bob.conversation(&dm);
    /// assert_eq!(chat.disappearing().await?, Some(Duration::from_secs(3600)));
    /// let m = chat.send_text("gone in an hour").await?;
    /// assert!(chat.message(&m.id).await?.unwrap().expires_at.is_some());
    /// assert_eq!(bob.purge_expired().await?, 0, "not yet: it has an hour left");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn set_disappearing(self, timer: Option<Duration>) -> Result<(), Error> {
        self.client.set_disappearing(self.id, timer).await
    }

    /// The group's disappearing-messages timer (`None`: off); see
    /// [`set_disappearing`](Self::set_disappearing).
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
    /// use std::time::Duration;
    /// let dm = alice.dm(bob.did()).await?;
    /// let chat = alice.conversation(&dm);
    /// assert_eq!(chat.disappearing().await?, None);
    /// chat.set_disappearing(Some(Duration::from_secs(60))).await?;
    /// assert_eq!(chat.disappearing().await?, Some(Duration::from_secs(60)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn disappearing(self) -> Result<Option<Duration>, Error> {
        self.client.disappearing(self.id).await
    }
}
