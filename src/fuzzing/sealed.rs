//! Targets of what travels on the transport around MLS messages: the Welcome envelope
//! (GROUP-8), the outer seal of group payloads (DS-2) and the commit hint inside it (LG-14),
//! the out-of-band ratchet tree (LG-T-2, LG-T-5), and invite links and join handles (INV-2).

use openmls::prelude::tls_codec::{self, Serialize as _};
use openmls::prelude::{Extension, Extensions, UnknownExtension};
use openmls_rust_crypto::RustCrypto;
use openmls_traits::crypto::OpenMlsCrypto as _;
use std::sync::OnceLock;

use super::fixtures::KEY;
use super::mode;
use crate::client::InviteLink;
use crate::group::{
    decode_hint, encode_hint, outer_open_with, outer_seal_plain, split_hint, TreeRef,
    MAX_HINT_DIDS, WELCOME_TREE_EXTENSION,
};
use crate::keypackage::DEFAULT_CIPHERSUITE;
use crate::wire::{
    decode_plain, seal_overhead, seal_plain, Received, WelcomeEnvelope, SEAL_BUCKET_MIN,
};

/// The HPKE key pair sealed Welcomes are sealed to and opened with (GROUP-12): (private,
/// public), derived from [`KEY`] once per process.
pub(super) fn welcome_keys() -> &'static (Vec<u8>, Vec<u8>) {
    static K: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    K.get_or_init(|| {
        let kp = RustCrypto::default()
            .derive_hpke_keypair(DEFAULT_CIPHERSUITE.hpke_config(), &KEY)
            .unwrap_or_else(|e| panic!("HPKE key pair: {e:?}"));
        (kp.private.to_vec(), kp.public)
    })
}

/// GROUP-8, GROUP-12. An input starting with 0: the rest is the plaintext of a sealed
/// envelope, sealed to the fixed key and opened (what opens is what was sealed; one that
/// decodes seals again at its bucket size and opens to the same envelope). Anything else is
/// an envelope as received: version 1 decodes only in canonical form; version 2 is opened with
/// the fixed key.
pub(super) fn wire_envelope(data: &[u8]) {
    let crypto = RustCrypto::default();
    let cs = DEFAULT_CIPHERSUITE;
    let (sk, pk) = welcome_keys();
    let open = |bytes: &[u8]| match WelcomeEnvelope::received(bytes, cs) {
        Ok(Received::Sealed(s)) => s.open(&crypto, cs, sk),
        other => panic!("a sealed envelope read as {other:?}"),
    };
    if let Some((&0, plain)) = data.split_first() {
        let Ok(sealed) = seal_plain(&crypto, cs, pk, plain) else {
            return;
        };
        let opened = open(&sealed).unwrap_or_else(|| panic!("does not open with its key"));
        let decoded = decode_plain(plain);
        assert_eq!(opened.is_ok(), decoded.is_ok());
        if let (Ok(e), Ok(d)) = (opened, decoded) {
            assert_eq!(e, d);
            let again = e
                .seal(&crypto, cs, pk)
                .unwrap_or_else(|e| panic!("reseal: {e}"));
            let overhead = seal_overhead(cs).unwrap_or_default();
            let padded = e.sealed_plaintext(overhead).map(|p| p.len());
            assert_eq!(Ok(again.len()), padded.map(|p| p + overhead));
            assert!(again.len().is_power_of_two() && again.len() >= SEAL_BUCKET_MIN);
            assert_eq!(open(&again).and_then(Result::ok).as_ref(), Some(&e));
        }
        return;
    }
    match WelcomeEnvelope::received(data, cs) {
        Ok(Received::Clear(e)) => assert_eq!(e.to_bytes(), data, "non-canonical Welcome envelope"),
        Ok(Received::Sealed(s)) => {
            if let Some(Ok(e)) = s.open(&crypto, cs, sk) {
                let again = e
                    .seal(&crypto, cs, pk)
                    .unwrap_or_else(|e| panic!("reseal: {e}"));
                assert_eq!(open(&again).and_then(Result::ok).as_ref(), Some(&e));
            }
        }
        Err(_) => {}
    }
}

/// DS-2. Mode 0: the rest is a plaintext, sealed under a fixed key and opened (length,
/// hint and padding checks); else the rest is a sealed payload as received.
pub(super) fn outer_seal(data: &[u8]) {
    let Some((m, rest)) = mode(data) else {
        return;
    };
    let crypto = RustCrypto::default();
    let sealed = if m == 0 {
        match outer_seal_plain(&crypto, &KEY, rest) {
            Ok(s) => s,
            Err(_) => return,
        }
    } else {
        rest.to_vec()
    };
    let Ok(opened) = outer_open_with(&crypto, || Ok(KEY.to_vec()), &sealed) else {
        return;
    };
    if m == 0 {
        // What opens is the message the plaintext's length prefix names.
        assert_eq!(
            Some(opened.mls.as_slice()),
            rest.get(4..4 + opened.mls.len())
        );
    }
}

/// LG-14: what follows the MLS message in an opened payload. A hint that decodes re-encodes
/// to the same list (below the cap, where decoding stops early by design).
pub(super) fn commit_hint(data: &[u8]) {
    let Some((list, _padding)) = split_hint(data) else {
        return;
    };
    let dids = decode_hint(list);
    if !dids.is_empty() && dids.len() < MAX_HINT_DIDS {
        let again = encode_hint(&dids);
        assert_eq!(again.get(2..), Some(list), "hint re-encodes differently");
    }
}

/// The bytes of a plaintext as a "tree" to seal: written as they are.
pub(super) struct Raw<'a>(pub(super) &'a [u8]);

impl tls_codec::Size for Raw<'_> {
    fn tls_serialized_len(&self) -> usize {
        self.0.len()
    }
}

impl tls_codec::Serialize for Raw<'_> {
    fn tls_serialize<W: std::io::Write>(&self, w: &mut W) -> Result<usize, tls_codec::Error> {
        w.write_all(self.0)?;
        Ok(self.0.len())
    }
}

/// LG-T-5. Mode 0: the rest is a serialized ratchet tree, sealed under a fixed reference and
/// opened; 1: a blob as fetched; else: the GroupInfo extension holding the reference (LG-T-2).
pub(super) fn ratchet_tree(data: &[u8]) {
    let Some((m, rest)) = mode(data) else {
        return;
    };
    let r = TreeRef::from_seed(&KEY);
    match m {
        0 => {
            let Ok(blob) = r.seal(&Raw(rest)) else {
                return;
            };
            if let Ok(tree) = r.open(&blob) {
                let again = tree.tls_serialize_detached();
                assert_eq!(again.as_deref().ok(), Some(rest), "non-canonical tree");
            }
        }
        1 => {
            let _ = r.open(rest);
        }
        _ => reference(rest),
    }
}

fn reference(data: &[u8]) {
    let ext = Extension::Unknown(WELCOME_TREE_EXTENSION, UnknownExtension(data.to_vec()));
    let Ok(exts) = Extensions::single(ext) else {
        return;
    };
    if let Ok(Some(r)) = TreeRef::from_group_info(&exts) {
        match r.extension() {
            Extension::Unknown(_, UnknownExtension(b)) => assert_eq!(b, data, "tree reference"),
            other => panic!("tree reference encodes as {other:?}"),
        }
    }
}

/// INV-2: an invite link or join handle, as typed, pasted or scanned.
pub(super) fn invite_link(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(link) = InviteLink::parse(s) {
        assert_eq!(InviteLink::parse(&link.to_url()).as_ref(), Ok(&link));
        let _ = link.id();
    }
}
