//! Groups: the MLS group configuration atmls uses, the values derived from a group for the
//! transport (mailbox, epoch tag), group data (DM or group), membership by DID, and the
//! validation of incoming commits, proposals and Welcomes (spec/group.md).

// The `unwrap`/`expect` calls in this file are in doc examples, which run as tests on
// values they build themselves: none is on input from another party.

mod authorize;
mod data;
mod disappearing;
mod governance;
mod invites;
mod message_id;
mod metadata;
mod outer;
mod resync;
mod roster;
mod signer;
mod tree;
mod validate;
mod welcome;

pub(crate) use authorize::{authorize_commit, check_context, invites_of, metadata_of};
pub use authorize::{GovernanceChange, GovernanceError};
pub use data::{GroupData, GroupKind, GROUP_DATA_EXTENSION};
pub(crate) use disappearing::{disappearing_secs, with_disappearing};
pub use disappearing::{DISAPPEARING_EXTENSION, MAX_DISAPPEARING_SECS};
pub use governance::{
    Action, Governance, Policies, Policy, Preset, Role, Roles, POLICIES_EXTENSION, ROLES_EXTENSION,
};
pub(crate) use invites::{invite_id, to_extension as invites_to_extension};
pub use invites::{InviteId, InviteRecord, InviteState, INVITES_EXTENSION, MAX_INVITES};
pub use message_id::MessageId;
pub use metadata::{
    Avatar, AvatarBlob, GroupMetadata, MAX_AVATAR_BYTES, MAX_DESCRIPTION, MAX_NAME, MAX_PINNED,
    METADATA_EXTENSION,
};
#[cfg(feature = "fuzzing")]
pub(crate) use outer::{
    decode_hint, encode_hint, open_with as outer_open_with, seal_plain as outer_seal_plain,
    split_hint, MAX_HINT_DIDS,
};
pub(crate) use outer::{open as outer_open, seal as outer_seal};
pub use outer::{seal as seal_for_transport, seal_hinted as seal_for_transport_with_hint};
pub(crate) use resync::{open as resync_open, seal as resync_seal};
pub use resync::{ResyncRequest, RESYNC_VERSION};
pub(crate) use roster::{Roster, RosterChange};
pub(crate) use signer::LeafSigner;
pub(crate) use tree::{staging_error, TreeRef};
pub use tree::{TreeError, WELCOME_TREE_EXTENSION};
pub(crate) use validate::{check_commit, stays, validate_joined_tree, validate_proposal};
pub(crate) use welcome::welcome_for;

use std::fmt;

use openmls::framing::errors::{MessageDecryptionError, SecretTreeError};
use openmls::prelude::{
    Ciphersuite, Extension, Extensions, LeafNode, MlsGroup, MlsGroupCreateConfig,
    MlsGroupJoinConfig, ProcessMessageError, SenderRatchetConfiguration, ValidationError,
    PURE_CIPHERTEXT_WIRE_FORMAT_POLICY,
};
use openmls_traits::crypto::OpenMlsCrypto;

// H(label, data) of spec/group.md, shared with the wire contract (mailbox ids).
use atmls_ds_wire::tagged_hash;

use crate::credential::CredentialError;
use crate::identity::{Did, PublicKey};
use crate::transport::{EpochTag, Mailbox, MailboxId};

/// A group's id: 32 random bytes chosen by its creator, private to its members.
///
/// Its `Display` form is hex, for an app's own records:
///
/// ```rust
/// use atmls::GroupId;
///
/// let stored = "5e".repeat(32);
/// let id = GroupId::from_hex(&stored).ok_or("not a group id")?;
/// assert_eq!(id.to_string(), stored);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupId(pub(crate) Vec<u8>);

