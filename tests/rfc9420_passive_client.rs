//! The RFC 9420 passive-client test vectors (`vendor/rfc9420-vectors/passive-client-*.json`,
//! the MLS working group's interop set, see that directory's README) run through atmls's own
//! openmls storage: `SqliteStorageProvider` with atmls's `StorageCodec` (LG-1: the tree, message
//! secrets and epoch secrets stored as postcard, LZ4 when long) on a database created by
//! `Store::open`, over the patched openmls (LG-P3: the secret tree stored sparse).
//!
//! openmls's own passive-client KAT (run by `scripts/rfc9420-vectors.sh`) keeps the group in
//! memory over its in-memory storage. Here the group is loaded back from SQLite before every
//! message, as a client that restarted (or whose cache dropped the group, LG-3) would, so each
//! epoch authenticator depends on the stored tree, secret tree and epoch secrets decoding to
//! exactly what was written. The join goes the way atmls joins (`JoinBuilder`, lifetimes not
//! checked against the local clock, AGREE-3).
//!
//! Vectors of a ciphersuite our crypto provider does not support are skipped and counted; no
//! vector is skipped for any other reason.

use std::collections::BTreeMap;
use std::path::Path;

use openmls::group::{JoinBuilder, ProcessedWelcome};
use openmls::prelude::tls_codec::Deserialize as _;
use openmls::prelude::{
    Ciphersuite, GroupId, KeyPackage, KeyPackageBundle, MlsGroup, MlsGroupJoinConfig,
    MlsMessageBodyIn, MlsMessageIn, ProcessedMessageContent, ProtocolVersion, RatchetTreeIn,
    MIXED_PLAINTEXT_WIRE_FORMAT_POLICY,
};
use openmls::schedule::PreSharedKeyId;
use openmls_rust_crypto::RustCrypto;
use openmls_sqlite_storage::SqliteStorageProvider;
use openmls_traits::crypto::OpenMlsCrypto;
use openmls_traits::storage::StorageProvider as _;
use openmls_traits::types::HpkePrivateKey;
use openmls_traits::OpenMlsProvider;
use serde::Deserialize;

/// One passive-client vector (mls-implementations `test-vectors.md`, "Passive Client"). Byte
/// strings are hex. `signature_priv` is not read: a passive client never signs.
#[derive(Deserialize)]
struct Vector {
    cipher_suite: u16,
    external_psks: Vec<ExternalPsk>,
    key_package: String,
    encryption_priv: String,
    init_priv: String,
    welcome: String,
    ratchet_tree: Option<String>,
    initial_epoch_authenticator: String,
    epochs: Vec<Epoch>,
}

#[derive(Deserialize)]
struct ExternalPsk {
    psk_id: String,
    psk: String,
}

#[derive(Deserialize)]
struct Epoch {
    proposals: Vec<String>,
    commit: String,
    epoch_authenticator: String,
}

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).expect("vector field is not hex")
}

/// atmls's openmls provider (`storage::provider::Provider` is crate-private; this is the same
/// pair of types over an owned connection, as `tests/common`'s `RawProvider`).
struct AtmlsProvider {
    crypto: RustCrypto,
    storage: SqliteStorageProvider<atmls::storage::StorageCodec, rusqlite::Connection>,
}

impl OpenMlsProvider for AtmlsProvider {
    type CryptoProvider = RustCrypto;
    type RandProvider = RustCrypto;
    type StorageProvider =
        SqliteStorageProvider<atmls::storage::StorageCodec, rusqlite::Connection>;
    fn storage(&self) -> &Self::StorageProvider {
        &self.storage
    }
    fn crypto(&self) -> &Self::CryptoProvider {
        &self.crypto
    }
    fn rand(&self) -> &Self::RandProvider {
        &self.crypto
    }
}

impl AtmlsProvider {
    /// A fresh client database at `path`, created and migrated by atmls (`Store::open`), then
    /// opened again as openmls's storage, as `tests/common`'s `RawProvider` does.
    fn create(path: &Path) -> Self {
        drop(atmls::storage::Store::open(path).unwrap());
        AtmlsProvider {
            crypto: RustCrypto::default(),
            storage: SqliteStorageProvider::new(rusqlite::Connection::open(path).unwrap()),
        }
    }
}

