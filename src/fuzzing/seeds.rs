//! Seed inputs for every target, made by the real encoders (valid examples the fuzzer mutates)
//! plus a few edge cases. `tests/fuzz_corpus.rs` replays them, and writes them to
//! `fuzz/corpus/<target>/` when asked (`ATMLS_FUZZ_WRITE_SEEDS=1`).

use base64::Engine as _;
use openmls::prelude::tls_codec::Serialize as _;
use openmls::prelude::{BasicCredential, CredentialWithKey, MlsGroup, MlsGroupCreateConfig};
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::{OpenMlsRustCrypto, RustCrypto};
use openmls_traits::OpenMlsProvider as _;

use super::fixtures::{self, KEY, NOW};
use super::sealed::Raw;
use crate::content::{
    Attachment, AttachmentCodec, AttachmentSource, Content, ContentCodec, Delete, DeleteCodec,
    Edit, EditCodec, GroupUpdated, GroupUpdatedCodec, MarkdownCodec, MessageId, Reaction,
    ReactionAction, ReactionCodec, ReadReceipt, ReadReceiptCodec, RemoteAttachment, Reply,
    ReplyCodec, Typing, TypingCodec,
};
use crate::credential::{AtmlsIdentity, LeafProof};
use crate::directory::pds::records::{encode_declaration, encode_device, encode_key_package};
use crate::directory::DeviceRecord;
use crate::group::{
    encode_hint, outer_seal_plain, GovernanceChange, InviteId, Member, Role, TreeRef,
};
use crate::identity::recovery_seal_with_key;
use crate::keypackage::{generate, DEFAULT_CIPHERSUITE};
use crate::wire::WelcomeEnvelope;
use atmls_ds_wire::api::{
    Accepted, ErrorBody, Item, PageBody, SubscribeBody, TreeStored, WireKind,
};

type Seeds = Vec<Vec<u8>>;

/// Every target's seeds, by target name.
pub fn seeds() -> Vec<(&'static str, Seeds)> {
    let contents = contents();
    let mut all = vec![
        ("credential_identity", credential_identity()),
        ("leaf_proof", leaf_proof()),
        ("key_package", key_packages()),
        ("record_declaration", declaration()),
        ("record_device", device()),
        ("record_key_package", key_package_records()),
        ("ds_response", ds_response()),
        ("wire_envelope", wire_envelope()),
        ("outer_seal", outer_seal()),
        ("ratchet_tree", ratchet_tree()),
        ("commit_hint", commit_hint()),
        ("group_context", super::group::seeds()),
        (
            "content_encoded",
            contents.iter().map(|(_, b)| b.clone()).collect(),
        ),
        ("invite_link", invite_link()),
        ("pairing", pairing()),
        ("recovery", recovery()),
    ];
    for (name, bytes) in contents {
        match all.iter_mut().find(|(n, _)| *n == name) {
            Some((_, seeds)) => seeds.push(bytes),
            None => all.push((name, vec![bytes, Vec::new(), vec![1]])),
        }
    }
    all
}

fn credential_identity() -> Seeds {
    let id = AtmlsIdentity {
        certificate: fixtures::device().certificate.clone(),
    };
    vec![id.to_bytes(), vec![], vec![1], vec![2, 0]]
}

fn leaf_proof() -> Seeds {
    let bytes = |signature: Vec<u8>| match (LeafProof { signature }).to_extension() {
        openmls::prelude::Extension::Unknown(_, e) => e.0,
        _ => Vec::new(),
    };
    vec![bytes(vec![7; 64]), bytes(Vec::new()), vec![2, 0]]
}

fn key_package_record(last_resort: bool) -> Option<crate::directory::KeyPackageRecord> {
    let provider = OpenMlsRustCrypto::default();
    let device = fixtures::device();
    generate(
        &provider,
        device,
        DEFAULT_CIPHERSUITE,
        last_resort,
        28 * 86_400,
        NOW,
    )
    .ok()
}

fn key_packages() -> Seeds {
    [true, false]
        .into_iter()
        .filter_map(key_package_record)
        .map(|r| r.key_package)
        .collect()
}