impl GroupId {
    /// The raw bytes.
    ///
    /// ```rust
    /// use atmls::GroupId;
    ///
    /// let id = GroupId::from_hex(&"01".repeat(32)).ok_or("not a group id")?;
    /// assert_eq!(id.as_bytes(), &[1; 32]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Parses the hex form printed by `Display`.
    ///
    /// ```rust
    /// use atmls::GroupId;
    ///
    /// let id = GroupId::from_hex(&"ab".repeat(32)).ok_or("not a group id")?;
    /// assert_eq!(GroupId::from_hex(&id.to_string()), Some(id));
    /// // Not hex, or not 32 bytes:
    /// assert_eq!(GroupId::from_hex("xyz"), None);
    /// assert_eq!(GroupId::from_hex(&"ab".repeat(16)), None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_hex(s: &str) -> Option<Self> {
        hex::decode(s).ok().filter(|b| b.len() == 32).map(GroupId)
    }
}

impl fmt::Display for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(&self.0))
    }
}

impl fmt::Debug for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "GroupId({})",
            hex::encode(self.0.get(..6).unwrap_or(&self.0))
        )
    }
}

/// Where this device stands in a group.
///
/// ```rust
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use atmls::{Client, GroupStatus, directory::MemoryDirectory, transport::MemoryTransport};
/// use atmls::{identity::DeviceIdentity, storage::Store};
/// let alice = Client::builder(
///     Arc::new(MemoryDirectory::new()),
///     Arc::new(MemoryTransport::new()),
///     Store::in_memory()?,
/// )
/// .identity(DeviceIdentity::new_account("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?))
/// .build()
/// .await?;
/// let group = alice.create_group(&[]).await?;
/// let info = alice.groups().await?.into_iter().find(|g| g.id == group).ok_or("no group")?;
/// assert_eq!(info.status, GroupStatus::Active);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupStatus {
    /// A member.
    Active,
    /// Asked to leave; waiting for a member to commit the removal.
    Leaving,
    /// No longer a member (removed, or left).
    Left,
}

impl GroupStatus {
    pub(crate) fn to_i64(self) -> i64 {
        match self {
            GroupStatus::Active => 1,
            GroupStatus::Leaving => 2,
            GroupStatus::Left => 3,
        }
    }

    pub(crate) fn from_i64(v: i64) -> Option<Self> {
        Some(match v {
            1 => GroupStatus::Active,
            2 => GroupStatus::Leaving,
            3 => GroupStatus::Left,
            _ => return None,
        })
    }
}

/// A member device of a group.
///
/// An account can have several devices in a group, each its own member:
///
/// ```rust
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// # use std::sync::Arc;
/// # use atmls::{Client, directory::MemoryDirectory, transport::MemoryTransport, storage::Store};
/// # use atmls::identity::DeviceIdentity;
/// # let (dir, net) = (Arc::new(MemoryDirectory::new()), Arc::new(MemoryTransport::new()));
/// # let alice = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
/// #     .identity(DeviceIdentity::new_account("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?)).build().await?;
/// # let bob = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
/// #     .identity(DeviceIdentity::new_account("did:plc:bbbbbbbbbbbbbbbbbbbbbbbb".parse()?)).build().await?;
/// use atmls::group::Member;
/// let g = alice.create_group(&[bob.did().clone()]).await?;
/// let members = alice.conversation(&g).members().await?;
/// let me = Member { did: alice.did().clone(), installation: *alice.installation() };
/// assert!(members.contains(&me));
/// assert!(members.iter().any(|m| &m.did == bob.did()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Member {
    /// The account.
    pub did: Did,
    /// The device's installation key.
    pub installation: PublicKey,
}