/// The join config of openmls's passive-client KAT: the vectors send commits and proposals as
/// PublicMessages and PrivateMessages, and resume with PSKs of up to 16 epochs back (the
/// `random` vector). atmls's own config (always ciphertext) would refuse the public ones.
fn join_config() -> MlsGroupJoinConfig {
    MlsGroupJoinConfig::builder()
        .use_ratchet_tree_extension(true)
        .wire_format_policy(MIXED_PLAINTEXT_WIRE_FORMAT_POLICY)
        .number_of_resumption_psks(16)
        .build()
}

/// Stores the vector's KeyPackage with its private keys, as openmls would have after
/// generating it. openmls has no public constructor for a bundle from raw keys (only under its
/// `test-utils` feature), but its storage holds the bundle's serde form, which is public: the
/// bundle is built by deserializing that form, so a mismatch fails the join, never passes it.
fn inject_key_package(p: &AtmlsProvider, v: &Vector) {
    let kp = own_key_package(&v.key_package, p);
    let bundle: KeyPackageBundle = serde_json::from_value(serde_json::json!({
        "key_package": kp,
        "private_init_key": HpkePrivateKey::from(unhex(&v.init_priv)),
        "private_encryption_key": { "key": HpkePrivateKey::from(unhex(&v.encryption_priv)) },
    }))
    .unwrap();
    let hash_ref = kp.hash_ref(p.crypto()).unwrap();
    p.storage().write_key_package(&hash_ref, &bundle).unwrap();
}

/// The joiner's own KeyPackage from its MLSMessage bytes, verified (signature, leaf, keys)
/// but for its lifetime: the lifetimes in these vectors ended in March 2024 and `validate`
/// checks them against the system clock, which a client never does for its own package
/// (`validate_received`, openmls patch AG-P1).
fn own_key_package(hex_message: &str, p: &AtmlsProvider) -> KeyPackage {
    let MlsMessageBodyIn::KeyPackage(kp) = MlsMessageIn::tls_deserialize_exact(unhex(hex_message))
        .unwrap()
        .extract()
    else {
        panic!("key_package is not an MLSMessage holding a KeyPackage");
    };
    kp.validate_received(p.crypto(), ProtocolVersion::Mls10)
        .unwrap()
}

fn join(p: &AtmlsProvider, v: &Vector) -> GroupId {
    for psk in &v.external_psks {
        PreSharedKeyId::external(unhex(&psk.psk_id), vec![])
            .store(p, &unhex(&psk.psk))
            .unwrap();
    }
    inject_key_package(p, v);
    let MlsMessageBodyIn::Welcome(welcome) = MlsMessageIn::tls_deserialize_exact(unhex(&v.welcome))
        .unwrap()
        .extract()
    else {
        panic!("welcome is not an MLSMessage holding a Welcome");
    };
    let processed = ProcessedWelcome::new_from_welcome(p, &join_config(), welcome).unwrap();
    // As atmls joins (src/client/incoming.rs): the adder checked the lifetimes (AGREE-3).
    let mut builder = JoinBuilder::new(p, processed).skip_lifetime_validation();
    if let Some(tree) = &v.ratchet_tree {
        builder =
            builder.with_ratchet_tree(RatchetTreeIn::tls_deserialize_exact(unhex(tree)).unwrap());
    }
    let group = builder.build().unwrap().into_group(p).unwrap();
    group.group_id().clone()
}

/// The group as stored: every step starts from SQLite, so the codec is on the path.
fn load(p: &AtmlsProvider, id: &GroupId) -> MlsGroup {
    MlsGroup::load(p.storage(), id)
        .unwrap()
        .expect("group not in storage")
}

