//! A KeyPackage as a directory stores it (spec/records.md): the record the owner publishes, and
//! others read and validate (`validate_record`).

use crate::identity::{Did, PublicKey};

/// A published KeyPackage, as stored in a directory (untrusted when read).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeyPackageRecord {
    /// The account that published it.
    pub did: Did,
    /// The installation it belongs to.
    pub installation_key: PublicKey,
    /// The KeyPackageRef (hash) of `key_package`.
    pub key_package_ref: Vec<u8>,
    /// The TLS-serialized MLS KeyPackage.
    pub key_package: Vec<u8>,
    /// MLS ciphersuite code point.
    pub ciphersuite: u16,
    /// Whether it carries the last_resort extension (may be used more than once).
    pub last_resort: bool,
    /// Publication time (unix seconds).
    pub created: u64,
    /// End of the KeyPackage's lifetime (unix seconds).
    pub expires: u64,
}