/// Errors of the group layer: why an operation or an incoming message was refused. A refused
/// message leaves the group state exactly as it was.
///
/// Credential failures keep their cause, so callers can tell them apart:
///
/// ```rust
/// use atmls::credential::{CredentialError, LeafIdentity};
/// use atmls::group::GroupError;
/// use atmls::identity::{DeviceIdentity, IdentityKeyPair};
///
/// let device = DeviceIdentity::new_account("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?);
/// let leaf = LeafIdentity {
///     did: device.did.clone(),
///     identity_key: device.certificate.identity_key,
///     installation_key: device.installation.public(),
/// };
/// // A leaf certified by another identity key than the one the directory has.
/// let directory_key = IdentityKeyPair::generate().public();
/// let check = |leaf: &LeafIdentity| -> Result<(), GroupError> {
///     leaf.check_account(&directory_key, None)?;
///     Ok(())
/// };
/// match check(&leaf) {
///     Err(GroupError::Credential(CredentialError::UnknownIdentityKey(did))) => {
///         assert_eq!(did, device.did)
///     }
///     other => panic!("expected an unknown identity key, got {other:?}"),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum GroupError {
    /// The bytes are not a well-formed MLS message of the expected kind.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// The message is for another group.
    #[error("message for another group")]
    WrongGroup,
    /// The message is for an epoch other than the group's current one.
    #[error("message for the wrong epoch")]
    WrongEpoch,
    /// The message was already processed (its key was consumed).
    #[error("replayed message")]
    Replay,
    /// A Welcome for a group this device is still a member of (AGREE-7: a sync reads the
    /// group's mailbox, where its removal may wait, before refusing it for good).
    #[error("already a member of this group")]
    AlreadyMember,
    /// The message could not be decrypted or authenticated (e.g. its sender is not a member).
    #[error("cannot decrypt or authenticate message: {0}")]
    Undecryptable(String),
    /// A leaf in the message or tree failed credential validation.
    #[error("invalid credential: {0}")]
    Credential(#[from] CredentialError),
    /// The commit or proposal breaks atmls rules (e.g. removing another user by proposal).
    #[error("not allowed: {0}")]
    NotAllowed(&'static str),
    /// The commit is invalid by MLS rules.
    #[error("invalid commit: {0}")]
    InvalidCommit(String),
    /// This device is not (or no longer) a member.
    #[error("not a member of this group")]
    NotMember,
    /// No such group on this device.
    #[error("unknown group")]
    UnknownGroup,
    /// A Welcome did not match any of our KeyPackages or failed to join.
    #[error("cannot join from Welcome: {0}")]
    Welcome(String),
    /// A Welcome's out-of-band ratchet tree was missing or bad (spec/large-groups.md LG-T-5).
    #[error("cannot join from Welcome: {0}")]
    WelcomeTree(TreeError),
    /// A governance rule (roles, policies, metadata limits, invites) refused it
    /// (spec/governance.md).
    #[error(transparent)]
    Governance(#[from] GovernanceError),
    /// Proposals read in this epoch (a leave request) wait for a commit this device cannot
    /// make (its role does not allow it, GOV-4, or they remove this device), and MLS sends
    /// nothing while they are pending: the message stays queued and goes out with a sync once
    /// another member has committed them.
    #[error("waiting for pending proposals to be committed")]
    AwaitingCommit,
    /// An MLS library failure on our side.
    #[error("mls: {0}")]
    Mls(String),
}

impl GroupError {
    /// Whether retrying can help (credential checks that depend on the directory, and a
    /// message waiting for someone else's commit).
    ///
    /// ```rust
    /// use atmls::credential::CredentialError;
    /// use atmls::group::GroupError;
    ///
    /// let did = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?;
    /// // The directory may list the device by the next try.
    /// assert!(GroupError::from(CredentialError::UnknownDevice(did)).is_retryable());
    /// assert!(GroupError::AwaitingCommit.is_retryable());
    /// // A replayed message stays replayed.
    /// assert!(!GroupError::Replay.is_retryable());
    /// # Ok::<(), atmls::identity::IdentityError>(())
    /// ```
    pub fn is_retryable(&self) -> bool {
        match self {
            GroupError::Credential(e) => e.is_retryable(),
            GroupError::AwaitingCommit => true,
            GroupError::Malformed(_)
            | GroupError::WrongGroup
            | GroupError::WrongEpoch
            | GroupError::Replay
            | GroupError::AlreadyMember
            | GroupError::Undecryptable(_)
            | GroupError::NotAllowed(_)
            | GroupError::InvalidCommit(_)
            | GroupError::NotMember
            | GroupError::UnknownGroup
            | GroupError::Welcome(_)
            | GroupError::WelcomeTree(_)
            | GroupError::Governance(_)
            | GroupError::Mls(_) => false,
        }
    }

    /// Classifies an openmls processing error by its type, keeping only what callers can act
    /// on: a replay, a message of another epoch or group, a refused commit; everything else
    /// is a message this member cannot read.
    pub(crate) fn from_process<S: fmt::Debug>(e: ProcessMessageError<S>) -> Self {
        use MessageDecryptionError::SecretTreeError as Ratchet;
        use ValidationError::UnableToDecrypt;
        let text = || format!("{e:?}").chars().take(200).collect();
        match &e {
            ProcessMessageError::ValidationError(v) => match v {
                UnableToDecrypt(Ratchet(SecretTreeError::SecretReuseError)) => GroupError::Replay,
                UnableToDecrypt(Ratchet(SecretTreeError::TooDistantInThePast))
                | ValidationError::WrongEpoch => GroupError::WrongEpoch,
                ValidationError::WrongGroupId => GroupError::WrongGroup,
                _ => GroupError::Undecryptable(text()),
            },
            ProcessMessageError::InvalidCommit(_) => GroupError::InvalidCommit(text()),
            _ => GroupError::Undecryptable(text()),
        }
    }
}

pub(crate) use crate::extensions::required_capabilities;

/// The configuration a creator uses (GROUP-1, GROUP-2).
pub(crate) fn create_config(
    cs: Ciphersuite,
    data: &GroupData,
    extra: Vec<Extension>,
    leaf_extensions: Extensions<LeafNode>,
) -> Result<MlsGroupCreateConfig, GroupError> {
    let mut ext = vec![
        Extension::RequiredCapabilities(required_capabilities()),
        data.to_extension(),
    ];
    ext.extend(extra);
    let ext = Extensions::from_vec(ext).map_err(|e| GroupError::Mls(e.to_string()))?;
    let config = MlsGroupCreateConfig::builder()
        .ciphersuite(cs)
        // The tree travels out of band (spec/large-groups.md LG-T-1).
        .use_ratchet_tree_extension(false)
        .wire_format_policy(PURE_CIPHERTEXT_WIRE_FORMAT_POLICY)
        .max_past_epochs(0)
        .sender_ratchet_configuration(SenderRatchetConfiguration::new(20, 1000))
        .capabilities(crate::extensions::leaf_capabilities(cs))
        .with_group_context_extensions(ext)
        .with_leaf_node_extensions(leaf_extensions)
        .map_err(|e| GroupError::Mls(e.to_string()))?
        .build();
    Ok(config)
}

/// The configuration a joiner uses.
pub(crate) fn join_config() -> MlsGroupJoinConfig {
    MlsGroupJoinConfig::builder()
        .use_ratchet_tree_extension(false)
        .wire_format_policy(PURE_CIPHERTEXT_WIRE_FORMAT_POLICY)
        .max_past_epochs(0)
        .sender_ratchet_configuration(SenderRatchetConfiguration::new(20, 1000))
        .build()
}

/// A group's first mailbox: its posting capability derives from the secret group id (which
/// never leaves the members: payloads are sealed, DS-2), and its id from the capability, so the
/// transport can check a capability without learning the group (spec/group.md GROUP-4,
/// spec/ds.md DS-3). The group moves to another mailbox at every removal (GROUP-4a).
///
/// ```rust
/// use atmls::group::mailbox_for;
/// use atmls::transport::MailboxId;
///
/// let group_id = [7u8; 32];
/// let mailbox = mailbox_for(&group_id);
/// let capability = mailbox.post_secret.ok_or("a group mailbox has a capability")?;
/// assert_eq!(mailbox.id, MailboxId::for_capability(&capability));
/// // Every member derives the same mailbox; another group gets another one.
/// assert_eq!(mailbox_for(&group_id), mailbox);
/// assert_ne!(mailbox_for(&[8u8; 32]).id, mailbox.id);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn mailbox_for(group_id: &[u8]) -> Mailbox {
    Mailbox::from_capability(tagged_hash(b"atmls/v1/mailbox-post", group_id))
}

/// The mailbox a group moves to when a commit that removes anyone is merged (GROUP-4a): its
/// capability is an exporter value of the epoch that commit creates, which no removed member
/// ever holds, so the service refuses their posts to it (spec/ds.md DS-3).
pub(crate) fn moved_mailbox(
    group: &MlsGroup,
    crypto: &impl OpenMlsCrypto,
) -> Result<[u8; 32], GroupError> {
    let v = group
        .export_secret(crypto, "atmls/v1/mailbox-post", &[], 32)
        .map_err(|e| GroupError::Mls(e.to_string()))?;
    v.try_into()
        .map_err(|_| GroupError::Mls("exporter length".into()))
}

/// A device's Welcome mailbox, derived from its installation key (GROUP-5).
///
/// ```rust
/// use atmls::group::welcome_mailbox;
/// use atmls::identity::InstallationKeyPair;
///
/// let (phone, laptop) = (InstallationKeyPair::generate(), InstallationKeyPair::generate());
/// assert_eq!(welcome_mailbox(&phone.public()), welcome_mailbox(&phone.public()));
/// assert_ne!(welcome_mailbox(&phone.public()), welcome_mailbox(&laptop.public()));
/// ```
pub fn welcome_mailbox(installation: &PublicKey) -> MailboxId {
    crate::transport::welcome_mailbox_of(installation.as_bytes())
}

/// The opaque ordering key of the group's current epoch: an MLS exporter value (GROUP-6).
/// Public for tools and tests that drive openmls directly, like [`seal_for_transport`].
///
/// ```rust
/// use atmls::group::epoch_tag;
/// use atmls::identity::DeviceIdentity;
/// use atmls::keypackage::{new_leaf_key, DEFAULT_CIPHERSUITE};
/// use openmls::prelude::{LeafNodeParameters, MlsGroup, MlsGroupCreateConfig};
/// use openmls_rust_crypto::OpenMlsRustCrypto;
/// use openmls_traits::OpenMlsProvider as _;
///
/// let provider = OpenMlsRustCrypto::default();
/// let device = DeviceIdentity::new_account("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?);
/// let (signer, credential, _) = new_leaf_key(&provider, &device, DEFAULT_CIPHERSUITE)?;
/// let config = MlsGroupCreateConfig::builder().ciphersuite(DEFAULT_CIPHERSUITE).build();
/// let mut group = MlsGroup::new(&provider, &signer, &config, credential)?;
/// let first = epoch_tag(&group, provider.crypto())?;
/// assert_eq!(epoch_tag(&group, provider.crypto())?, first);
///
/// // A commit starts a new epoch, with a new tag.
/// group.self_update(&provider, &signer, LeafNodeParameters::default())?;
/// group.merge_pending_commit(&provider)?;
/// assert_ne!(epoch_tag(&group, provider.crypto())?, first);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn epoch_tag(group: &MlsGroup, crypto: &impl OpenMlsCrypto) -> Result<EpochTag, GroupError> {
    let v = group
        .export_secret(crypto, "atmls/v1/epoch-tag", &[], 32)
        .map_err(|e| GroupError::Mls(e.to_string()))?;
    let arr: [u8; 32] = v
        .try_into()
        .map_err(|_| GroupError::Mls("exporter length".into()))?;
    Ok(EpochTag(arr))
}
