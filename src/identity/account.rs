//! An account whose published identity verified: the result of checking a directory's
//! declaration and device records (`directory::AccountRecord::verify`).

use super::{Did, IdentityError, PublicKey};

/// An account whose declaration verified, with the devices whose certificates verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedAccount {
    /// The account.
    pub did: Did,
    /// Its current messaging identity key.
    pub identity_key: PublicKey,
    /// When its declaration was made (unix seconds).
    pub declared_at: u64,
    /// The earlier identity keys that endorsed their way to `identity_key` (TRUST-14),
    /// oldest first: their existing leaves stay valid until re-certified.
    pub predecessors: Vec<PublicKey>,
    /// Installation keys of its valid devices.
    pub devices: Vec<PublicKey>,
    /// Devices that were skipped, with the reason.
    pub rejected_devices: Vec<(PublicKey, IdentityError)>,
}
