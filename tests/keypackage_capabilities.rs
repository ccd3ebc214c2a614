//! KeyPackages that could not join an atmls group are refused before they are added (CRED-9,
//! KP-5), selection falls back to a device's packages that fit, and a group whose first
//! commit fails leaves nothing behind (GROUP-1). No PDS: the in-memory directory and
//! transport. Rule ids refer to spec/credential.md, spec/keypackage.md and spec/group.md.
mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use atmls::credential::{CredentialError, LEAF_PROOF_EXTENSION};
use atmls::directory::{
    AccountRecord, DeviceRecord, Directory, DirectoryError, KeyPackageRecord, VerifiedAccount,
};
use atmls::group::{
    welcome_mailbox, DISAPPEARING_EXTENSION, GROUP_DATA_EXTENSION, INVITES_EXTENSION,
    METADATA_EXTENSION, POLICIES_EXTENSION, ROLES_EXTENSION,
};
use atmls::identity::{
    unix_now, DeviceIdentity, Did, IdentityDeclaration, IdentityKeyPair, InstallationKeyPair,
    PublicKey,
};
use atmls::keypackage::{
    validate_record, KeyPackageError, DEFAULT_CIPHERSUITE, MAX_KEY_PACKAGE_LIFETIME_SECS,
};
use atmls::storage::Store;
use atmls::transport::*;
use atmls::{Client, Error};
use common::*;
use openmls::prelude::{
    tls_codec::{Deserialize as _, Serialize as _},
    Capabilities, Ciphersuite, CredentialType, Extension, ExtensionType, KeyPackage, Lifetime,
    UnknownExtension,
};
use openmls_rust_crypto::{OpenMlsRustCrypto, RustCrypto};
use openmls_traits::OpenMlsProvider as _;

/// A KeyPackage for `dev` built with openmls directly, as another client would: its own leaf
/// key and leaf proof (CRED-5), the capabilities given, `extra` leaf extensions.
fn raw_package(
    dev: &DeviceIdentity,
    caps: Capabilities,
    extra: Vec<Extension>,
    last_resort: bool,
) -> KeyPackageRecord {
    raw_package_dated(dev, caps, extra, last_resort, None)
}

/// [`raw_package`] with the lifetime given (`not_before`, `not_after`), or openmls's default.
fn raw_package_dated(
    dev: &DeviceIdentity,
    caps: Capabilities,
    extra: Vec<Extension>,
    last_resort: bool,
    lifetime: Option<(u64, u64)>,
) -> KeyPackageRecord {
    let p = OpenMlsRustCrypto::default();
    let cs = DEFAULT_CIPHERSUITE;
    let (signer, cwk, mut ext) = atmls::keypackage::new_leaf_key(&p, dev, cs).unwrap();
    for e in extra {
        ext.add(e).unwrap();
    }
    let mut b = KeyPackage::builder()
        .leaf_node_capabilities(caps)
        .leaf_node_extensions(ext);
    if let Some((from, to)) = lifetime {
        b = b.key_package_lifetime(Lifetime::init(from, to));
    }
    if last_resort {
        b = b.mark_as_last_resort();
    }
    let bundle = b.build(cs, &p, &signer, cwk).unwrap();
    let kp = bundle.key_package();
    let kp_ref = kp.hash_ref(p.crypto()).unwrap().as_slice().to_vec();
    INIT_KEYS
        .lock()
        .unwrap()
        .push((kp_ref.clone(), bundle.init_private_key().to_vec()));
    KeyPackageRecord {
        did: dev.did.clone(),
        installation_key: dev.installation.public(),
        key_package_ref: kp_ref,
        key_package: kp.tls_serialize_detached().unwrap(),
        ciphersuite: u16::from(cs),
        last_resort,
        created: unix_now(),
        expires: kp.life_time().not_after(),
    }
}

/// A package that fits every atmls group.
fn good(dev: &DeviceIdentity) -> KeyPackageRecord {
    raw_package(dev, capabilities_without(None), vec![], false)
}

/// A package from a client that does not support the invites extension (0xF0A6).
fn bad(dev: &DeviceIdentity) -> KeyPackageRecord {
    raw_package(
        dev,
        capabilities_without(Some(INVITES_EXTENSION)),
        vec![],
        false,
    )
}

