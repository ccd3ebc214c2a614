//! Targets of the identity layer: credential identity and leaf proof (CRED-1, CRED-5), a
//! KeyPackage read from a directory (KP-1 … KP-5), pairing codes and messages (TRUST-13) and
//! the recovery export (TRUST-11).

use openmls::ciphersuite::hash_ref::make_key_package_ref;
use openmls::prelude::tls_codec::Serialize as _;
use openmls::prelude::{Extension, UnknownExtension};
use openmls_rust_crypto::RustCrypto;

use super::fixtures::{self, KEY, NOW};
use super::mode;
use crate::credential::{AtmlsIdentity, LeafProof};
use crate::directory::KeyPackageRecord;
use crate::identity::{cost_allowed, recovery_seal_with_key, IdentityKeyPair, RecoveryBlob};
use crate::keypackage::{validate_record, DEFAULT_CIPHERSUITE};
use crate::trust::{request_key, response_certificate, PairingCode};

/// CRED-1: identity bytes decode only in canonical form, and re-encode to themselves.
pub(super) fn credential_identity(data: &[u8]) {
    let Ok(id) = AtmlsIdentity::from_bytes(data) else {
        return;
    };
    assert_eq!(id.to_bytes(), data, "non-canonical identity accepted");
    let back = AtmlsIdentity::from_credential(&id.to_credential());
    assert_eq!(back.as_ref(), Ok(&id));
    // The certificate check runs on decoded, unverified keys (LG-12): it must refuse, not panic.
    let _ = id.certificate.verify(NOW);
}

/// CRED-5: the leaf-proof extension payload.
pub(super) fn leaf_proof(data: &[u8]) {
    let Ok(p) = LeafProof::from_extension_bytes(data) else {
        return;
    };
    match p.to_extension() {
        Extension::Unknown(_, UnknownExtension(b)) => assert_eq!(b, data, "leaf proof"),
        other => panic!("leaf proof encodes as {other:?}"),
    }
}

/// KP-1 … KP-5 on a KeyPackage published by the fixed account: the fuzzer's bytes are the
/// KeyPackage, the record around it agrees with them (its ref is their hash), so every check
/// down to the leaf's credential and proof is reached.
pub(super) fn key_package(data: &[u8]) {
    let crypto = RustCrypto::default();
    let Ok(r) = make_key_package_ref(data, DEFAULT_CIPHERSUITE, &crypto) else {
        return;
    };
    let device = fixtures::device();
    let record = KeyPackageRecord {
        did: device.did.clone(),
        installation_key: device.installation.public(),
        key_package_ref: r.as_slice().to_vec(),
        key_package: data.to_vec(),
        ciphersuite: u16::from(DEFAULT_CIPHERSUITE),
        last_resort: true,
        created: NOW,
        expires: NOW,
    };
    let account = fixtures::account();
    if let Ok(kp) = validate_record(&record, account, &crypto, DEFAULT_CIPHERSUITE, NOW) {
        let bytes = kp.tls_serialize_detached();
        assert_eq!(
            bytes.as_deref().ok(),
            Some(data),
            "non-canonical KeyPackage"
        );
    }
}

/// TRUST-13. Mode 0: a typed code; 1: a scanned QR payload; 2: a link request's body; 3: an
/// approval's body (the certificate).
pub(super) fn pairing(data: &[u8]) {
    let Some((m, rest)) = mode(data) else {
        return;
    };
    match m % 4 {
        0 => code(rest),
        1 => qr(rest),
        2 => {
            let did = fixtures::did();
            if let Some(k) = request_key(rest, &did) {
                assert_eq!([&k.0[..], did.as_str().as_bytes()].concat(), rest);
            }
        }
        _ => {
            let device = fixtures::device();
            let installation = device.installation.public();
            if let Some(c) = response_certificate(rest, &device.did, &installation, NOW) {
                assert_eq!(c.installation_key, installation);
            }
        }
    }
}

/// A code parses only from its own characters (case, spaces and dashes aside), and displays
/// back to them.
fn code(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(c) = PairingCode::parse(s) else {
        return;
    };
    let typed: String = s
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect::<String>()
        .to_uppercase();
    assert_eq!(typed, c.display().replace('-', ""), "code read from {s:?}");
    assert_eq!(PairingCode::parse(&c.display()), Ok(c));
}

fn qr(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok((did, c)) = PairingCode::from_qr(s) {
        assert_eq!(PairingCode::from_qr(&c.qr_payload(&did)), Ok((did, c)));
    }
}

/// TRUST-11. Mode 0: `m_kib ‖ t ‖ secret`, sealed under a fixed key then imported; else a
/// blob as given. Import checks framing and the cost words, then opens under the fixed key:
/// the Argon2id derivation between them is skipped (its cost is what the words bound).
pub(super) fn recovery(data: &[u8]) {
    let Some((m, rest)) = mode(data) else {
        return;
    };
    let did = fixtures::did();
    let sealed;
    let blob = if m == 0 {
        let (Some(m_kib), Some(t)) = (word(rest, 0), word(rest, 4)) else {
            return;
        };
        let secret = rest.get(8..).unwrap_or_default();
        let Some(s) = recovery_seal_with_key(&KEY, &did, m_kib, t, secret) else {
            return;
        };
        sealed = s;
        &sealed[..]
    } else {
        rest
    };
    let Ok(parts) = RecoveryBlob::parse(blob) else {
        return;
    };
    let _ = cost_allowed(parts.m_kib, parts.t);
    if let Ok(k) = parts.open(&KEY, &did) {
        let again = IdentityKeyPair::from_secret_bytes(&k.secret_bytes()[..]);
        assert_eq!(again.map(|a| a.public()).ok(), Some(k.public()));
    }
}

fn word(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
