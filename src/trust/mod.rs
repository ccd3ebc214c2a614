//! Trust in contacts' identity keys: trust on first use, key succession, warnings on
//! unendorsed changes, verification by safety number (spec/trust.md).
//!
//! A stolen PDS password lets an attacker publish a new declaration for a DID, but not sign it
//! with the key contacts pinned. So a contact's client follows a key change only along
//! endorsements by the pinned key; any other change is held back as a *pending change* and
//! raises a warning until the user accepts it ([`crate::Client::accept_identity_change`]).

pub(crate) mod consent;
mod pairing;
mod safety;

pub use consent::{AccountConsent, DeclineReason, IncomingPolicy};
pub(crate) use pairing::{find_request, respond, SecretChannel};
#[cfg(feature = "fuzzing")]
pub(crate) use pairing::{request_key, response_certificate};
pub use pairing::{PairingCode, PendingLink};
pub use safety::SafetyNumber;

use crate::identity::{succession, Did, IdentityDeclaration, IdentityError, PublicKey, Succession};

/// What this client holds about one contact's identity key.
///
/// ```rust
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use atmls::directory::{Directory as _, MemoryDirectory};
/// use atmls::identity::{unix_now, DeviceIdentity, IdentityKeyPair};
/// use atmls::{storage::Store, transport::MemoryTransport, Client};
/// let (dir, net) = (Arc::new(MemoryDirectory::new()), Arc::new(MemoryTransport::new()));
/// let account = |did: &str| {
///     let identity = DeviceIdentity::new_account(did.parse().expect("a valid DID"));
///     let store = Store::in_memory().expect("an in-memory store");
///     Client::builder(dir.clone(), net.clone(), store).identity(identity).build()
/// };
/// let alice = account("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa").await?;
/// let bob = account("did:plc:bbbbbbbbbbbbbbbbbbbbbbbb").await?;
/// alice.dm(bob.did()).await?; // pins bob's identity key
/// let bob_key = dir.account(bob.did()).await?.ok_or("no account")?.declaration.identity_key;
/// let trust = alice.contact_trust(bob.did()).await?;
/// assert_eq!(trust.identity_key, bob_key);
/// assert!(!trust.verified && trust.history.is_empty());
///
/// alice.mark_verified(bob.did()).await?; // after comparing safety numbers
/// assert!(alice.contact_trust(bob.did()).await?.verified);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContactTrust {
    /// The contact.
    pub did: Did,
    /// The pinned identity key: the only one whose devices we add or accept.
    pub identity_key: PublicKey,
    /// Whether the user verified it (safety number or QR).
    pub verified: bool,
    /// When it was first pinned (unix seconds).
    pub first_seen: u64,
    /// The `created` time of the newest declaration followed.
    pub declared_at: u64,
    /// An unendorsed key this client saw in the directory since it started and the user has
    /// not accepted (held in memory: seeing it changes nothing stored).
    pub pending: Option<PublicKey>,
    /// Earlier key changes, oldest first.
    pub history: Vec<KeyChange>,
}

/// One change of a contact's pinned key.
///
/// ```rust
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use atmls::directory::{Directory as _, MemoryDirectory};
/// use atmls::identity::{unix_now, DeviceIdentity, IdentityKeyPair};
/// use atmls::{storage::Store, transport::MemoryTransport, Client};
/// let (dir, net) = (Arc::new(MemoryDirectory::new()), Arc::new(MemoryTransport::new()));
/// let account = |did: &str| {
///     let identity = DeviceIdentity::new_account(did.parse().expect("a valid DID"));
///     let store = Store::in_memory().expect("an in-memory store");
///     Client::builder(dir.clone(), net.clone(), store).identity(identity).build()
/// };
/// let alice = account("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa").await?;
/// let bob = account("did:plc:bbbbbbbbbbbbbbbbbbbbbbbb").await?;
/// alice.dm(bob.did()).await?;
/// let old_key = alice.contact_trust(bob.did()).await?.identity_key;
/// let new_key = bob.rotate_identity_key().await?;
/// alice.check_contacts().await?; // follows the endorsed rotation
/// let change = &alice.contact_trust(bob.did()).await?.history[0];
/// assert_eq!((change.old_key, change.new_key), (old_key, new_key));
/// assert!(!change.was_verified);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyChange {
    /// The key replaced.
    pub old_key: PublicKey,
    /// Its successor.
    pub new_key: PublicKey,
    /// How the change was accepted.
    pub kind: ChangeKind,
    /// Whether the contact was verified before the change.
    pub was_verified: bool,
    /// When (unix seconds).
    pub at: u64,
}