/// An account that runs no client: its declaration and `n` devices are in the directory, and
/// it publishes only the KeyPackages a test makes for it.
async fn silent_account(dir: &dyn Directory, name: &str, n: usize) -> Vec<DeviceIdentity> {
    let key = IdentityKeyPair::generate();
    let now = unix_now();
    dir.publish_declaration(&key.declare(&did(name), now))
        .await
        .unwrap();
    let mut out = Vec::new();
    for _ in 0..n {
        let inst = InstallationKeyPair::generate();
        let cert = key.certify(&did(name), &inst.public(), now, now + 86_400);
        dir.publish_device(&DeviceRecord {
            certificate: cert.clone(),
            display_name: None,
        })
        .await
        .unwrap();
        out.push(DeviceIdentity::linked(inst, cert).unwrap());
    }
    out
}

async fn verified(dir: &dyn Directory, d: &Did) -> VerifiedAccount {
    dir.account(d)
        .await
        .unwrap()
        .unwrap()
        .verify(d, unix_now())
        .unwrap()
}

fn check(rec: &KeyPackageRecord, account: &VerifiedAccount) -> Result<KeyPackage, KeyPackageError> {
    validate_record(
        rec,
        account,
        &RustCrypto::default(),
        DEFAULT_CIPHERSUITE,
        unix_now(),
    )
}

fn unsupported(why: &'static str) -> KeyPackageError {
    KeyPackageError::Credential(CredentialError::Unsupported(why))
}

/// The Welcome payloads waiting for a device.
async fn welcomes(net: &dyn Transport, dev: &DeviceIdentity) -> Vec<Vec<u8>> {
    let page = net
        .fetch(&welcome_mailbox(&dev.installation.public()), 0, 1000)
        .await
        .unwrap();
    page.items.into_iter().map(|i| i.payload).collect()
}

/// The private init key of every package [`raw_package_dated`] made, by KeyPackageRef: those
/// devices run no client, so the test opens their sealed Welcomes itself.
static INIT_KEYS: Mutex<Vec<(Vec<u8>, Vec<u8>)>> = Mutex::new(Vec::new());

/// Whether `payload` is a Welcome for the KeyPackage `r`: sealed to its init key (GROUP-12:
/// `0x02 ‖ enc[32] ‖ HPKE ciphertext`, info "atmls/v1/welcome-seal", aad `0x02`), and the
/// Welcome inside names its KeyPackageRef.
fn names(payload: &[u8], r: &[u8]) -> bool {
    use openmls_traits::crypto::OpenMlsCrypto as _;
    let keys = INIT_KEYS.lock().unwrap();
    let Some((_, sk)) = keys.iter().find(|(k, _)| k == r) else {
        return false;
    };
    assert_eq!(payload[0], 2, "a sealed Welcome");
    let ct = openmls_traits::types::HpkeCiphertext {
        kem_output: payload[1..33].to_vec().into(),
        ciphertext: payload[33..].to_vec().into(),
    };
    RustCrypto::default()
        .hpke_open(
            DEFAULT_CIPHERSUITE.hpke_config(),
            &ct,
            sk,
            b"atmls/v1/welcome-seal",
            &[2],
        )
        .is_ok_and(|plain| plain.windows(r.len()).any(|w| w == r))
}

async fn group_ids(c: &Client) -> Vec<atmls::GroupId> {
    c.groups()
        .await
        .unwrap()
        .into_iter()
        .map(|g| g.id)
        .collect()
}

