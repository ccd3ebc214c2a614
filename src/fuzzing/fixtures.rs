//! A fixed account the targets check records against: derived from constant secrets, so that
//! seeds written once (signed by these keys) stay valid in every later run. Made once per
//! process: signing and verifying them for every input would dominate the targets' time.

use std::sync::OnceLock;

use crate::directory::pds::records::{encode_declaration, Profile};
use crate::directory::pds::{check_declaration, DeclarationRecord};
use crate::directory::VerifiedAccount;
use crate::identity::{DeviceIdentity, Did, IdentityKeyPair, InstallationKeyPair};

/// The targets' clock (2027-01-15): certificates and KeyPackages of the seeds are valid then.
pub(super) const NOW: u64 = 1_800_000_000;
/// When the fixed account declared its key and certified its device.
const CREATED: u64 = NOW - 86_400;
/// Fixed keys under which targets seal the fuzzer's plaintext.
pub(super) const KEY: [u8; 32] = [0x5a; 32];

pub(super) fn did() -> Did {
    Did::new("did:plc:fuzzfuzzfuzzfuzzfuzzfuzz").unwrap_or_else(|_| unreachable!())
}

fn identity_key() -> IdentityKeyPair {
    IdentityKeyPair::from_secret_bytes(&[1; 32]).unwrap_or_else(|_| unreachable!())
}

/// The account's only device, certified for a year from [`CREATED`].
pub(super) fn device() -> &'static DeviceIdentity {
    static D: OnceLock<DeviceIdentity> = OnceLock::new();
    D.get_or_init(make_device)
}

fn make_device() -> DeviceIdentity {
    let identity = identity_key();
    let installation =
        InstallationKeyPair::from_secret_bytes(&[2; 32]).unwrap_or_else(|_| unreachable!());
    let certificate = identity.certify(
        &did(),
        &installation.public(),
        CREATED,
        CREATED + 365 * 86_400,
    );
    DeviceIdentity {
        did: did(),
        installation,
        certificate,
        identity_key: Some(identity),
    }
}

/// The account's declaration record, decoded and verified.
pub(super) fn declaration() -> &'static DeclarationRecord {
    static D: OnceLock<DeclarationRecord> = OnceLock::new();
    D.get_or_init(make_declaration)
}

fn make_declaration() -> DeclarationRecord {
    let v = encode_declaration(
        &identity_key().declare(&did(), CREATED),
        &Profile::default(),
    );
    check_declaration(&did(), &v).unwrap_or_else(|e| unreachable!("fixture: {e}"))
}

/// The account as an adder sees it after checking its records.
pub(super) fn account() -> &'static VerifiedAccount {
    static A: OnceLock<VerifiedAccount> = OnceLock::new();
    A.get_or_init(make_account)
}

fn make_account() -> VerifiedAccount {
    VerifiedAccount {
        did: did(),
        identity_key: identity_key().public(),
        declared_at: CREATED,
        predecessors: Vec::new(),
        devices: vec![device().installation.public()],
        rejected_devices: Vec::new(),
    }
}