/// How a key change came to be accepted.
///
/// A key change without endorsement, accepted by the user:
///
/// ```rust
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use atmls::directory::{Directory as _, MemoryDirectory};
/// use atmls::identity::{unix_now, DeviceIdentity, IdentityKeyPair};
/// use atmls::{storage::Store, transport::MemoryTransport, Client};
/// use atmls::trust::ChangeKind;
/// let (dir, net) = (Arc::new(MemoryDirectory::new()), Arc::new(MemoryTransport::new()));
/// let account = |did: &str| {
///     let identity = DeviceIdentity::new_account(did.parse().expect("a valid DID"));
///     let store = Store::in_memory().expect("an in-memory store");
///     Client::builder(dir.clone(), net.clone(), store).identity(identity).build()
/// };
/// let alice = account("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa").await?;
/// let bob = account("did:plc:bbbbbbbbbbbbbbbbbbbbbbbb").await?;
/// alice.dm(bob.did()).await?;
/// // bob starts over with a new identity key (or someone took over his PDS).
/// let new_key = IdentityKeyPair::generate();
/// dir.publish_declaration(&new_key.declare(bob.did(), unix_now())).await?;
/// let events = alice.check_contacts().await?;
/// assert!(events.iter().any(|e| matches!(e, atmls::Event::TrustWarning { .. })));
/// alice.accept_identity_change(bob.did(), &new_key.public()).await?;
/// let trust = alice.contact_trust(bob.did()).await?;
/// assert_eq!(trust.history[0].kind, ChangeKind::Accepted);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    /// Followed automatically along endorsements by the pinned key (TRUST-1).
    Endorsed,
    /// Accepted by the user after a warning (TRUST-5).
    Accepted,
}

impl ChangeKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Endorsed => "endorsed",
            ChangeKind::Accepted => "accepted",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "endorsed" => Some(ChangeKind::Endorsed),
            "accepted" => Some(ChangeKind::Accepted),
            _ => None,
        }
    }
}

/// Something in our own account's records that this device did not publish (TRUST-10).
///
/// ```rust
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use atmls::directory::{Directory as _, MemoryDirectory};
/// use atmls::identity::{unix_now, DeviceIdentity, IdentityKeyPair};
/// use atmls::{storage::Store, transport::MemoryTransport, Client};
/// use atmls::trust::SelfCheckFinding;
/// let (dir, net) = (Arc::new(MemoryDirectory::new()), Arc::new(MemoryTransport::new()));
/// let account = |did: &str| {
///     let identity = DeviceIdentity::new_account(did.parse().expect("a valid DID"));
///     let store = Store::in_memory().expect("an in-memory store");
///     Client::builder(dir.clone(), net.clone(), store).identity(identity).build()
/// };
/// let alice = account("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa").await?;
/// let ours = dir.account(alice.did()).await?.ok_or("no account")?.declaration.identity_key;
/// // Someone with alice's PDS password publishes a declaration of their own key.
/// let theirs = IdentityKeyPair::generate();
/// dir.publish_declaration(&theirs.declare(alice.did(), unix_now())).await?;
/// let found = alice.self_check().await?;
/// let published = theirs.public();
/// assert!(found.contains(&SelfCheckFinding::ForeignDeclaration { published, ours }));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SelfCheckFinding {
    /// The published declaration names a key that is neither ours nor an endorsed successor:
    /// someone with the PDS password replaced it.
    ForeignDeclaration {
        /// The key published.
        published: PublicKey,
        /// Our key.
        ours: PublicKey,
    },
    /// A device record not certified by our identity key (or whose certificate fails).
    ForeignDevice {
        /// The installation it claims.
        installation: PublicKey,
    },
    /// A KeyPackage record that is not from one of our valid devices.
    ForeignKeyPackage {
        /// The installation it claims.
        installation: PublicKey,
        /// Its KeyPackageRef.
        key_package_ref: Vec<u8>,
    },
    /// This device's own record is missing from the directory.
    OwnDeviceMissing,
}