#[tokio::test]
async fn cred_9_key_package_lacking_a_required_capability_is_refused() {
    let w = World::new();
    let dev = silent_account(&*w.dir, "bob", 1).await.remove(0);
    let account = verified(&*w.dir, &did("bob")).await;
    assert!(check(&good(&dev), &account).is_ok());
    // Each extension every group requires (GROUP-1).
    for t in [
        GROUP_DATA_EXTENSION,
        LEAF_PROOF_EXTENSION,
        DISAPPEARING_EXTENSION,
        ROLES_EXTENSION,
        POLICIES_EXTENSION,
        METADATA_EXTENSION,
        INVITES_EXTENSION,
    ] {
        let rec = raw_package(&dev, capabilities_without(Some(t)), vec![], false);
        let e = check(&rec, &account).unwrap_err();
        // The leaf proof (0xF0A1) is carried by the leaf: unlisted, it is also a §7.3 case.
        assert_eq!(
            e,
            unsupported("an extension every group requires"),
            "{t:#06x}"
        );
        assert!(!e.is_retryable());
    }
    // The ciphersuite: advertised only in another one.
    let other = Capabilities::new(
        None,
        Some(&[Ciphersuite::MLS_128_DHKEMP256_AES128GCM_SHA256_P256]),
        Some(capabilities_without(None).extensions()),
        None,
        Some(&[CredentialType::Basic]),
    );
    let e = check(&raw_package(&dev, other, vec![], false), &account).unwrap_err();
    assert_eq!(e, unsupported("the group's ciphersuite"));
    // Basic credentials: only X.509 listed (openmls builds and parses such a leaf).
    let x509 = Capabilities::new(
        None,
        Some(&[DEFAULT_CIPHERSUITE]),
        Some(capabilities_without(None).extensions()),
        None,
        Some(&[CredentialType::X509]),
    );
    let e = check(&raw_package(&dev, x509, vec![], false), &account).unwrap_err();
    assert_eq!(e, unsupported("Basic credentials"));
}

#[tokio::test]
async fn cred_9_unlisted_leaf_extension_and_missing_last_resort_are_refused() {
    let w = World::new();
    let dev = silent_account(&*w.dir, "bob", 1).await.remove(0);
    let account = verified(&*w.dir, &did("bob")).await;
    // RFC 9420 §7.3: a leaf extension its capabilities do not list.
    let extra = Extension::Unknown(0xF0FF, UnknownExtension(vec![1, 2, 3]));
    let rec = raw_package(&dev, capabilities_without(None), vec![extra.clone()], false);
    let e = check(&rec, &account).unwrap_err();
    assert_eq!(
        e,
        unsupported("an extension is not listed in the leaf's capabilities")
    );
    // Listed, it is fine.
    let mut caps: Vec<ExtensionType> = capabilities_without(None).extensions().to_vec();
    caps.push(ExtensionType::Unknown(0xF0FF));
    let listed = Capabilities::new(
        None,
        Some(&[DEFAULT_CIPHERSUITE]),
        Some(&caps),
        None,
        Some(&[CredentialType::Basic]),
    );
    assert!(check(&raw_package(&dev, listed, vec![extra], false), &account).is_ok());
    // A last-resort package must list `last_resort` (openmls refuses it while parsing: KP-1,
    // reported as CRED-9).
    let lr = raw_package(
        &dev,
        capabilities_without(Some(u16::from(ExtensionType::LastResort))),
        vec![],
        true,
    );
    let e = check(&lr, &account).unwrap_err();
    assert_eq!(
        e,
        unsupported("an extension is not listed in the leaf's capabilities")
    );
    // Nor may a single-use one omit it: every atmls leaf lists `last_resort` (CRED-9).
    let single = raw_package(
        &dev,
        capabilities_without(Some(u16::from(ExtensionType::LastResort))),
        vec![],
        false,
    );
    let e = check(&single, &account).unwrap_err();
    assert_eq!(e, unsupported("the last_resort extension"));
    let lr_ok = raw_package(&dev, capabilities_without(None), vec![], true);
    assert!(check(&lr_ok, &account).unwrap().last_resort());
}

