//! Invite links and join requests of one conversation (spec/invites.md).

use super::Conversation;
use crate::client::{Error, InviteLink, InviteOptions, JoinOutcome, JoinRequest, RequestId};
use crate::group::{InviteId, InviteRecord};

impl Conversation<'_> {
    /// Creates an invite link (needs [`Action::Invite`](crate::group::Action::Invite)):
    /// recorded in the group state by a commit, so every admin's device can answer it and
    /// every member enforces its use count and revocation (INV-1).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # use std::sync::Arc;
    /// # use atmls::{Client, directory::MemoryDirectory, transport::MemoryTransport, storage::Store};
    /// # use atmls::identity::DeviceIdentity;
    /// # let (dir, net) = (Arc::new(MemoryDirectory::new()), Arc::new(MemoryTransport::new()));
    /// # let alice = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    /// #     .identity(DeviceIdentity::new_account("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?)).build().await?;
    /// # let carol = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    /// #     .identity(DeviceIdentity::new_account("did:plc:cccccccccccccccccccccccc".parse()?)).build().await?;
    /// use atmls::client::{InviteLink, InviteOptions, JoinOutcome};
    /// let g = alice.create_group(&[]).await?;
    /// let options = InviteOptions { max_uses: 5, ..Default::default() };
    /// let link = alice.conversation(&g).create_invite(options).await?;
    /// let url = link.to_url(); // atmls://invite/…, also the QR payload
    /// let pending = carol.request_join(&InviteLink::parse(&url)?).await?;
    /// alice.sync().await?; // alice's device admits carol: no approval needed
    /// assert_eq!(carol.join_outcome(&pending).await?, JoinOutcome::Approved);
    /// carol.sync().await?;
    /// assert_eq!(carol.groups().await?[0].id, g);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn create_invite(self, options: InviteOptions) -> Result<InviteLink, Error> {
        self.client.create_invite(self.id, options).await
    }

    /// Publishes nothing but creates the group's public join handle (INV-6): a link that
    /// never expires, has no use limit and always needs an admin's approval. Whoever
    /// learns it can ask to join; admins see each request and decide.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # use std::sync::Arc;
    /// # use atmls::{Client, directory::MemoryDirectory, transport::MemoryTransport, storage::Store};
    /// # use atmls::identity::DeviceIdentity;
    /// # let (dir, net) = (Arc::new(MemoryDirectory::new()), Arc::new(MemoryTransport::new()));
    /// # let alice = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    /// #     .identity(DeviceIdentity::new_account("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?)).build().await?;
    /// # let carol = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    /// #     .identity(DeviceIdentity::new_account("did:plc:cccccccccccccccccccccccc".parse()?)).build().await?;
    /// use atmls::client::{InviteLink, JoinOutcome};
    /// let g = alice.create_group(&[]).await?;
    /// let handle = alice.conversation(&g).create_join_handle().await?;
    /// let pending = carol.request_join(&InviteLink::parse(&handle.to_url())?).await?;
    /// alice.sync().await?; // the request waits for an admin's decision
    /// assert_eq!(carol.join_outcome(&pending).await?, JoinOutcome::Pending);
    /// assert_eq!(alice.conversation(&g).join_requests().await?[0].did, *carol.did());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn create_join_handle(self) -> Result<InviteLink, Error> {
        self.client.create_join_handle(self.id).await
    }

    /// Revokes an invite link (a commit, needs [`Action::Invite`](crate::group::Action::Invite)):
    /// later requests get [`JoinOutcome::Revoked`] and no member accepts a use of it (INV-3).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # use std::sync::Arc;
    /// # use atmls::{Client, directory::MemoryDirectory, transport::MemoryTransport, storage::Store};
    /// # use atmls::identity::DeviceIdentity;
    /// # let (dir, net) = (Arc::new(MemoryDirectory::new()), Arc::new(MemoryTransport::new()));
    /// # let alice = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    /// #     .identity(DeviceIdentity::new_account("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?)).build().await?;
    /// # let carol = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    /// #     .identity(DeviceIdentity::new_account("did:plc:cccccccccccccccccccccccc".parse()?)).build().await?;
    /// use atmls::client::{InviteOptions, JoinOutcome};
    /// let g = alice.create_group(&[]).await?;
    /// let chat = alice.conversation(&g);
    /// let link = chat.create_invite(InviteOptions::default()).await?;
    /// chat.revoke_invite(&link.id()).await?;
    /// assert!(chat.invites().await?[0].revoked);
    /// let pending = carol.request_join(&link).await?;
    /// alice.sync().await?;
    /// assert_eq!(carol.join_outcome(&pending).await?, JoinOutcome::Revoked);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn revoke_invite(self, id: &InviteId) -> Result<(), Error> {
        self.client.revoke_invite(self.id, id).await
    }

    /// The group's invites as its state records them (terms, uses, revocation).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # use std::sync::Arc;
    /// # use atmls::{Client, directory::MemoryDirectory, transport::MemoryTransport, storage::Store};
    /// # use atmls::identity::DeviceIdentity;
    /// # let (dir, net) = (Arc::new(MemoryDirectory::new()), Arc::new(MemoryTransport::new()));
    /// # let alice = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    /// #     .identity(DeviceIdentity::new_account("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?)).build().await?;
    /// # let carol = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    /// #     .identity(DeviceIdentity::new_account("did:plc:cccccccccccccccccccccccc".parse()?)).build().await?;
    /// use atmls::client::InviteOptions;
    /// let g = alice.create_group(&[]).await?;
    /// let chat = alice.conversation(&g);
    /// chat.create_invite(InviteOptions { max_uses: 3, ..Default::default() }).await?;
    /// let invites = chat.invites().await?;
    /// assert_eq!((invites.len(), invites[0].max_uses, invites[0].uses), (1, 3, 0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn invites(self) -> Result<Vec<InviteRecord>, Error> {
        self.client.invites(self.id).await
    }

    /// The shareable link of one of the group's invites: any member's device can show it
    /// again (the secret is in the group state, INV-1).
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
    /// use atmls::client::InviteOptions;
    /// let g = alice.create_group(&[bob.did().clone()]).await?;
    /// let link = alice.conversation(&g).create_invite(InviteOptions::default()).await?;
    /// bob.sync().await?;
    /// let again = bob.conversation(&g).invite_link(&link.id()).await?.expect("in the group state");
    /// assert_eq!(again.to_url(), link.to_url());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn invite_link(self, id: &InviteId) -> Result<Option<InviteLink>, Error> {
        self.client.invite_link(self.id, id).await
    }

    /// Requests waiting for an admin's decision on this device.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # use std::sync::Arc;
    /// # use atmls::{Client, directory::MemoryDirectory, transport::MemoryTransport, storage::Store};
    /// # use atmls::identity::DeviceIdentity;
    /// # let (dir, net) = (Arc::new(MemoryDirectory::new()), Arc::new(MemoryTransport::new()));
    /// # let alice = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    /// #     .identity(DeviceIdentity::new_account("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?)).build().await?;
    /// # let carol = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    /// #     .identity(DeviceIdentity::new_account("did:plc:cccccccccccccccccccccccc".parse()?)).build().await?;
    /// use atmls::client::InviteOptions;
    /// let g = alice.create_group(&[]).await?;
    /// let chat = alice.conversation(&g);
    /// let link = chat.create_invite(InviteOptions { approval: true, ..Default::default() }).await?;
    /// carol.request_join(&link).await?;
    /// assert!(chat.join_requests().await?.is_empty());
    /// alice.sync().await?; // fetches the request
    /// let requests = chat.join_requests().await?;
    /// assert_eq!((requests.len(), &requests[0].did), (1, carol.did()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn join_requests(self) -> Result<Vec<JoinRequest>, Error> {
        self.client.join_requests(self.id).await
    }

    /// Approves a request: an ordinary add commit that also counts a use of the invite
    /// (needs [`Action::Invite`](crate::group::Action::Invite) or
    /// [`Action::AddMembers`](crate::group::Action::AddMembers)). Returns what the requester
    /// is told (an expired or used-up invite answers so instead).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # use std::sync::Arc;
    /// # use atmls::{Client, directory::MemoryDirectory, transport::MemoryTransport, storage::Store};
    /// # use atmls::identity::DeviceIdentity;
    /// # let (dir, net) = (Arc::new(MemoryDirectory::new()), Arc::new(MemoryTransport::new()));
    /// # let alice = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    /// #     .identity(DeviceIdentity::new_account("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?)).build().await?;
    /// # let carol = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    /// #     .identity(DeviceIdentity::new_account("did:plc:cccccccccccccccccccccccc".parse()?)).build().await?;
    /// use atmls::client::{InviteOptions, JoinOutcome};
    /// let g = alice.create_group(&[]).await?;
    /// let chat = alice.conversation(&g);
    /// let link = chat.create_invite(InviteOptions { approval: true, ..Default::default() }).await?;
    /// let pending = carol.request_join(&link).await?;
    /// alice.sync().await?;
    /// let request = chat.join_requests().await?[0].id;
    /// assert_eq!(chat.approve_join(&request).await?, JoinOutcome::Approved);
    /// assert_eq!(carol.join_outcome(&pending).await?, JoinOutcome::Approved);
    /// carol.sync().await?;
    /// assert_eq!(carol.conversation(&g).members().await?.len(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn approve_join(self, request: &RequestId) -> Result<JoinOutcome, Error> {
        self.client.approve_join(self.id, request).await
    }

    /// Declines a request; the requester is told.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # use std::sync::Arc;
    /// # use atmls::{Client, directory::MemoryDirectory, transport::MemoryTransport, storage::Store};
    /// # use atmls::identity::DeviceIdentity;
    /// # let (dir, net) = (Arc::new(MemoryDirectory::new()), Arc::new(MemoryTransport::new()));
    /// # let alice = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    /// #     .identity(DeviceIdentity::new_account("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?)).build().await?;
    /// # let carol = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    /// #     .identity(DeviceIdentity::new_account("did:plc:cccccccccccccccccccccccc".parse()?)).build().await?;
    /// use atmls::client::{InviteOptions, JoinOutcome};
    /// let g = alice.create_group(&[]).await?;
    /// let chat = alice.conversation(&g);
    /// let link = chat.create_invite(InviteOptions { approval: true, ..Default::default() }).await?;
    /// let pending = carol.request_join(&link).await?;
    /// alice.sync().await?;
    /// let request = chat.join_requests().await?[0].id;
    /// chat.decline_join(&request).await?;
    /// assert_eq!(carol.join_outcome(&pending).await?, JoinOutcome::Declined);
    /// assert!(chat.join_requests().await?.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn decline_join(self, request: &RequestId) -> Result<(), Error> {
        self.client.decline_join(self.id, request).await
    }
}