/// The keys a contact's leaves may carry (TRUST-14): the pinned key, and the endorsed
/// predecessors it replaced, whose existing leaves stay valid until their devices
/// re-certify. New leaves (adds, changed credentials) need the pinned key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PinnedKeys {
    pub(crate) current: PublicKey,
    pub(crate) predecessors: Vec<PublicKey>,
}

/// How this device sees one member device's binding to its account (spec/trust.md
/// TRUST-20): a trust verdict, local to this device. It never decides whether a commit or a
/// Welcome is merged (spec/agreement.md): it marks or holds the member's content, and a
/// revoked device is removed by this device's next commit (TRUST-12).
///
/// ```rust
/// use atmls::trust::MemberStatus;
///
/// // A badge for each member device.
/// fn badge(status: MemberStatus) -> &'static str {
///     match status {
///         MemberStatus::Verified => "",
///         MemberStatus::Pending => "checking…",
///         MemberStatus::Expired => "certificate expired",
///         _ => "not trusted: messages held",
///     }
/// }
/// assert_eq!(badge(MemberStatus::Revoked), "not trusted: messages held");
/// assert!(MemberStatus::Revoked.holds_content());
/// ```
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MemberStatus {
    /// Certified by the identity key pinned for its account (or an endorsed predecessor).
    Verified,
    /// Its account's identity key is not pinned yet: a background lookup is queued.
    Pending,
    /// Certified by a key other than the one pinned for its account: its messages are held.
    Mismatch,
    /// Its account revoked this device: its messages are held, our next commit removes it.
    Revoked,
    /// Its certificate is outside its validity period by this device's clock.
    Expired,
}

impl MemberStatus {
    /// Whether this device holds back the member's application messages.
    ///
    /// ```rust
    /// use atmls::trust::MemberStatus;
    ///
    /// assert!(MemberStatus::Mismatch.holds_content());
    /// // A lookup still running holds nothing back.
    /// assert!(!MemberStatus::Pending.holds_content());
    /// ```
    pub fn holds_content(self) -> bool {
        matches!(self, MemberStatus::Mismatch | MemberStatus::Revoked)
    }
}

impl PinnedKeys {
    /// Whether a leaf certified by `key` is acceptable: `existing` leaves (already in the
    /// tree, or an update keeping its credential) may carry a predecessor.
    pub(crate) fn accepts(&self, key: &PublicKey, existing: bool) -> bool {
        *key == self.current || (existing && self.predecessors.contains(key))
    }
}

/// The verdict on a declaration read from the directory, against what we pinned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Assessment {
    /// Never seen: pin it (TOFU, TRUST-6).
    FirstSeen,
    /// The pinned key.
    Same,
    /// An endorsed successor of the pinned key: follow it.
    Endorsed,
    /// Not endorsed by the pinned key: warn, hold back.
    Unendorsed,
}