#[tokio::test]
async fn kp_5_selection_falls_back_to_a_package_that_fits() {
    let w = World::new();
    let (alice, _) = w.account("alice").await;
    let dev = silent_account(&*w.dir, "bob", 1).await.remove(0);
    for round in 0..6 {
        // One that fits and one that does not, both single-use; the used ones stay published
        // (bob runs no client) but alice never hands a single-use package out twice.
        let (g_rec, b_rec) = (good(&dev), bad(&dev));
        w.dir.publish_key_package(&b_rec).await.unwrap();
        w.dir.publish_key_package(&g_rec).await.unwrap();
        let before = welcomes(&*w.net, &dev).await.len();
        let g = alice
            .create_group(&[did("bob")])
            .await
            .unwrap_or_else(|e| panic!("round {round}: {e:?}"));
        let members = alice.conversation(&g).members().await.unwrap();
        assert!(members
            .iter()
            .any(|m| m.installation == dev.installation.public()));
        let sent = welcomes(&*w.net, &dev).await;
        assert_eq!(sent.len(), before + 1);
        let last = sent.last().unwrap();
        assert!(names(last, &g_rec.key_package_ref), "round {round}");
        assert!(!names(last, &b_rec.key_package_ref), "round {round}");
    }
    // A last-resort package that fits is taken when the only single-use one does not.
    let lr = raw_package(&dev, capabilities_without(None), vec![], true);
    w.dir.publish_key_package(&lr).await.unwrap();
    w.dir.publish_key_package(&bad(&dev)).await.unwrap();
    alice.create_group(&[did("bob")]).await.unwrap();
    assert!(names(
        welcomes(&*w.net, &dev).await.last().unwrap(),
        &lr.key_package_ref
    ));
}

#[tokio::test]
async fn kp_5_device_with_no_package_that_fits_is_skipped() {
    let w = World::new();
    let (alice, _) = w.account("alice").await;
    let devs = silent_account(&*w.dir, "bob", 2).await;
    w.dir.publish_key_package(&bad(&devs[0])).await.unwrap();
    w.dir.publish_key_package(&good(&devs[1])).await.unwrap();
    let g = alice.create_group(&[did("bob")]).await.unwrap();
    let bobs: Vec<PublicKey> = alice
        .conversation(&g)
        .members()
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.did == did("bob"))
        .map(|m| m.installation)
        .collect();
    assert_eq!(bobs, vec![devs[1].installation.public()]);
}

#[tokio::test]
async fn kp_5_account_with_no_package_that_fits_is_refused_and_nothing_is_created() {
    let w = World::new();
    let (alice, _) = w.account("alice").await;
    let (carol, _) = w.account("carol").await;
    let dev = silent_account(&*w.dir, "bob", 1).await.remove(0);
    w.dir.publish_key_package(&bad(&dev)).await.unwrap();
    let groups = group_ids(&alice).await;
    let before = alice.store_snapshot().await.unwrap();
    for _ in 0..3 {
        let e = alice
            .create_group(&[carol.did().clone(), did("bob")])
            .await
            .unwrap_err();
        assert!(
            matches!(
                &e,
                Error::KeyPackagesRefused { did: d, reason }
                    if *d == did("bob")
                        && *reason == unsupported("an extension every group requires")
            ),
            "{e:?}"
        );
        // A retry refuses the same package again.
        assert!(!e.is_retryable());
        let e = alice.dm(&did("bob")).await.unwrap_err();
        assert!(matches!(e, Error::KeyPackagesRefused { .. }), "{e:?}");
    }
    assert_eq!(group_ids(&alice).await, groups);
    assert_eq!(alice.store_snapshot().await.unwrap(), before);
    // Once bob publishes one that fits, it works.
    w.dir.publish_key_package(&good(&dev)).await.unwrap();
    alice.dm(&did("bob")).await.unwrap();
}

/// A directory whose packages for one account change after its first lookup, as when the
/// one that fitted was used by someone else between the check and the commit.
struct ChangingDirectory {
    inner: Arc<atmls::directory::MemoryDirectory>,
    lookups: Mutex<HashMap<Did, usize>>,
    /// (account, package hidden from the second lookup on)
    hide: Mutex<Option<(Did, Vec<u8>)>>,
}

