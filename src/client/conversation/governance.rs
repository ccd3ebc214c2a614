//! Roles, policies and metadata of one conversation (spec/governance.md).

use super::Conversation;
use crate::client::Error;
use crate::content::MessageId;
use crate::group::{Action, Governance, GroupMetadata, Policy, Preset, Role};
use crate::identity::Did;

impl Conversation<'_> {
    /// The group's roles and policies (`None` for a DM, whose policy is fixed: GOV-3).
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
    /// use atmls::group::{Action, Role};
    /// let g = alice.create_group(&[bob.did().clone()]).await?;
    /// let gov = alice.conversation(&g).governance().await?.expect("a group's");
    /// assert_eq!(gov.roles.get(alice.did()), Role::Owner);
    /// assert!(!gov.allows(bob.did(), Action::ChangeRoles)); // admins change roles
    /// let dm = alice.dm(bob.did()).await?;
    /// assert!(alice.conversation(&dm).governance().await?.is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn governance(self) -> Result<Option<Governance>, Error> {
        self.client.governance(self.id).await
    }

    /// The role of `did` in the group (members of a DM are all [`Role::Member`]).
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
    /// use atmls::group::Role;
    /// let g = alice.create_group(&[bob.did().clone()]).await?;
    /// let chat = alice.conversation(&g);
    /// assert_eq!(chat.role(alice.did()).await?, Role::Owner);
    /// assert_eq!(chat.role(bob.did()).await?, Role::Member);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn role(self, did: &Did) -> Result<Role, Error> {
        self.client.role(self.id, did).await
    }

    /// Gives `did` a role (GOV-5): needs [`Action::ChangeRoles`], and no one grants or
    /// takes away a role above their own. The last owner cannot demote themself (GOV-6):
    /// use [`transfer_ownership`](Self::transfer_ownership).
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
    /// use atmls::group::Role;
    /// let g = alice.create_group(&[bob.did().clone()]).await?;
    /// alice.conversation(&g).set_role(bob.did(), Role::Moderator).await?;
    /// bob.sync().await?;
    /// assert_eq!(bob.conversation(&g).role(bob.did()).await?, Role::Moderator);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn set_role(self, did: &Did, role: Role) -> Result<(), Error> {
        self.client.set_role(self.id, did, role).await
    }

    /// Makes `to` an owner and this account an admin, in one commit (GOV-6).
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
    /// use atmls::group::Role;
    /// let g = alice.create_group(&[bob.did().clone()]).await?;
    /// let chat = alice.conversation(&g);
    /// chat.transfer_ownership(bob.did()).await?;
    /// assert_eq!(chat.role(bob.did()).await?, Role::Owner);
    /// assert_eq!(chat.role(alice.did()).await?, Role::Admin);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn transfer_ownership(self, to: &Did) -> Result<(), Error> {
        self.client.transfer_ownership(self.id, to).await
    }

    /// Leaves after making `successor` an owner: what the last owner must do (GOV-6).
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
    /// use atmls::group::Role;
    /// let g = alice.create_group(&[bob.did().clone()]).await?;
    /// bob.sync().await?;
    /// alice.conversation(&g).leave_naming(bob.did()).await?;
    /// bob.sync().await?; // bob's device commits alice's leave request
    /// let chat = bob.conversation(&g);
    /// assert_eq!(chat.role(bob.did()).await?, Role::Owner);
    /// assert_eq!(chat.members().await?.len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn leave_naming(self, successor: &Did) -> Result<(), Error> {
        self.client.leave_naming(self.id, successor).await
    }

    /// Sets the policy of one action (needs [`Action::ChangePolicies`]).
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
    /// use atmls::group::{Action, Policy, Role};
    /// let g = alice.create_group(&[bob.did().clone()]).await?;
    /// let chat = alice.conversation(&g);
    /// chat.set_policy(Action::EditName, Policy::AtLeast(Role::Admin)).await?;
    /// let gov = chat.governance().await?.expect("a group's");
    /// assert_eq!(gov.policies.get(Action::EditName), Policy::AtLeast(Role::Admin));
    /// bob.sync().await?;
    /// assert!(bob.conversation(&g).set_name("bob's group").await.is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn set_policy(self, action: Action, policy: Policy) -> Result<(), Error> {
        self.client.set_policy(self.id, action, policy).await
    }

    /// Replaces every policy with a preset (GOV-3; needs [`Action::ChangePolicies`]).
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
    /// use atmls::group::{Policies, Preset};
    /// let g = alice.create_group(&[bob.did().clone()]).await?;
    /// let chat = alice.conversation(&g);
    /// chat.apply_preset(Preset::AdminsOnly).await?;
    /// let gov = chat.governance().await?.expect("a group's");
    /// assert_eq!(gov.policies, Policies::preset(Preset::AdminsOnly));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn apply_preset(self, preset: Preset) -> Result<(), Error> {
        self.client.apply_preset(self.id, preset).await
    }

    /// The group's name, description, avatar reference and pinned messages.
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
    /// assert_eq!(chat.metadata().await?.name, "");
    /// chat.set_name("lunch club").await?;
    /// let metadata = chat.metadata().await?;
    /// assert_eq!(metadata.name, "lunch club");
    /// assert!(metadata.avatar.is_none() && metadata.pinned.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn metadata(self) -> Result<GroupMetadata, Error> {
        self.client.metadata(self.id).await
    }

    /// Renames the group (at most [`MAX_NAME`](crate::group::MAX_NAME) bytes).
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
    /// alice.conversation(&g).set_name("lunch club").await?;
    /// bob.sync().await?;
    /// assert_eq!(bob.conversation(&g).metadata().await?.name, "lunch club");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn set_name(self, name: &str) -> Result<(), Error> {
        self.client.set_name(self.id, name).await
    }

    /// Sets the description (at most [`MAX_DESCRIPTION`](crate::group::MAX_DESCRIPTION)
    /// bytes).
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
    /// alice.conversation(&g).set_description("Fridays at noon").await?;
    /// bob.sync().await?;
    /// assert_eq!(bob.conversation(&g).metadata().await?.description, "Fridays at noon");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn set_description(self, text: &str) -> Result<(), Error> {
        self.client.set_description(self.id, text).await
    }

    /// Sets the avatar: the image (at most [`MAX_AVATAR_BYTES`](crate::group::MAX_AVATAR_BYTES))
    /// is encrypted chunk by chunk under a fresh key and padded like a large attachment
    /// (CONTENT-25a), stored in the blob store for this group; the key and digest go into the
    /// group state (GOV-7). `None` removes it. The permission is checked before anything is
    /// stored. Once the change is committed, the previous avatar's blob is queued for erasure
    /// (CONTENT-25k); if the commit is refused for good, the new blob is erased (after a
    /// retryable failure the commit may yet land, so the new blob stays).
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
    /// let g = alice.create_group(&[bob.did().clone()]).await?;
    /// let png: &[u8] = b"\x89PNG...";
    /// alice.conversation(&g).set_avatar(Some(("image/png", png))).await?;
    /// bob.sync().await?;
    /// let chat = bob.conversation(&g);
    /// assert_eq!(chat.avatar().await?, Some(("image/png".to_string(), png.to_vec())));
    /// alice.conversation(&g).set_avatar(None).await?;
    /// bob.sync().await?;
    /// assert_eq!(chat.avatar().await?, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn set_avatar(self, image: Option<(&str, &[u8])>) -> Result<(), Error> {
        self.client.set_avatar(self.id, image).await
    }

    /// The avatar's MIME type and bytes, fetched from the blob store with its digest and
    /// every chunk checked (`None` if the group has none).
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
    /// let g = alice.create_group(&[bob.did().clone()]).await?;
    /// let chat = alice.conversation(&g);
    /// assert_eq!(chat.avatar().await?, None);
    /// chat.set_avatar(Some(("image/png", &b"\x89PNG..."[..]))).await?;
    /// let (mime_type, bytes) = chat.avatar().await?.expect("an avatar");
    /// assert_eq!((mime_type.as_str(), bytes.as_slice()), ("image/png", &b"\x89PNG..."[..]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn avatar(self) -> Result<Option<(String, Vec<u8>)>, Error> {
        self.client.avatar(self.id).await
    }

    /// Pins a message of the group's history (at most
    /// [`MAX_PINNED`](crate::group::MAX_PINNED)).
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
    /// let m = chat.send_text("meeting at ten").await?;
    /// chat.pin(&m.id).await?;
    /// bob.sync().await?;
    /// assert_eq!(bob.conversation(&g).metadata().await?.pinned, vec![m.id]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn pin(self, id: &MessageId) -> Result<(), Error> {
        self.client.pin(self.id, id).await
    }

    /// Unpins a message.
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
    /// let m = chat.send_text("meeting at ten").await?;
    /// chat.pin(&m.id).await?;
    /// chat.unpin(&m.id).await?;
    /// assert!(chat.metadata().await?.pinned.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn unpin(self, id: &MessageId) -> Result<(), Error> {
        self.client.unpin(self.id, id).await
    }
}