/// Judges `declaration` (already signature-checked) against the pinned state.
pub(crate) fn assess(
    pinned: Option<&ContactTrust>,
    declaration: &IdentityDeclaration,
) -> Result<Assessment, IdentityError> {
    let Some(pin) = pinned else {
        // Endorsements must still verify: a record with forged links is refused outright.
        succession(&declaration.identity_key, declaration)?;
        return Ok(Assessment::FirstSeen);
    };
    // A key we already moved away from, or a declaration older than the one we followed,
    // is a replay (TRUST-4).
    let retired = pin
        .history
        .iter()
        .any(|h| h.old_key == declaration.identity_key);
    if retired
        || (declaration.identity_key != pin.identity_key && declaration.created < pin.declared_at)
    {
        return Err(IdentityError::Rollback);
    }
    Ok(match succession(&pin.identity_key, declaration)? {
        Succession::Same => Assessment::Same,
        Succession::Endorsed(_) => Assessment::Endorsed,
        Succession::Unendorsed => Assessment::Unendorsed,
    })
}

/// Errors of the trust layer.
///
/// ```rust
/// use atmls::identity::{Did, IdentityKeyPair};
/// use atmls::trust::{PairingCode, SafetyNumber, TrustError};
///
/// assert_eq!(PairingCode::parse("K7QM-2XRD").unwrap_err(), TrustError::BadPairingCode);
///
/// let (alice, bob): (Did, Did) = (
///     "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?,
///     "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb".parse()?,
/// );
/// let key = || IdentityKeyPair::generate().public();
/// let ours = SafetyNumber::new(&alice, &key(), &bob, &key());
/// // The QR code on bob's screen, made from other keys than the ones we pinned:
/// let scanned = SafetyNumber::new(&alice, &key(), &bob, &key()).qr_payload();
/// match ours.check_qr(&scanned) {
///     Err(TrustError::SafetyNumberMismatch) => {} // do not mark the contact verified
///     other => panic!("expected a mismatch, got {other:?}"),
/// }
/// # Ok::<(), atmls::identity::IdentityError>(())
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum TrustError {
    /// The contact's identity key changed without endorsement and the user has not accepted
    /// it: nothing of the new key is used (TRUST-5). Retrying helps only after
    /// [`crate::Client::accept_identity_change`].
    #[error("{did}'s identity key changed without endorsement (was {old}, now {new}{})", if *.verified { "; the contact was verified" } else { "" })]
    UnacceptedKeyChange {
        /// The contact.
        did: Did,
        /// The pinned key.
        old: PublicKey,
        /// The unendorsed key.
        new: PublicKey,
        /// Whether the contact had been verified.
        verified: bool,
    },
    /// No key is pinned for this DID yet.
    #[error("no pinned identity key for {0}")]
    UnknownContact(Did),
    /// There is no pending key change to accept for this DID.
    #[error("no pending identity key change for {0}")]
    NoPendingChange(Did),
    /// A scanned payload is not a safety-number QR payload.
    #[error("not a safety-number QR payload")]
    BadQrPayload,
    /// The scanned safety number differs from ours: do not mark verified.
    #[error("safety numbers differ")]
    SafetyNumberMismatch,
    /// Not a pairing code (or QR payload).
    #[error("not a pairing code")]
    BadPairingCode,
    /// No link request under this code (a wrong code, or the new device has not posted yet).
    #[error("no link request under this code")]
    LinkRequestNotFound,
    /// The approving device has not answered yet; retry later.
    #[error("link not approved yet")]
    LinkPending,
    /// The link could not be completed.
    #[error("link refused: {0}")]
    LinkRefused(&'static str),
    /// The transport failed while linking.
    #[error("transport failed while linking: {0}")]
    LinkTransport(crate::transport::TransportError),
}

impl TrustError {
    /// Whether retrying the same call can help: while a link is pending or the transport
    /// failed; never for verdicts that need a user decision.
    ///
    /// ```rust
    /// use atmls::trust::{PairingCode, TrustError};
    ///
    /// let err = PairingCode::parse("not a code").unwrap_err();
    /// assert_eq!(err, TrustError::BadPairingCode);
    /// assert!(!err.is_retryable());
    /// // The approving device may answer by the next try.
    /// assert!(TrustError::LinkPending.is_retryable());
    /// ```
    pub fn is_retryable(&self) -> bool {
        match self {
            TrustError::LinkPending | TrustError::LinkRequestNotFound => true,
            TrustError::LinkTransport(e) => e.is_retryable(),
            TrustError::UnacceptedKeyChange { .. }
            | TrustError::UnknownContact(_)
            | TrustError::NoPendingChange(_)
            | TrustError::BadQrPayload
            | TrustError::SafetyNumberMismatch
            | TrustError::BadPairingCode
            | TrustError::LinkRefused(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::IdentityKeyPair;

    fn did() -> Did {
        Did::new("did:plc:abcdefghijklmnopqrstuvwx").unwrap()
    }

    fn pin(key: &PublicKey, declared_at: u64) -> ContactTrust {
        ContactTrust {
            did: did(),
            identity_key: *key,
            verified: false,
            first_seen: 1,
            declared_at,
            pending: None,
            history: Vec::new(),
        }
    }

    #[test]
    fn trust_6_first_sight_pins_and_same_key_passes() {
        let k = IdentityKeyPair::generate();
        let d = k.declare(&did(), 10);
        assert_eq!(assess(None, &d), Ok(Assessment::FirstSeen));
        assert_eq!(
            assess(Some(&pin(&k.public(), 10)), &d),
            Ok(Assessment::Same)
        );
    }

    #[test]
    fn trust_1_endorsed_successor_is_followed() {
        let (k0, k1) = (IdentityKeyPair::generate(), IdentityKeyPair::generate());
        let d0 = k0.declare(&did(), 10);
        let d1 = k0.rotate(&d0, &k1, 20).unwrap();
        assert_eq!(
            assess(Some(&pin(&k0.public(), 10)), &d1),
            Ok(Assessment::Endorsed)
        );
    }

    #[test]
    fn trust_3_unendorsed_change_is_flagged() {
        let k0 = IdentityKeyPair::generate();
        let attacker = IdentityKeyPair::generate().declare(&did(), 20);
        assert_eq!(
            assess(Some(&pin(&k0.public(), 10)), &attacker),
            Ok(Assessment::Unendorsed)
        );
    }

    #[test]
    fn trust_4_replayed_old_declaration_is_refused() {
        let (k0, k1) = (IdentityKeyPair::generate(), IdentityKeyPair::generate());
        let d0 = k0.declare(&did(), 10);
        let d1 = k0.rotate(&d0, &k1, 20).unwrap();
        let mut p = pin(&k1.public(), d1.created);
        p.history.push(KeyChange {
            old_key: k0.public(),
            new_key: k1.public(),
            kind: ChangeKind::Endorsed,
            was_verified: false,
            at: 20,
        });
        assert_eq!(assess(Some(&p), &d0), Err(IdentityError::Rollback));
        // A different key with a declaration older than the followed one.
        let old = IdentityKeyPair::generate().declare(&did(), 5);
        assert_eq!(assess(Some(&p), &old), Err(IdentityError::Rollback));
    }

    #[test]
    fn trust_2_forged_links_refused_even_on_first_sight() {
        let (k0, k1) = (IdentityKeyPair::generate(), IdentityKeyPair::generate());
        let d0 = k0.declare(&did(), 10);
        let mut d1 = k0.rotate(&d0, &k1, 20).unwrap();
        d1.endorsements[0].signature[3] ^= 0x40;
        assert_eq!(assess(None, &d1), Err(IdentityError::ForgedEndorsement));
        assert_eq!(
            assess(Some(&pin(&k0.public(), 10)), &d1),
            Err(IdentityError::ForgedEndorsement)
        );
    }
}