/// Processes one proposal or commit on the group loaded from storage; returns whether it was
/// a commit.
fn process(p: &AtmlsProvider, id: &GroupId, hex_message: &str) -> bool {
    let mut group = load(p, id);
    let message = MlsMessageIn::tls_deserialize_exact(unhex(hex_message)).unwrap();
    let processed = group
        .process_message(p, message.try_into_protocol_message().unwrap())
        .unwrap();
    match processed.into_content() {
        ProcessedMessageContent::ProposalMessage(proposal) => {
            group
                .store_pending_proposal(p.storage(), *proposal)
                .unwrap();
            false
        }
        ProcessedMessageContent::StagedCommitMessage(commit) => {
            group.merge_staged_commit(p, *commit).unwrap();
            true
        }
        _ => panic!("a passive-client vector holds only proposals and commits"),
    }
}

fn epoch_authenticator(p: &AtmlsProvider, id: &GroupId) -> String {
    hex::encode(load(p, id).epoch_authenticator().as_slice())
}

/// Runs one vector; returns the number of epochs it went through.
fn run(v: &Vector, dir: &Path) -> usize {
    let p = AtmlsProvider::create(&dir.join("client.db"));
    let id = join(&p, v);
    assert_eq!(epoch_authenticator(&p, &id), v.initial_epoch_authenticator);
    for (i, epoch) in v.epochs.iter().enumerate() {
        for proposal in &epoch.proposals {
            assert!(
                !process(&p, &id, proposal),
                "epoch {i}: a proposal was a commit"
            );
        }
        assert!(
            process(&p, &id, &epoch.commit),
            "epoch {i}: the commit was not a commit"
        );
        assert_eq!(
            epoch_authenticator(&p, &id),
            epoch.epoch_authenticator,
            "epoch {i}"
        );
    }
    assert_stored_compactly(&dir.join("client.db"));
    v.epochs.len()
}

/// The group's large values went through atmls's compact codec (LG-1), not JSON: postcard,
/// tagged 0x01, or postcard and LZ4, tagged 0x02 (JSON starts with `{` or `[`).
fn assert_stored_compactly(db: &Path) {
    let c = rusqlite::Connection::open(db).unwrap();
    for kind in ["tree", "message_secrets", "group_epoch_secrets"] {
        let value: Vec<u8> = c
            .query_row(
                "SELECT group_data FROM openmls_group_data WHERE data_type = ?1",
                [kind],
                |r| r.get(0),
            )
            .unwrap();
        assert!(
            matches!(value.first(), Some(1 | 2)),
            "{kind} not stored compactly"
        );
    }
}

/// Runs every vector of `file` whose ciphersuite we support; prints what ran and what was
/// skipped (by suite).
fn run_file(file: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("vendor/rfc9420-vectors")
        .join(file);
    let vectors: Vec<Vector> = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let crypto = RustCrypto::default();
    let (mut ran, mut epochs) = (0, 0);
    let mut skipped: BTreeMap<u16, usize> = BTreeMap::new();
    for (i, v) in vectors.iter().enumerate() {
        let suite = Ciphersuite::try_from(v.cipher_suite).expect("unknown ciphersuite");
        if crypto.supports(suite).is_err() {
            *skipped.entry(v.cipher_suite).or_default() += 1;
            continue;
        }
        let dir = tempfile::tempdir().unwrap();
        let result = std::panic::catch_unwind(|| run(v, dir.path()));
        // The panic's own message is printed above this one; this one names the vector.
        epochs += result
            .unwrap_or_else(|_| panic!("{file} vector {i} (suite {}) failed", v.cipher_suite));
        ran += 1;
    }
    println!(
        "{file}: {ran} of {} vectors ran ({epochs} epochs); skipped, unsupported suite: {skipped:?}",
        vectors.len()
    );
    // atmls's own suite (1: X25519, AES-128-GCM, Ed25519) is supported, so its vectors ran.
    assert!(
        vectors.iter().any(|v| v.cipher_suite == 1),
        "{file} has no suite-1 vector"
    );
    assert!(ran > 0);
}

#[test]
fn passive_client_welcome() {
    run_file("passive-client-welcome.json");
}

#[test]
fn passive_client_handling_commit() {
    run_file("passive-client-handling-commit.json");
}

#[test]
fn passive_client_random() {
    run_file("passive-client-random.json");
}
