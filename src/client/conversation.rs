//! The conversation handle: the calls scoped to one group, on the client that holds it.
//! Each method delegates to the client's own (crate-private) method of the same name, so a
//! handle adds no state and no lock of its own.

mod content;
mod governance;
mod invites;

use std::path::Path;

use super::{Client, Error, Event, Message};
use crate::blob::ProgressFn;
use crate::content::EncodedContent;
use crate::group::{GroupId, Member};
use crate::identity::Did;
use crate::trust::MemberStatus;

/// One conversation of a client, a DM or a group: the calls scoped to that group.
///
/// Made by [`Client::conversation`]; cheap to make and to copy, it holds no lock (each call
/// takes the client's locks as any client call does: the state's only while it works on
/// state; one that sends, commits or reads the mailbox also the group's ordering lock;
/// spec/storage.md STORE-5). Account-wide calls
/// ([`Client::sync`], [`Client::dm`], [`Client::create_group`], trust and device management)
/// stay on the [`Client`]. The methods take the handle by value (it is `Copy`), so a call's
/// future borrows only the client and the id, never a temporary handle.
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
/// chat.send_text("hi bob").await?;
/// bob.sync().await?;
/// let texts: Vec<_> = bob.conversation(&dm).history(None, 10).await?
///     .items.iter().filter_map(|i| i.text()).collect();
/// assert_eq!(texts, ["hi bob"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Conversation<'a> {
    client: &'a Client,
    id: &'a GroupId,
}

impl Client {
    /// The conversation `id` of this device: a handle for the calls scoped to that group.
    /// Nothing is checked here: a call on a group this device does not have fails as the
    /// group's state cannot be read. See [`Conversation`].
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
    /// chat.send_text("hi").await?;
    /// assert_eq!(chat.id(), &dm);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn conversation<'a>(&'a self, id: &'a GroupId) -> Conversation<'a> {
        Conversation { client: self, id }
    }
}

