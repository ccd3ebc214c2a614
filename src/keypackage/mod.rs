//! KeyPackages: generating this device's (several single-use plus one last-resort, each with
//! its own MLS signature key and leaf proof), and validating other accounts' records before
//! adding them (spec/keypackage.md).

use openmls::prelude::{
    tls_codec::{Deserialize as _, Serialize as _},
    Ciphersuite, CredentialWithKey, ExtensionType, Extensions, KeyPackage, KeyPackageIn,
    KeyPackageVerifyError, Lifetime, ProposalType, ProtocolVersion,
};
use openmls_basic_credential::SignatureKeyPair;
use openmls_traits::{crypto::OpenMlsCrypto, OpenMlsProvider};

use crate::credential::{is_default_extension, UNLISTED_EXTENSION};
use crate::credential::{validate_leaf, AtmlsIdentity, CredentialError, LeafProof};
use crate::identity::{DeviceIdentity, PublicKey, VerifiedAccount};

mod record;

pub use record::KeyPackageRecord;

/// The ciphersuite atmls uses by default: MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519 (0x0001).
pub const DEFAULT_CIPHERSUITE: Ciphersuite =
    Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;

/// Largest serialized KeyPackage we parse (bounds work on hostile records).
pub const MAX_KEY_PACKAGE_LEN: usize = 16 * 1024;

/// Longest KeyPackage lifetime (`not_after - not_before`) an adder accepts (KP-4): 90 days.
/// RFC 9420 §10 asks applications to bound it, so that a key published once does not stay
/// addable for years; our own packages live 28 days plus an hour's margin.
pub const MAX_KEY_PACKAGE_LIFETIME_SECS: u64 = 90 * 24 * 3600;

/// How many KeyPackages a device keeps published, and for how long.
///
/// ```rust
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use atmls::directory::{Directory as _, MemoryDirectory};
/// use atmls::identity::{unix_now, DeviceIdentity};
/// use atmls::{storage::Store, transport::MemoryTransport, Client};
/// use atmls::keypackage::KeyPackagePolicy;
///
/// let policy = KeyPackagePolicy { single_use: 2, ..KeyPackagePolicy::default() };
/// let dir = Arc::new(MemoryDirectory::new());
/// let alice = Client::builder(dir.clone(), Arc::new(MemoryTransport::new()), Store::in_memory()?)
///     .identity(DeviceIdentity::new_account("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?))
///     .key_package_policy(policy)
///     .build()
///     .await?;
/// // Two single-use KeyPackages and the last-resort one.
/// let published = dir.key_packages(alice.did()).await?;
/// assert_eq!(published.len(), 3);
/// assert_eq!(published.iter().filter(|r| r.last_resort).count(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPackagePolicy {
    /// Single-use KeyPackages to publish.
    pub single_use: usize,
    /// Replenish to `single_use` when fewer than this remain.
    pub replenish_below: usize,
    /// Lifetime of each KeyPackage, in seconds; at most [`MAX_KEY_PACKAGE_LIFETIME_SECS`]
    /// less an hour (the margin before `now`), to which a longer one is shortened.
    pub lifetime_secs: u64,
}

impl Default for KeyPackagePolicy {
    fn default() -> Self {
        KeyPackagePolicy {
            single_use: 5,
            replenish_below: 3,
            lifetime_secs: 28 * 24 * 3600,
        }
    }
}

