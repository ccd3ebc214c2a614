//! The checks a reader runs on every record before using it (spec/records.md REC-3 … REC-5).
//! A record that fails is returned as [`Rejected`] with its typed error, never used.

use openmls_rust_crypto::RustCrypto;
use serde_json::Value;

use super::records::{self, DeclarationRecord};
use super::RecordError;
use crate::directory::{DeviceRecord, KeyPackageRecord, VerifiedAccount};
use crate::identity::{Did, IdentityError};
use crate::keypackage::{validate_record, DEFAULT_CIPHERSUITE};

/// A record that was read and refused.
#[derive(Debug, PartialEq, Eq)]
pub struct Rejected {
    /// Its collection.
    pub collection: &'static str,
    /// Its record key.
    pub rkey: String,
    /// Why.
    pub error: RecordError,
}

/// REC-3: the declaration decodes, its binding signature verifies, and so does every
/// endorsement in its chain.
pub fn check_declaration(did: &Did, v: &Value) -> Result<DeclarationRecord, RecordError> {
    let d = records::decode_declaration(did, v)?;
    d.declaration.verify()?;
    // Every link must verify (TRUST-2); whether the chain reaches a key a reader pinned is
    // the reader's trust decision (spec/trust.md).
    crate::identity::succession(&d.declaration.identity_key, &d.declaration)?;
    Ok(d)
}

/// REC-4: each device record decodes under its installation id, names the declared identity
/// key, and its certificate verifies and is valid at `now`.
pub fn check_devices(
    decl: &DeclarationRecord,
    raw: &[(String, Value)],
    now: u64,
) -> (Vec<DeviceRecord>, Vec<Rejected>) {
    let did = &decl.declaration.did;
    let mut ok: Vec<DeviceRecord> = Vec::new();
    let mut rejected = Vec::new();
    for (rkey, v) in raw {
        let verdict = records::decode_device(did, rkey, v).and_then(|d| {
            if d.certificate.identity_key != decl.declaration.identity_key {
                return Err(IdentityError::Mismatch("device identity key").into());
            }
            d.certificate.verify(now)?;
            Ok(d)
        });
        match verdict {
            Ok(d) => ok.push(d),
            Err(error) => rejected.push(Rejected {
                collection: records::DEVICE,
                rkey: rkey.clone(),
                error,
            }),
        }
    }
    (ok, rejected)
}

/// REC-5: each KeyPackage record decodes, belongs to one of the account's valid devices, is
/// in a declared ciphersuite, has not expired, and its KeyPackage passes KP-1 … KP-5 (leaf
/// credential and key against the device record and the DID), with `expiresAt` equal to the
/// KeyPackage's own lifetime.
pub fn check_key_packages(
    decl: &DeclarationRecord,
    account: &VerifiedAccount,
    raw: &[(String, Value)],
    now: u64,
) -> (Vec<KeyPackageRecord>, Vec<Rejected>) {
    let crypto = RustCrypto::default();
    let mut ok = Vec::new();
    let mut rejected = Vec::new();
    for (rkey, v) in raw {
        let verdict = records::decode_key_package(&account.did, v).and_then(|r| {
            if !account.devices.contains(&r.installation_key) {
                return Err(RecordError::UnknownDevice);
            }
            if !decl.profile.ciphersuites.contains(&r.ciphersuite) {
                return Err(RecordError::UndeclaredCiphersuite(r.ciphersuite));
            }
            if r.expires <= now {
                return Err(RecordError::Expired);
            }
            let kp = validate_record(&r, account, &crypto, DEFAULT_CIPHERSUITE, now)?;
            if kp.life_time().not_after() != r.expires {
                return Err(RecordError::Mismatch("expiresAt"));
            }
            Ok(r)
        });
        match verdict {
            Ok(r) => ok.push(r),
            Err(error) => rejected.push(Rejected {
                collection: records::KEY_PACKAGE,
                rkey: rkey.clone(),
                error,
            }),
        }
    }
    (ok, rejected)
}