fn json(v: &serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

fn declaration() -> Seeds {
    let d = fixtures::declaration();
    vec![
        json(&encode_declaration(&d.declaration, &d.profile)),
        b"{}".to_vec(),
        br#"{"$type":"dev.atmls.declaration","ciphersuites":[]}"#.to_vec(),
    ]
}

fn device() -> Seeds {
    let (rkey, v) = encode_device(&DeviceRecord {
        certificate: fixtures::device().certificate.clone(),
        display_name: Some("fuzz phone".into()),
    });
    vec![
        [rkey.as_bytes(), b"\n", &json(&v)].concat(),
        b"self\n{}".to_vec(),
    ]
}

fn key_package_records() -> Seeds {
    let mut out: Seeds = key_package_record(true)
        .iter()
        .map(|r| json(&encode_key_package(r)))
        .collect();
    out.push(br#"{"$type":"dev.atmls.keyPackage","installation":"zz"}"#.to_vec());
    out
}

fn tagged(mode: u8, body: &[u8]) -> Vec<u8> {
    [&[mode][..], body].concat()
}

fn ds_response() -> Seeds {
    let item = Item {
        seq: 3,
        kind: WireKind::Commit,
        payload: "AAEC".into(),
    };
    let page = PageBody {
        items: vec![item.clone()],
        more: false,
    };
    let error = ErrorBody {
        error: "epoch_taken".into(),
        message: "taken".into(),
        winner: Some(item),
        limit: Some(10),
    };
    vec![
        tagged(0, &to(&page)),
        tagged(1, &to(&error)),
        tagged(2, &to(&Accepted { seq: 9 })),
        tagged(3, &to(&TreeStored { expires: 1 })),
        tagged(
            4,
            &to(&SubscribeBody {
                mailboxes: vec![hex::encode([7u8; 32])],
            }),
        ),
        tagged(5, hex::encode([0xabu8; 32]).as_bytes()),
        tagged(6, b"9223372036854775807"),
    ]
}

fn to<T: serde::Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

fn wire_envelope() -> Seeds {
    let e = WelcomeEnvelope {
        commit_seq: 7,
        welcome: b"welcome".to_vec(),
        capability: Some([7; 32]),
    };
    let cs = DEFAULT_CIPHERSUITE;
    let (_, pk) = super::sealed::welcome_keys();
    let sealed = e.seal(&RustCrypto::default(), cs, pk).unwrap_or_default();
    let plain = e
        .sealed_plaintext(crate::wire::seal_overhead(cs).unwrap_or_default())
        .unwrap_or_default();
    vec![
        e.to_bytes(),
        sealed,
        tagged(0, &plain),
        tagged(0, &plain[..plain.len() - 100]),
        vec![1],
        vec![2, 0, 0],
    ]
}

fn dids() -> Vec<crate::identity::Did> {
    ["did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", "did:web:example.com"]
        .iter()
        .filter_map(|d| d.parse().ok())
        .collect()
}

/// The plaintext `seal_hinted` builds: length, message, hint, zero padding.
fn outer_plain(mls: &[u8]) -> Vec<u8> {
    let mut p = (mls.len() as u32).to_be_bytes().to_vec();
    p.extend_from_slice(mls);
    p.extend_from_slice(&encode_hint(&dids()));
    p.resize(p.len().div_ceil(256) * 256, 0);
    p
}

fn outer_seal() -> Seeds {
    let plain = outer_plain(b"an mls message");
    let sealed = outer_seal_plain(&RustCrypto::default(), &KEY, &plain).unwrap_or_default();
    vec![tagged(0, &plain), tagged(1, &sealed), vec![1, 1]]
}

/// A one-member group's ratchet tree, serialized.
fn tree_bytes() -> Vec<u8> {
    let p = OpenMlsRustCrypto::default();
    let cs = DEFAULT_CIPHERSUITE;
    let Ok(signer) = SignatureKeyPair::new(cs.signature_algorithm()) else {
        return Vec::new();
    };
    if signer.store(p.storage()).is_err() {
        return Vec::new();
    }
    let cwk = CredentialWithKey {
        credential: BasicCredential::new(b"fuzz".to_vec()).into(),
        signature_key: signer.public().into(),
    };
    let config = MlsGroupCreateConfig::builder().ciphersuite(cs).build();
    MlsGroup::new(&p, &signer, &config, cwk)
        .ok()
        .and_then(|g| g.export_ratchet_tree().tls_serialize_detached().ok())
        .unwrap_or_default()
}

fn ratchet_tree() -> Seeds {
    let tree = tree_bytes();
    let r = TreeRef::from_seed(&KEY);
    let reference = match r.extension() {
        openmls::prelude::Extension::Unknown(_, e) => e.0,
        _ => Vec::new(),
    };
    let blob = r.seal(&Raw(&tree)).unwrap_or_default();
    vec![tagged(0, &tree), tagged(1, &blob), tagged(2, &reference)]
}

fn commit_hint() -> Seeds {
    let mut hinted = encode_hint(&dids());
    hinted.extend_from_slice(&[0; 8]);
    vec![hinted, vec![0, 0], vec![0xff, 0xff, 1]]
}

/// Every built-in codec's example, by target name, as `EncodedContent` bytes.
fn contents() -> Vec<(&'static str, Vec<u8>)> {
    let id = MessageId::from_bytes([1; 32]);
    let text = Content::text("hello");
    let mut with_fallback = Content::text("hi");
    with_fallback.fallback = Some("hi".into());
    let encoded = [
        ("content_text", Ok(with_fallback)),
        ("content_markdown", MarkdownCodec::encode(&"*hi*".into())),
        (
            "content_reply",
            ReplyCodec::encode(&Reply {
                in_reply_to: id,
                content: text.clone(),
            }),
        ),
        (
            "content_reaction",
            ReactionCodec::encode(&Reaction {
                target: id,
                action: ReactionAction::Add,
                emoji: "👍".into(),
            }),
        ),
        (
            "content_read_receipt",
            ReadReceiptCodec::encode(&ReadReceipt { up_to: id }),
        ),
        (
            "content_typing",
            TypingCodec::encode(&Typing { typing: true }),
        ),
        (
            "content_attachment",
            AttachmentCodec::encode(&inline_attachment()),
        ),
        (
            "content_attachment",
            AttachmentCodec::encode(&remote_attachment()),
        ),
        (
            "content_attachment",
            AttachmentCodec::encode(&streamed_attachment()),
        ),
        (
            "content_edit",
            EditCodec::encode(&Edit {
                target: id,
                content: text,
            }),
        ),
        (
            "content_delete",
            DeleteCodec::encode(&Delete { target: id }),
        ),
        (
            "content_group_updated",
            GroupUpdatedCodec::encode(&group_updated()),
        ),
    ];
    encoded
        .into_iter()
        .filter_map(|(n, e)| Some((n, e.ok()?.to_bytes().ok()?)))
        .collect()
}

fn inline_attachment() -> Attachment {
    Attachment {
        filename: "a.txt".into(),
        mime_type: "text/plain".into(),
        size: 3,
        source: AttachmentSource::Inline(b"abc".to_vec()),
    }
}

/// A streamed attachment (kind 3, CONTENT-25a), with a fixed key so seeds are reproducible.
fn streamed_attachment() -> Attachment {
    Attachment {
        filename: "c.bin".into(),
        mime_type: "application/octet-stream".into(),
        size: 5 << 20,
        source: AttachmentSource::Streamed(crate::content::StreamedAttachment {
            url: "https://ds.example.com/v1/blobs/x".into(),
            digest: [5; 32],
            key: crate::content::StreamKey {
                key: [6; 32],
                nonce_prefix: [7; 7],
            },
        }),
    }
}

fn remote_attachment() -> Attachment {
    Attachment {
        filename: "b.bin".into(),
        mime_type: "application/octet-stream".into(),
        size: 1 << 20,
        source: AttachmentSource::Remote(RemoteAttachment {
            url: "https://blobs.example.com/x".into(),
            digest: [2; 32],
            key: [3; 32],
            nonce: [4; 12],
        }),
    }
}

fn group_updated() -> GroupUpdated {
    let did = fixtures::did();
    let member = Member {
        did: did.clone(),
        installation: fixtures::device().installation.public(),
    };
    GroupUpdated {
        by: did.clone(),
        added: vec![member.clone()],
        removed: vec![member],
        disappearing_secs: Some(3600),
        changes: vec![
            GovernanceChange::RoleChanged {
                did,
                role: Role::Admin,
            },
            GovernanceChange::NameChanged("fuzz".into()),
            GovernanceChange::Pinned(MessageId::from_bytes([5; 32])),
            GovernanceChange::InviteCreated(InviteId([6; 16])),
        ],
    }
}

fn invite_link() -> Seeds {
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let body = [&[1u8][..], &[9; 32]].concat();
    vec![
        format!("atmls://invite/{}", b64(&body)).into_bytes(),
        format!(" atmls://join/{}\n", b64(&body)).into_bytes(),
        b"atmls://invite/AQ".to_vec(),
    ]
}

fn pairing() -> Seeds {
    let device = fixtures::device();
    let did = device.did.as_str().as_bytes();
    let request = [&device.installation.public().0[..], did].concat();
    let cert = serde_json::to_vec(&device.certificate).unwrap_or_default();
    vec![
        tagged(0, b"K7QM-2XRD-9TAW-HB4N"),
        tagged(0, b"k7qm 2xrd 9taw hb4n"),
        tagged(
            1,
            format!("atmls:link:1:{}:K7QM-2XRD-9TAW-HB4N", device.did.as_str()).as_bytes(),
        ),
        tagged(2, &request),
        tagged(3, &cert),
    ]
}

fn recovery() -> Seeds {
    let did = fixtures::did();
    let cost = [64u32 * 1024, 3];
    let words: Vec<u8> = cost.iter().flat_map(|w| w.to_be_bytes()).collect();
    let sealed = recovery_seal_with_key(&KEY, &did, cost[0], cost[1], &[3; 32]).unwrap_or_default();
    vec![
        tagged(0, &[&words[..], &[3; 32]].concat()),
        tagged(1, &sealed),
        tagged(1, b"atmlsrk1"),
    ]
}