impl<'a> Conversation<'a> {
    /// The group's id.
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
    /// assert_eq!(alice.conversation(&dm).id(), &dm);
    /// assert_eq!(alice.groups().await?[0].id, dm);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn id(self) -> &'a GroupId {
        self.id
    }

    /// Adds every current device of each DID.
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
    /// let g = alice.create_group(&[]).await?;
    /// alice.conversation(&g).add_members(&[bob.did().clone()]).await?;
    /// bob.sync().await?; // bob's device joins by its Welcome
    /// assert_eq!(bob.conversation(&g).members().await?.len(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn add_members(self, members: &[Did]) -> Result<(), Error> {
        self.client.add_members(self.id, members).await
    }

    /// Removes every device of each DID.
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
    /// let g = alice.create_group(&[bob.did().clone()]).await?;
    /// let chat = alice.conversation(&g);
    /// chat.remove_members(&[bob.did().clone()]).await?;
    /// assert!(chat.members().await?.iter().all(|m| m.did == *alice.did()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn remove_members(self, members: &[Did]) -> Result<(), Error> {
        self.client.remove_members(self.id, members).await
    }

    /// Rotates this device's leaf keys (encryption and signature) in the group.
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
    /// let before = alice.groups().await?[0].epoch;
    /// alice.conversation(&dm).self_update().await?; // a commit
    /// assert_eq!(alice.groups().await?[0].epoch, before + 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn self_update(self) -> Result<(), Error> {
        self.client.self_update(self.id).await
    }

    /// Leaves the group with all of this account's devices: proposes their removal, which the
    /// next member to sync commits; then this device deletes its group state. The last
    /// owner of a group must name a successor first
    /// ([`leave_naming`](Self::leave_naming), spec/governance.md GOV-6).
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
    /// let g = alice.create_group(&[bob.did().clone()]).await?;
    /// bob.sync().await?;
    /// bob.conversation(&g).leave().await?;
    /// alice.sync().await?; // alice's device commits bob's leave request
    /// assert_eq!(alice.conversation(&g).members().await?.len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn leave(self) -> Result<(), Error> {
        self.client.leave(self.id).await
    }

    /// Sends typed content (the same as [`send_content`](Self::send_content)). The message
    /// is queued durably before the first attempt (spec/group.md GROUP-11): if this fails with
    /// a retryable error it stays queued ([`queued_messages`](Self::queued_messages)) and the
    /// next [`sync`](Client::sync) delivers it once, raising [`Event::Sent`]: do not send it
    /// again.
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
    /// alice.conversation(&dm).send(&Content::text("hi")).await?;
    /// bob.sync().await?;
    /// let got = bob.conversation(&dm).messages().await?;
    /// assert_eq!(got[0].decoded(), Content::Text("hi".into()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn send(self, content: &EncodedContent) -> Result<Message, Error> {
        self.client.send(self.id, content).await
    }

    /// Accepts this message request (spec/consent.md CONSENT-3): the conversation joins
    /// [`Client::groups`], its messages raise events from now on, and the account that started
    /// it is allowed. Replying with [`send`](Self::send) accepts it too. Accepting a
    /// conversation already accepted (on this device or another of the account's) does
    /// nothing; a declined one, or one this device does not hold, is
    /// [`Error::InvalidArgument`].
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
    /// use atmls::trust::AccountConsent;
    /// let dm = alice.dm(bob.did()).await?;
    /// bob.sync().await?;
    /// bob.conversation(&dm).accept().await?;
    /// assert!(bob.requests().await?.is_empty());
    /// assert_eq!(bob.consent(alice.did()).await?, AccountConsent::Allowed);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn accept(self) -> Result<(), Error> {
        self.client.accept_request(self.id).await
    }

    /// Declines this message request: this device leaves the conversation, with a leave
    /// proposal like [`leave`](Self::leave), and raises [`Event::Declined`] (CONSENT-3).
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
    /// bob.sync().await?;
    /// bob.conversation(&dm).decline().await?;
    /// assert!(bob.requests().await?.is_empty());
    /// assert!(bob.groups().await?.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn decline(self) -> Result<(), Error> {
        self.client.decline_request(self.id).await
    }

    /// Sends a text message.
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
    /// let sent = alice.conversation(&dm).send_text("hi bob").await?;
    /// bob.sync().await?;
    /// let got = bob.conversation(&dm).message(&sent.id).await?;
    /// assert_eq!(got.and_then(|item| item.text()).as_deref(), Some("hi bob"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn send_text(self, text: &str) -> Result<Message, Error> {
        self.client.send_text(self.id, text).await
    }

    /// The member devices of the group.
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
    /// let members = alice.conversation(&dm).members().await?;
    /// assert_eq!(members.len(), 2); // one device each
    /// assert!(members.iter().any(|m| m.did == *bob.did()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn members(self) -> Result<Vec<Member>, Error> {
        self.client.members(self.id).await
    }

    /// The group's timeline, oldest first: messages with their latest edit, without deleted
    /// or expired ones. [`history`](Self::history) gives pages with reactions and tombstones.
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
    /// chat.send_text("one").await?;
    /// chat.send_text("two").await?;
    /// bob.sync().await?;
    /// let texts: Vec<_> = bob.conversation(&dm).messages().await?.iter()
    ///     .filter_map(|m| m.decoded().display_text().map(str::to_owned)).collect();
    /// assert_eq!(texts, ["one", "two"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn messages(self) -> Result<Vec<Message>, Error> {
        self.client.messages(self.id).await
    }

    /// Processes raw bytes received for the group outside the transport (e.g. from a push
    /// notification). On error nothing changes.
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
    /// bob.sync().await?;
    /// let chat = bob.conversation(&dm);
    /// let before = chat.members().await?;
    /// assert!(chat.process_incoming(b"not a message of this group").await.is_err());
    /// assert_eq!(chat.members().await?, before);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn process_incoming(self, payload: &[u8]) -> Result<Vec<Event>, Error> {
        self.client.process_incoming(self.id, payload).await
    }

    /// The messages queued for the group and not yet accepted by the transport, oldest first
    /// (spec/group.md GROUP-11): after a `send` that failed with a retryable error they are
    /// delivered by the next [`sync`](Client::sync), once, raising [`Event::Sent`]; do not
    /// send them again.
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
    /// chat.send_text("delivered").await?;
    /// assert!(chat.queued_messages().await?.is_empty()); // the transport took it
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn queued_messages(self) -> Result<Vec<EncodedContent>, Error> {
        self.client.queued_messages(self.id).await
    }

    /// Every member device of the group with this device's trust verdict on it (TRUST-20):
    /// verified, pending (its account's lookup is queued), mismatch, revoked or expired.
    /// Local to this device: every member sees the same devices, each judges them itself.
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
    /// use atmls::trust::MemberStatus;
    /// let dm = alice.dm(bob.did()).await?;
    /// let verdicts = alice.conversation(&dm).member_trust().await?;
    /// assert_eq!(verdicts.len(), 2);
    /// assert!(verdicts.iter().all(|(_, s)| !matches!(s, MemberStatus::Mismatch | MemberStatus::Revoked)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn member_trust(self) -> Result<Vec<(Member, MemberStatus)>, Error> {
        self.client.member_trust(self.id).await
    }

    /// Sends the file at `path` as an attachment named `filename`. Up to
    /// [`MAX_INLINE_ATTACHMENT`](crate::content::MAX_INLINE_ATTACHMENT) bytes travel in the
    /// message; a larger file is encrypted chunk by chunk (CONTENT-25a) to a temporary file in
    /// the system's temporary directory, stored in the client's blob store for this group
    /// (`progress` is told after each chunk uploaded; an `HttpBlobStore` (feature
    /// `ds-client`) resumes after a cut connection), and the message carries the URL, digest
    /// and key.
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
    /// use atmls::{blob::no_progress, content::Content};
    /// let path = std::env::temp_dir().join(format!("atmls-doc-{}.txt", std::process::id()));
    /// std::fs::write(&path, b"the notes")?;
    /// let dm = alice.dm(bob.did()).await?;
    /// let sent = alice.conversation(&dm)
    ///     .attach_file(&path, "notes.txt", "text/plain", &no_progress).await?;
    /// std::fs::remove_file(&path)?;
    /// bob.sync().await?;
    /// let item = bob.conversation(&dm).message(&sent.id).await?.expect("delivered");
    /// let Some(Content::Attachment(a)) = item.decoded() else { panic!("an attachment") };
    /// assert_eq!(bob.download(&a).await?, b"the notes");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn attach_file(
        self,
        path: &Path,
        filename: &str,
        mime_type: &str,
        progress: ProgressFn<'_>,
    ) -> Result<Message, Error> {
        self.client
            .attach_file(self.id, path, filename, mime_type, progress)
            .await
    }
}