/// Errors about KeyPackages.
///
/// ```rust
/// use atmls::identity::{unix_now, DeviceIdentity, VerifiedAccount};
/// use atmls::keypackage::{validate_record, KeyPackageError, KeyPackageRecord};
/// use atmls::keypackage::DEFAULT_CIPHERSUITE;
/// use openmls_rust_crypto::RustCrypto;
///
/// let device = DeviceIdentity::new_account("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?);
/// let account = VerifiedAccount {
///     did: device.did.clone(),
///     identity_key: device.certificate.identity_key,
///     declared_at: device.certificate.created,
///     predecessors: Vec::new(),
///     devices: vec![device.installation.public()],
///     rejected_devices: Vec::new(),
/// };
/// // A record whose KeyPackage bytes are garbage.
/// let record = KeyPackageRecord {
///     did: device.did.clone(),
///     installation_key: device.installation.public(),
///     key_package_ref: vec![0; 32],
///     key_package: b"not a KeyPackage".to_vec(),
///     ciphersuite: u16::from(DEFAULT_CIPHERSUITE),
///     last_resort: false,
///     created: unix_now(),
///     expires: unix_now() + 3600,
/// };
/// let crypto = RustCrypto::default();
/// match validate_record(&record, &account, &crypto, DEFAULT_CIPHERSUITE, unix_now()) {
///     Err(e @ KeyPackageError::Malformed(_)) => assert!(!e.is_retryable()),
///     other => panic!("expected a malformed KeyPackage, got {other:?}"),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[non_exhaustive]
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyPackageError {
    /// KP-1: the bytes are not a KeyPackage, or its signature does not verify.
    #[error("malformed or unverifiable KeyPackage: {0}")]
    Malformed(String),
    /// KP-2: the credential failed validation.
    #[error("KeyPackage credential: {0}")]
    Credential(#[from] CredentialError),
    /// KP-3: the record's fields disagree with the KeyPackage.
    #[error("KeyPackage record disagrees with its content: {0}")]
    RecordMismatch(&'static str),
    /// KP-4: outside its lifetime.
    #[error("KeyPackage expired or not yet valid")]
    Expired,
    /// KP-4: valid for longer than [`MAX_KEY_PACKAGE_LIFETIME_SECS`].
    #[error("KeyPackage lifetime of {0} s is longer than allowed")]
    LifetimeTooLong(u64),
    /// KP-5: another ciphersuite than the group's.
    #[error("KeyPackage ciphersuite {0:#06x} is not the group's")]
    WrongCiphersuite(u16),
    /// Creating a KeyPackage failed locally.
    #[error("creating a KeyPackage failed: {0}")]
    Create(String),
}

impl KeyPackageError {
    /// Whether retrying can help (only when the directory may still catch up): every other
    /// refusal is a verdict on the published bytes, which a retry reads again.
    ///
    /// ```rust
    /// use atmls::credential::CredentialError;
    /// use atmls::keypackage::KeyPackageError;
    ///
    /// let did = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?;
    /// // A device the directory does not list yet: it may by the next try.
    /// assert!(KeyPackageError::from(CredentialError::UnknownDevice(did)).is_retryable());
    /// assert!(!KeyPackageError::Expired.is_retryable());
    /// # Ok::<(), atmls::identity::IdentityError>(())
    /// ```
    pub fn is_retryable(&self) -> bool {
        match self {
            KeyPackageError::Credential(e) => e.is_retryable(),
            KeyPackageError::Malformed(_)
            | KeyPackageError::RecordMismatch(_)
            | KeyPackageError::Expired
            | KeyPackageError::LifetimeTooLong(_)
            | KeyPackageError::WrongCiphersuite(_)
            | KeyPackageError::Create(_) => false,
        }
    }
}

/// A fresh MLS leaf signature key with the installation's proof over it (CRED-5), stored in
/// openmls's storage so that groups can load the signer later. Returns the signer, the
/// credential with its key, and the leaf extensions carrying the proof.
///
/// The client calls this for every KeyPackage and self-update; it is public for tools that
/// build leaves with openmls directly (interop tests, custom commit flows).
///
/// ```rust
/// use atmls::credential::{AtmlsIdentity, LEAF_PROOF_EXTENSION};
/// use atmls::identity::DeviceIdentity;
/// use atmls::keypackage::{new_leaf_key, DEFAULT_CIPHERSUITE};
/// use openmls_rust_crypto::OpenMlsRustCrypto;
///
/// let provider = OpenMlsRustCrypto::default();
/// let device = DeviceIdentity::new_account("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?);
/// let (signer, credential, extensions) = new_leaf_key(&provider, &device, DEFAULT_CIPHERSUITE)?;
/// // A fresh key, certified by this device's installation key.
/// assert_eq!(credential.signature_key.as_slice(), signer.public());
/// assert_ne!(signer.public(), device.installation.public().as_bytes());
/// assert!(extensions.unknown(LEAF_PROOF_EXTENSION).is_some());
/// let identity = AtmlsIdentity::from_credential(&credential.credential)?;
/// assert_eq!(identity.certificate, device.certificate);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn new_leaf_key<P: OpenMlsProvider>(
    provider: &P,
    device: &DeviceIdentity,
    cs: Ciphersuite,
) -> Result<
    (
        SignatureKeyPair,
        CredentialWithKey,
        Extensions<openmls::prelude::LeafNode>,
    ),
    KeyPackageError,
> {
    let signer = SignatureKeyPair::new(cs.signature_algorithm())
        .map_err(|e| KeyPackageError::Create(format!("{e:?}")))?;
    signer
        .store(provider.storage())
        .map_err(|e| KeyPackageError::Create(format!("storing signer: {e:?}")))?;
    let proof = LeafProof {
        signature: device
            .installation
            .sign_leaf_key(&device.did, signer.public(), u16::from(cs)),
    };
    let ext = Extensions::single(proof.to_extension())
        .map_err(|e| KeyPackageError::Create(e.to_string()))?;
    let cwk = CredentialWithKey {
        credential: AtmlsIdentity {
            certificate: device.certificate.clone(),
        }
        .to_credential(),
        signature_key: signer.public().into(),
    };
    Ok((signer, cwk, ext))
}

/// How far into the past a KeyPackage's lifetime starts, for clocks behind ours (openmls's
/// margin).
const LIFETIME_MARGIN_SECS: u64 = 3600;

/// Creates one KeyPackage for this device (private parts go to openmls's storage) and the
/// record to publish, valid from an hour before `now` (the client's clock) for
/// `lifetime_secs` after it.
pub(crate) fn generate<P: OpenMlsProvider>(
    provider: &P,
    device: &DeviceIdentity,
    cs: Ciphersuite,
    last_resort: bool,
    lifetime_secs: u64,
    now: u64,
) -> Result<KeyPackageRecord, KeyPackageError> {
    // Longer would be refused by every adder (KP-4).
    let lifetime_secs = lifetime_secs.min(MAX_KEY_PACKAGE_LIFETIME_SECS - LIFETIME_MARGIN_SECS);
    let (signer, cwk, ext) = new_leaf_key(provider, device, cs)?;
    let mut b = KeyPackage::builder()
        .key_package_lifetime(Lifetime::init(
            now.saturating_sub(LIFETIME_MARGIN_SECS),
            now.saturating_add(lifetime_secs),
        ))
        .leaf_node_capabilities(crate::extensions::leaf_capabilities(cs))
        .leaf_node_extensions(ext);
    if last_resort {
        b = b.mark_as_last_resort();
    }
    let bundle = b
        .build(cs, provider, &signer, cwk)
        .map_err(|e| KeyPackageError::Create(e.to_string()))?;
    let kp = bundle.key_package();
    let key_package_ref = kp
        .hash_ref(provider.crypto())
        .map_err(|e| KeyPackageError::Create(e.to_string()))?
        .as_slice()
        .to_vec();
    let bytes = kp
        .tls_serialize_detached()
        .map_err(|e| KeyPackageError::Create(e.to_string()))?;
    Ok(KeyPackageRecord {
        did: device.did.clone(),
        installation_key: device.installation.public(),
        key_package_ref,
        key_package: bytes,
        ciphersuite: u16::from(cs),
        last_resort,
        created: now,
        expires: kp.life_time().not_after(),
    })
}

/// Proposal types a leaf supports without listing them (RFC 9420 §7.2).
fn is_default_proposal(t: ProposalType) -> bool {
    matches!(
        t,
        ProposalType::Add
            | ProposalType::Update
            | ProposalType::Remove
            | ProposalType::PreSharedKey
            | ProposalType::Reinit
            | ProposalType::ExternalInit
            | ProposalType::GroupContextExtensions
    )
}

/// CRED-9 on a KeyPackage's leaf: it supports everything every atmls group requires (MLS 1.0,
/// the group's ciphersuite, and the required capabilities of `group::create_config`), and it
/// lists every extension it carries (RFC 9420 §7.3), `last_resort` included on a last-resort
/// package. A leaf that falls short could never be added: openmls would refuse the commit.
pub(crate) fn check_capabilities(kp: &KeyPackage, cs: Ciphersuite) -> Result<(), CredentialError> {
    let leaf = kp.leaf_node();
    let caps = leaf.capabilities();
    if !caps.versions().contains(&ProtocolVersion::Mls10) {
        return Err(CredentialError::Unsupported("the protocol version"));
    }
    if !caps.ciphersuites().contains(&cs.into()) {
        return Err(CredentialError::Unsupported("the group's ciphersuite"));
    }
    let required = crate::extensions::required_capabilities();
    let lacks = |t: &ExtensionType| !is_default_extension(*t) && !caps.extensions().contains(t);
    if required.extension_types().iter().any(lacks) {
        return Err(CredentialError::Unsupported(
            "an extension every group requires",
        ));
    }
    if required
        .proposal_types()
        .iter()
        .any(|t| !is_default_proposal(*t) && !caps.proposals().contains(t))
    {
        return Err(CredentialError::Unsupported(
            "a proposal every group requires",
        ));
    }
    if required
        .credential_types()
        .iter()
        .any(|t| !caps.credentials().contains(t))
    {
        return Err(CredentialError::Unsupported("Basic credentials"));
    }
    crate::credential::check_listed_extensions(leaf)?;
    // Every atmls leaf lists `last_resort`, single-use packages included (CRED-9): one
    // capabilities list for all of a device's packages.
    if !caps.extensions().contains(&ExtensionType::LastResort) {
        return Err(CredentialError::Unsupported("the last_resort extension"));
    }
    Ok(())
}

/// Validates a KeyPackage record read from a directory against the verified account
/// (KP-1 … KP-5, and CRED-1 … CRED-7 and CRED-9 on its leaf). Only a KeyPackage that passes
/// is ever added, so a package that could not join an atmls group never fails a commit.
///
/// What an adder does with what the directory serves:
///
/// ```rust
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use atmls::directory::{Directory as _, MemoryDirectory};
/// use atmls::identity::{unix_now, DeviceIdentity};
/// use atmls::{storage::Store, transport::MemoryTransport, Client};
/// use atmls::keypackage::{validate_record, KeyPackageError, DEFAULT_CIPHERSUITE};
/// use openmls_rust_crypto::RustCrypto;
///
/// let dir = Arc::new(MemoryDirectory::new());
/// let bob = Client::builder(dir.clone(), Arc::new(MemoryTransport::new()), Store::in_memory()?)
///     .identity(DeviceIdentity::new_account("did:plc:bbbbbbbbbbbbbbbbbbbbbbbb".parse()?))
///     .build()
///     .await?;
/// let account = dir.account(bob.did()).await?.ok_or("no account")?.verify(bob.did(), unix_now())?;
/// let records = dir.key_packages(bob.did()).await?;
/// let record = records.first().ok_or("no KeyPackage")?;
/// let crypto = RustCrypto::default();
/// let key_package = validate_record(record, &account, &crypto, DEFAULT_CIPHERSUITE, unix_now())?;
/// assert_eq!(key_package.last_resort(), record.last_resort);
///
/// // The same record after its lifetime is refused.
/// let later = record.expires + 1;
/// assert!(matches!(
///     validate_record(record, &account, &crypto, DEFAULT_CIPHERSUITE, later),
///     Err(KeyPackageError::Expired)
/// ));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
pub fn validate_record(
    record: &KeyPackageRecord,
    account: &VerifiedAccount,
    crypto: &impl OpenMlsCrypto,
    cs: Ciphersuite,
    now: u64,
) -> Result<KeyPackage, KeyPackageError> {
    if record.key_package.len() > MAX_KEY_PACKAGE_LEN {
        return Err(KeyPackageError::Malformed("too long".into()));
    }
    let kp_in = KeyPackageIn::tls_deserialize_exact(record.key_package.as_slice())
        .map_err(|e| KeyPackageError::Malformed(e.to_string()))?;
    // The lifetime is KP-4's, on the adder's clock (`now`), not openmls's system clock.
    let kp = kp_in
        .validate_received(crypto, ProtocolVersion::Mls10)
        .map_err(|e| match e {
            // A KeyPackage extension (e.g. `last_resort`) its leaf does not list (CRED-9).
            KeyPackageVerifyError::UnsupportedExtension => {
                KeyPackageError::Credential(CredentialError::Unsupported(UNLISTED_EXTENSION))
            }
            e => KeyPackageError::Malformed(e.to_string()),
        })?;
    let kp_cs = u16::from(kp.ciphersuite());
    if kp_cs != record.ciphersuite {
        return Err(KeyPackageError::RecordMismatch("ciphersuite"));
    }
    if kp.ciphersuite() != cs {
        return Err(KeyPackageError::WrongCiphersuite(kp_cs));
    }
    check_capabilities(&kp, cs)?;
    let lt = kp.life_time();
    let span = lt.not_after().saturating_sub(lt.not_before());
    if span > MAX_KEY_PACKAGE_LIFETIME_SECS {
        return Err(KeyPackageError::LifetimeTooLong(span));
    }
    if now < lt.not_before() || now >= lt.not_after() {
        return Err(KeyPackageError::Expired);
    }
    let leaf = validate_leaf(kp.leaf_node(), cs, now)?;
    if leaf.did != account.did || leaf.did != record.did {
        return Err(KeyPackageError::RecordMismatch("DID"));
    }
    if leaf.installation_key != record.installation_key {
        return Err(KeyPackageError::RecordMismatch("installation key"));
    }
    leaf.check_account(&account.identity_key, Some(&account.devices))?;
    let r = kp
        .hash_ref(crypto)
        .map_err(|e| KeyPackageError::Malformed(e.to_string()))?;
    if r.as_slice() != record.key_package_ref.as_slice() {
        return Err(KeyPackageError::RecordMismatch("KeyPackageRef"));
    }
    if kp.last_resort() != record.last_resort {
        return Err(KeyPackageError::RecordMismatch("last_resort"));
    }
    Ok(kp)
}

/// KeyPackages chosen per device, and records refused with the reason.
pub type Selection = (
    Vec<(PublicKey, KeyPackage)>,
    Vec<(KeyPackageRecord, KeyPackageError)>,
);

/// Picks one valid KeyPackage per device of `account`: a single-use one if any, else the
/// last-resort one. Returns the chosen packages and the records refused, with reasons.
///
/// ```rust
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use atmls::directory::{Directory as _, MemoryDirectory};
/// use atmls::identity::{unix_now, DeviceIdentity};
/// use atmls::{storage::Store, transport::MemoryTransport, Client};
/// use atmls::keypackage::{select_per_device, DEFAULT_CIPHERSUITE};
/// use openmls_rust_crypto::RustCrypto;
///
/// let dir = Arc::new(MemoryDirectory::new());
/// let bob = Client::builder(dir.clone(), Arc::new(MemoryTransport::new()), Store::in_memory()?)
///     .identity(DeviceIdentity::new_account("did:plc:bbbbbbbbbbbbbbbbbbbbbbbb".parse()?))
///     .build()
///     .await?;
/// let account = dir.account(bob.did()).await?.ok_or("no account")?.verify(bob.did(), unix_now())?;
/// let records = dir.key_packages(bob.did()).await?;
/// let crypto = RustCrypto::default();
/// let (chosen, refused) =
///     select_per_device(&records, &account, &crypto, DEFAULT_CIPHERSUITE, unix_now());
/// // Bob's one device, with a single-use package.
/// assert_eq!(chosen.len(), 1);
/// assert_eq!(&chosen[0].0, bob.installation());
/// assert!(!chosen[0].1.last_resort());
/// assert!(refused.is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
pub fn select_per_device(
    records: &[KeyPackageRecord],
    account: &VerifiedAccount,
    crypto: &impl OpenMlsCrypto,
    cs: Ciphersuite,
    now: u64,
) -> Selection {
    let mut chosen: Vec<(PublicKey, KeyPackage, bool)> = Vec::new();
    let mut refused = Vec::new();
    for rec in records {
        match validate_record(rec, account, crypto, cs, now) {
            Ok(kp) => {
                let lr = kp.last_resort();
                match chosen
                    .iter_mut()
                    .find(|(d, _, _)| *d == rec.installation_key)
                {
                    Some(slot) if slot.2 && !lr => *slot = (rec.installation_key, kp, lr),
                    Some(_) => {}
                    None => chosen.push((rec.installation_key, kp, lr)),
                }
            }
            Err(e) => refused.push((rec.clone(), e)),
        }
    }
    (
        chosen.into_iter().map(|(d, k, _)| (d, k)).collect(),
        refused,
    )
}