#[async_trait::async_trait]
impl Directory for ChangingDirectory {
    async fn account(&self, did: &Did) -> Result<Option<AccountRecord>, DirectoryError> {
        self.inner.account(did).await
    }
    async fn key_packages(&self, did: &Did) -> Result<Vec<KeyPackageRecord>, DirectoryError> {
        let n = {
            let mut l = self.lookups.lock().unwrap();
            let n = l.entry(did.clone()).or_default();
            *n += 1;
            *n
        };
        let mut out = self.inner.key_packages(did).await?;
        if let Some((d, r)) = self.hide.lock().unwrap().as_ref() {
            if d == did && n > 1 {
                out.retain(|k| k.key_package_ref != *r);
            }
        }
        Ok(out)
    }
    async fn publish_declaration(&self, d: &IdentityDeclaration) -> Result<(), DirectoryError> {
        self.inner.publish_declaration(d).await
    }
    async fn publish_device(&self, d: &DeviceRecord) -> Result<(), DirectoryError> {
        self.inner.publish_device(d).await
    }
    async fn remove_device(&self, did: &Did, i: &PublicKey) -> Result<(), DirectoryError> {
        self.inner.remove_device(did, i).await
    }
    async fn publish_key_package(&self, r: &KeyPackageRecord) -> Result<(), DirectoryError> {
        self.inner.publish_key_package(r).await
    }
    async fn delete_key_package(&self, did: &Did, r: &[u8]) -> Result<(), DirectoryError> {
        self.inner.delete_key_package(did, r).await
    }
}

/// A transport that fails the next commit or the next Welcome with the error given.
struct FailingTransport {
    inner: Arc<MemoryTransport>,
    commit: Mutex<Option<TransportError>>,
    welcome: Mutex<Option<TransportError>>,
}

#[async_trait::async_trait]
impl Transport for FailingTransport {
    async fn submit_commit(
        &self,
        m: &Mailbox,
        e: &EpochTag,
        after: u64,
        p: &[u8],
        k: &IdempotencyKey,
    ) -> Result<CommitOutcome, TransportError> {
        if let Some(e) = self.commit.lock().unwrap().take() {
            return Err(e);
        }
        self.inner.submit_commit(m, e, after, p, k).await
    }
    async fn send_message(
        &self,
        m: &Mailbox,
        e: &EpochTag,
        after: u64,
        p: &[u8],
        k: &IdempotencyKey,
    ) -> Result<SendOutcome, TransportError> {
        self.inner.send_message(m, e, after, p, k).await
    }
    async fn send_welcome(
        &self,
        m: &MailboxId,
        p: &[u8],
        k: &IdempotencyKey,
    ) -> Result<u64, TransportError> {
        if let Some(e) = self.welcome.lock().unwrap().take() {
            return Err(e);
        }
        self.inner.send_welcome(m, p, k).await
    }
    async fn fetch(&self, m: &MailboxId, after: u64, limit: u32) -> Result<Page, TransportError> {
        self.inner.fetch(m, after, limit).await
    }
    async fn subscribe(&self, m: &[MailboxId]) -> Result<Subscription, TransportError> {
        self.inner.subscribe(m).await
    }
    async fn put_tree(&self, l: &TreeLocator, b: &[u8]) -> Result<(), TransportError> {
        self.inner.put_tree(l, b).await
    }
    async fn fetch_tree(&self, l: &TreeLocator) -> Result<Vec<u8>, TransportError> {
        self.inner.fetch_tree(l).await
    }
}

/// A group with bob, or the DM with him.
async fn create(c: &Client, dm: bool) -> Result<atmls::GroupId, Error> {
    if dm {
        c.dm(&did("bob")).await
    } else {
        c.create_group(&[did("bob")]).await
    }
}

