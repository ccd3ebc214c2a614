//! One Welcome per joiner (spec/large-groups.md LG-9): a commit adding k devices makes one
//! MLS Welcome holding k encrypted group secrets; each joiner is sent a copy holding only its
//! own, so that queuing and sending it is O(k), not O(k²).

use tls_codec::{
    DeserializeBytes as _, Serialize as _, TlsDeserializeBytes, TlsSerialize, TlsSize, VLBytes,
};

/// `EncryptedGroupSecrets` (RFC 9420 §12.4.3.1), kept opaque.
#[derive(TlsSize, TlsSerialize, TlsDeserializeBytes, Clone, Debug)]
struct GroupSecretsWire {
    new_member: VLBytes,
    kem_output: VLBytes,
    ciphertext: VLBytes,
}

/// An `MLSMessage` carrying a `Welcome`: version, wire format, then the Welcome.
#[derive(TlsSize, TlsSerialize, TlsDeserializeBytes)]
struct WelcomeMessageWire {
    version: u16,
    wire_format: u16,
    cipher_suite: u16,
    secrets: Vec<GroupSecretsWire>,
    encrypted_group_info: VLBytes,
}

/// `mls_welcome` (RFC 9420 §6).
const WIRE_FORMAT_WELCOME: u16 = 3;

/// The Welcome message `welcome` (our own, TLS-encoded) cut down to the encrypted group
/// secrets of the KeyPackage `kp_ref`: `None` if it holds none for it or does not decode as a
/// Welcome, and the caller sends the whole Welcome instead.
pub(crate) fn welcome_for(welcome: &[u8], kp_ref: &[u8]) -> Option<Vec<u8>> {
    let (mut w, rest) = WelcomeMessageWire::tls_deserialize_bytes(welcome).ok()?;
    if !rest.is_empty() || w.wire_format != WIRE_FORMAT_WELCOME {
        return None;
    }
    let mine = w
        .secrets
        .iter()
        .find(|s| s.new_member.as_slice() == kp_ref)?
        .clone();
    w.secrets = vec![mine];
    w.tls_serialize_detached().ok()
}

#[cfg(test)]
mod tests {
    use openmls::prelude::{
        tls_codec::{DeserializeBytes as _, Serialize as _},
        BasicCredential, Ciphersuite, CredentialWithKey, KeyPackage, MlsGroup,
        MlsGroupCreateConfig, MlsMessageBodyIn, MlsMessageIn, StagedWelcome,
    };
    use openmls_basic_credential::SignatureKeyPair;
    use openmls_rust_crypto::OpenMlsRustCrypto;
    use openmls_traits::OpenMlsProvider as _;

    use super::welcome_for;

    const CS: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;

    struct Party {
        p: OpenMlsRustCrypto,
        signer: SignatureKeyPair,
        kp: Option<KeyPackage>,
    }

    fn party(name: &str) -> Party {
        let p = OpenMlsRustCrypto::default();
        let signer = SignatureKeyPair::new(CS.signature_algorithm()).unwrap();
        signer.store(p.storage()).unwrap();
        let cwk = CredentialWithKey {
            credential: BasicCredential::new(name.as_bytes().to_vec()).into(),
            signature_key: signer.public().into(),
        };
        let kp = KeyPackage::builder()
            .build(CS, &p, &signer, cwk)
            .unwrap()
            .key_package()
            .clone();
        Party {
            p,
            signer,
            kp: Some(kp),
        }
    }

    fn join(b: &Party, welcome: &[u8], tree: openmls::prelude::RatchetTreeIn) -> MlsGroup {
        let MlsMessageBodyIn::Welcome(w) = MlsMessageIn::tls_deserialize_exact_bytes(welcome)
            .unwrap()
            .extract()
        else {
            panic!("not a Welcome")
        };
        StagedWelcome::new_from_welcome(&b.p, &Default::default(), w, Some(tree))
            .unwrap()
            .into_group(&b.p)
            .unwrap()
    }

    #[test]
    fn lg_9_each_joiner_joins_from_its_own_small_welcome() {
        let a = party("alice");
        let joiners: Vec<Party> = (0..16).map(|i| party(&format!("m{i}"))).collect();
        let config = MlsGroupCreateConfig::builder()
            .ciphersuite(CS)
            .use_ratchet_tree_extension(false)
            .build();
        let mut g = MlsGroup::new(&a.p, &a.signer, &config, {
            CredentialWithKey {
                credential: BasicCredential::new(b"alice".to_vec()).into(),
                signature_key: a.signer.public().into(),
            }
        })
        .unwrap();
        let bundle = g
            .commit_builder()
            .propose_adds(joiners.iter().map(|j| j.kp.clone().unwrap()))
            .load_psks(a.p.storage())
            .unwrap()
            .build(a.p.rand(), a.p.crypto(), &a.signer, |_| true)
            .unwrap()
            .stage_commit(&a.p)
            .unwrap();
        let full = bundle
            .to_welcome_msg()
            .unwrap()
            .tls_serialize_detached()
            .unwrap();
        g.merge_pending_commit(&a.p).unwrap();
        let tree = g.export_ratchet_tree();
        let mut sizes = Vec::new();
        for j in &joiners {
            let r = j.kp.as_ref().unwrap().hash_ref(a.p.crypto()).unwrap();
            let mine = welcome_for(&full, r.as_slice()).unwrap();
            sizes.push(mine.len());
            let jg = join(j, &mine, tree.clone().into());
            assert_eq!(jg.epoch(), g.epoch());
        }
        // Every copy has one joiner's secrets: the same size, a fraction of the whole.
        assert!(sizes.iter().all(|s| *s == sizes[0]));
        assert!(sizes[0] * 4 < full.len(), "{sizes:?} of {}", full.len());
        // Not a joiner of this Welcome, or not a Welcome at all: no copy.
        let other = party("x").kp.unwrap().hash_ref(a.p.crypto()).unwrap();
        assert_eq!(welcome_for(&full, other.as_slice()), None);
        let r0 = joiners[0]
            .kp
            .as_ref()
            .unwrap()
            .hash_ref(a.p.crypto())
            .unwrap();
        assert_eq!(welcome_for(&full[..full.len() - 1], r0.as_slice()), None);
        assert_eq!(
            welcome_for(&[full.clone(), vec![0]].concat(), r0.as_slice()),
            None
        );
        assert_eq!(welcome_for(b"", r0.as_slice()), None);
    }
}