#[tokio::test]
async fn group_1_failed_first_commit_leaves_no_group() {
    let w = World::new();
    let dir = Arc::new(ChangingDirectory {
        inner: w.dir.clone(),
        lookups: Mutex::new(HashMap::new()),
        hide: Mutex::new(None),
    });
    let net = Arc::new(FailingTransport {
        inner: w.net.clone(),
        commit: Mutex::new(None),
        welcome: Mutex::new(None),
    });
    let alice = Client::builder(dir.clone(), net.clone(), Store::in_memory().unwrap())
        .identity(DeviceIdentity::new_account(did("alice")))
        .build()
        .await
        .unwrap();
    let dev = silent_account(&*w.dir, "bob", 1).await.remove(0);
    // bob pinned and one group made, so that what follows changes nothing but groups.
    let first = good(&dev);
    w.dir.publish_key_package(&first).await.unwrap();
    alice.create_group(&[did("bob")]).await.unwrap();
    // Used: bob's device would delete it once joined (KP-6). Left there, alice would set it
    // aside and call bob's packages possibly replenished (`NoKeyPackages`, retryable).
    w.dir
        .delete_key_package(&did("bob"), &first.key_package_ref)
        .await
        .unwrap();
    let groups = group_ids(&alice).await;
    let before = alice.store_snapshot().await.unwrap();

    // The package that fitted when the creation checked is gone when the commit is built.
    let fits = good(&dev);
    w.dir.publish_key_package(&bad(&dev)).await.unwrap();
    w.dir.publish_key_package(&fits).await.unwrap();
    dir.lookups.lock().unwrap().clear();
    *dir.hide.lock().unwrap() = Some((did("bob"), fits.key_package_ref.clone()));
    let e = alice.create_group(&[did("bob")]).await.unwrap_err();
    assert!(
        matches!(&e, Error::KeyPackagesRefused { did: d, .. } if *d == did("bob")),
        "{e:?}"
    );
    assert!(!e.is_retryable());
    assert_eq!(group_ids(&alice).await, groups);
    assert_eq!(alice.store_snapshot().await.unwrap(), before);
    *dir.hide.lock().unwrap() = None;

    // The transport refuses the commit, for good or for now.
    for (err, retryable, dm) in [
        (TransportError::Refused("no".into()), false, true),
        (TransportError::Unavailable("down".into()), true, false),
    ] {
        w.dir.publish_key_package(&good(&dev)).await.unwrap();
        let groups = group_ids(&alice).await;
        let before = alice.store_snapshot().await.unwrap();
        *net.commit.lock().unwrap() = Some(err.clone());
        let e = create(&alice, dm).await.unwrap_err();
        assert!(matches!(&e, Error::Transport(t) if *t == err), "{e:?}");
        assert_eq!(e.is_retryable(), retryable);
        assert_eq!(group_ids(&alice).await, groups);
        assert_eq!(alice.store_snapshot().await.unwrap(), before);
        // A retry makes a new group (for a DM: the failed one is not handed out instead).
        let g = create(&alice, dm).await.unwrap();
        assert!(!groups.contains(&g));
        let info = alice.groups().await.unwrap();
        assert_eq!(info.iter().find(|i| i.id == g).unwrap().epoch, 1);
        assert_eq!(info.len(), groups.len() + 1);
    }
}

#[tokio::test]
async fn group_1_accepted_first_commit_stands_when_welcomes_wait() {
    let w = World::new();
    let net = Arc::new(FailingTransport {
        inner: w.net.clone(),
        commit: Mutex::new(None),
        welcome: Mutex::new(None),
    });
    let alice = Client::builder(w.dir.clone(), net.clone(), Store::in_memory().unwrap())
        .identity(DeviceIdentity::new_account(did("alice")))
        .build()
        .await
        .unwrap();
    let dev = silent_account(&*w.dir, "bob", 1).await.remove(0);
    w.dir.publish_key_package(&good(&dev)).await.unwrap();
    *net.welcome.lock().unwrap() = Some(TransportError::Unavailable("down".into()));
    // The commit was accepted: the group exists and its id is returned; the Welcome waits.
    let g = alice.create_group(&[did("bob")]).await.unwrap();
    assert!(group_ids(&alice).await.contains(&g));
    assert!(welcomes(&*w.net, &dev).await.is_empty());
    alice.sync().await.unwrap();
    assert_eq!(welcomes(&*w.net, &dev).await.len(), 1);
}

/// RFC 9420 §7.3 on every leaf validated, not only on KeyPackages: the check `validate_leaf`
/// runs on each leaf of a joined tree and each new leaf of a received commit (AGREE-3).
#[tokio::test]
async fn cred_9_every_validated_leaf_lists_its_extensions() {
    let w = World::new();
    let dev = silent_account(&*w.dir, "bob", 1).await.remove(0);
    let extra = Extension::Unknown(0xF0FF, UnknownExtension(vec![1]));
    let rec = raw_package(&dev, capabilities_without(None), vec![extra], false);
    let kp = openmls::prelude::KeyPackageIn::tls_deserialize_exact(rec.key_package.as_slice())
        .unwrap()
        .validate(
            &RustCrypto::default(),
            openmls::prelude::ProtocolVersion::Mls10,
        )
        .unwrap();
    let e = atmls::credential::validate_leaf(kp.leaf_node(), DEFAULT_CIPHERSUITE, unix_now())
        .unwrap_err();
    assert_eq!(
        e,
        CredentialError::Unsupported("an extension is not listed in the leaf's capabilities")
    );
    let fine = raw_package(&dev, capabilities_without(None), vec![], false);
    let kp = openmls::prelude::KeyPackageIn::tls_deserialize_exact(fine.key_package.as_slice())
        .unwrap()
        .validate(
            &RustCrypto::default(),
            openmls::prelude::ProtocolVersion::Mls10,
        )
        .unwrap();
    assert!(
        atmls::credential::validate_leaf(kp.leaf_node(), DEFAULT_CIPHERSUITE, unix_now()).is_ok()
    );
}

/// KP-4: outside its lifetime is `Expired`, whichever clock noticed first (openmls reads the
/// system clock while parsing, the adder its own); valid for longer than 90 days is
/// `LifetimeTooLong`, however current.
#[tokio::test]
async fn kp_4_expired_and_overlong_packages_are_refused_as_such() {
    let w = World::new();
    let dev = silent_account(&*w.dir, "bob", 1).await.remove(0);
    let account = verified(&*w.dir, &did("bob")).await;
    let now = unix_now();
    let dated = |from, to| {
        raw_package_dated(
            &dev,
            capabilities_without(None),
            vec![],
            false,
            Some((from, to)),
        )
    };
    // Expired by the system clock (openmls) and by ours.
    let old = dated(now - 40 * 86_400, now - 86_400);
    assert_eq!(check(&old, &account).unwrap_err(), KeyPackageError::Expired);
    // Not valid yet.
    let early = dated(now + 86_400, now + 10 * 86_400);
    assert_eq!(
        check(&early, &account).unwrap_err(),
        KeyPackageError::Expired
    );
    // Current by the system clock, expired by the adder's.
    let soon = dated(now - 3600, now + 3600);
    let later = validate_record(
        &soon,
        &account,
        &RustCrypto::default(),
        DEFAULT_CIPHERSUITE,
        now + 7200,
    );
    assert_eq!(later.unwrap_err(), KeyPackageError::Expired);
    // A hundred years.
    let forever = dated(now - 3600, now + 100 * 365 * 86_400);
    assert!(matches!(
        check(&forever, &account).unwrap_err(),
        KeyPackageError::LifetimeTooLong(s) if s > MAX_KEY_PACKAGE_LIFETIME_SECS
    ));
    // Exactly the maximum is accepted.
    let max = dated(now - 3600, now - 3600 + MAX_KEY_PACKAGE_LIFETIME_SECS);
    assert!(check(&max, &account).is_ok());
    assert!(!KeyPackageError::LifetimeTooLong(1).is_retryable());
}

/// CRED-1: identity bytes whose identity or installation key is not 32 bytes are a malformed
/// encoding (`Malformed`), not a bad key, whatever else they hold.
#[test]
fn cred_1_a_key_that_is_not_32_bytes_is_malformed() {
    let did = b"did:plc:aaaaaaaaaaaaaaaaaaaaaaaa";
    for (identity_len, installation_len) in [(31usize, 32usize), (32, 33), (0, 32)] {
        let mut b = vec![1u8, did.len() as u8];
        b.extend_from_slice(did);
        b.extend_from_slice(&0x0807u16.to_be_bytes());
        b.push(identity_len as u8);
        b.extend(std::iter::repeat_n(7u8, identity_len));
        b.push(installation_len as u8);
        b.extend(std::iter::repeat_n(9u8, installation_len));
        b.extend_from_slice(&1u64.to_be_bytes());
        b.extend_from_slice(&2u64.to_be_bytes());
        // 64 needs a two-byte length (RFC 9420 §2.1.2).
        b.extend_from_slice(&[0x40, 64]);
        b.extend_from_slice(&[0u8; 64]);
        assert_eq!(
            atmls::credential::AtmlsIdentity::from_bytes(&b),
            Err(CredentialError::Malformed("key length")),
            "{identity_len}/{installation_len}"
        );
    }
}
