//! Hostile and broken input on the real PDS: every refused record is skipped with a typed
//! error the caller can inspect, and an inviter never adds its device (spec/records.md).
#![cfg(feature = "pds")]

mod pds_support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;

use atmls::directory::pds::{records, PdsDirectory, PdsError, RecordError};
use atmls::directory::{Directory, DirectoryError, MemoryDirectory};
use atmls::identity::{
    unix_now, DeviceIdentity, Did, IdentityError, IdentityKeyPair, InstallationKeyPair,
};
use atmls::keypackage::KeyPackagePolicy;
use atmls::storage::Store;
use atmls::transport::MemoryTransport;
use atmls::Client;
use pds_support::*;
use serde_json::{json, Value};

fn policy(n: usize) -> KeyPackagePolicy {
    KeyPackagePolicy {
        single_use: n,
        replenish_below: n,
        ..KeyPackagePolicy::default()
    }
}

/// An account with one device that published everything properly; returns the device's
/// identity key (to certify more devices) too.
async fn published(name: &str) -> (Account, Client, IdentityKeyPair) {
    let a = create_account(name);
    let dev = DeviceIdentity::new_account(a.did.clone());
    let key =
        IdentityKeyPair::from_secret_bytes(&dev.identity_key.as_ref().unwrap().secret_bytes()[..])
            .unwrap();
    let c = Client::builder(
        Arc::new(directory_for(&a).await),
        Arc::new(MemoryTransport::new()),
        Store::in_memory().unwrap(),
    )
    .identity(dev)
    .key_package_policy(policy(1))
    .build()
    .await
    .unwrap();
    (a, c, key)
}

fn reader() -> PdsDirectory {
    PdsDirectory::new(config())
}

#[tokio::test]
async fn rec_2_malformed_key_package_records_are_refused_with_typed_errors() {
    let (m, _c, _) = published("malformed").await;
    let (_, good) = list_raw(&m.did, records::KEY_PACKAGE).remove(0);
    let now = unix_now();
    let variant = |f: &dyn Fn(&mut Value)| {
        let mut v = good.clone();
        f(&mut v);
        v
    };
    type Case = (Value, Box<dyn Fn(&RecordError) -> bool>, bool);
    let cases: Vec<Case> = vec![
        (
            variant(&|v| {
                v.as_object_mut().unwrap().remove("keyPackage");
            }),
            Box::new(|e| *e == RecordError::MissingField("keyPackage")),
            true,
        ),
        (
            variant(&|v| v["ciphersuite"] = json!("1")),
            Box::new(|e| {
                matches!(
                    e,
                    RecordError::WrongType {
                        field: "ciphersuite",
                        ..
                    }
                )
            }),
            true,
        ),
        (
            variant(&|v| v["lastResort"] = json!(1)),
            Box::new(|e| {
                matches!(
                    e,
                    RecordError::WrongType {
                        field: "lastResort",
                        ..
                    }
                )
            }),
            true,
        ),
        (
            variant(&|v| v["keyPackage"] = json!({"$bytes": "not base64 !!"})),
            Box::new(|e| *e == RecordError::BadBase64("keyPackage")),
            true,
        ),
        (
            variant(&|v| v["padding"] = json!("x".repeat(40_000))),
            Box::new(|e| matches!(e, RecordError::TooLarge { .. })),
            false, // the lexicon allows unknown fields; the size cap is ours
        ),
        (
            variant(&|v| v["expiresAt"] = records_datetime(now - 60)),
            Box::new(|e| *e == RecordError::Expired),
            false,
        ),
        (
            variant(&|v| v["expiresAt"] = records_datetime(now + 90 * 86_400)),
            Box::new(|e| *e == RecordError::Mismatch("expiresAt")),
            false,
        ),
        (
            variant(&|v| v["keyPackage"] = json!({"$bytes": "AAEC"})),
            Box::new(|e| matches!(e, RecordError::KeyPackage(_))),
            false,
        ),
    ];
    // The official validator agrees on the structural ones.
    let verdicts = validate(
        &cases
            .iter()
            .map(|(v, _, _)| (records::KEY_PACKAGE, v.clone()))
            .collect::<Vec<_>>(),
    );
    for ((_, _, lexicon_invalid), verdict) in cases.iter().zip(&verdicts) {
        assert_eq!(verdict.is_err(), *lexicon_invalid, "{verdict:?}");
    }
    let mut rkeys = Vec::new();
    for (v, _, _) in &cases {
        rkeys.push(put_raw(&m, records::KEY_PACKAGE, None, v));
    }
    let found = reader().lookup(&m.did).await.unwrap();
    assert_eq!(
        found.key_packages.len(),
        2,
        "only the two published properly"
    );
    for (rkey, (_, check, _)) in rkeys.iter().zip(&cases) {
        let r = found
            .rejected
            .iter()
            .find(|r| &r.rkey == rkey)
            .unwrap_or_else(|| panic!("{rkey} not rejected"));
        assert!(check(&r.error), "{rkey}: {:?}", r.error);
        assert_eq!(r.collection, records::KEY_PACKAGE);
    }
    // Through the Directory trait: the same records are skipped and can be inspected.
    let dir = reader();
    assert_eq!(dir.key_packages(&m.did).await.unwrap().len(), 2);
    assert_eq!(dir.take_rejected(&m.did).len(), cases.len());
}

fn records_datetime(secs: u64) -> Value {
    Value::String(records::format_datetime(secs))
}

#[tokio::test]
async fn rec_5_key_package_signed_by_a_device_not_in_the_device_records_is_never_added() {
    let (m, mallory, key) = published("rogue").await;
    // A second device, certified by mallory's own identity key, whose device record is not
    // published: its KeyPackages go into mallory's repository anyway.
    let inst = InstallationKeyPair::generate();
    let now = unix_now();
    let cert = key.certify(&m.did, &inst.public(), now, now + 86_400);
    let side = Arc::new(MemoryDirectory::new());
    let _rogue = Client::builder(
        side.clone(),
        Arc::new(MemoryTransport::new()),
        Store::in_memory().unwrap(),
    )
    .identity(DeviceIdentity::linked(inst, cert).unwrap())
    .key_package_policy(policy(1))
    .build()
    .await
    .unwrap();
    let mallory_dir = directory_for(&m).await;
    for r in side.key_packages(&m.did).await.unwrap() {
        mallory_dir.publish_key_package(&r).await.unwrap();
    }
    let found = reader().lookup(&m.did).await.unwrap();
    assert_eq!(found.key_packages.len(), 2);
    assert_eq!(found.rejected.len(), 2);
    assert!(found
        .rejected
        .iter()
        .all(|r| r.error == RecordError::UnknownDevice));

    // Bob adds mallory: only her listed device joins.
    let b = create_account("bobrogue");
    let net = Arc::new(MemoryTransport::new());
    let bob = Client::builder(
        Arc::new(directory_for(&b).await),
        net,
        Store::in_memory().unwrap(),
    )
    .identity(DeviceIdentity::new_account(b.did.clone()))
    .build()
    .await
    .unwrap();
    let g = bob
        .create_group(std::slice::from_ref(&m.did))
        .await
        .unwrap();
    let members = bob.conversation(&g).members().await.unwrap();
    let hers: Vec<_> = members.iter().filter(|x| x.did == m.did).collect();
    assert_eq!(hers.len(), 1, "{members:?}");
    assert_eq!(hers[0].installation, *mallory.installation());
}

#[tokio::test]
async fn rec_3_forged_binding_signature_is_refused_and_nobody_is_added() {
    let (m, _c, _) = published("forged").await;
    let (_, mut decl) = list_raw(&m.did, records::DECLARATION).remove(0);
    // Another key claims the account: the signature is the old key's, over other bytes.
    let other = IdentityKeyPair::generate();
    decl["identityKey"]["key"] = json!({"$bytes": b64(other.public().as_bytes())});
    put_raw(&m, records::DECLARATION, Some("self"), &decl);
    assert!(
        validate(&[(records::DECLARATION, decl.clone())])[0].is_ok(),
        "well-formed"
    );
    match reader().lookup(&m.did).await {
        Err(PdsError::Declaration { did, error }) => {
            assert_eq!(did, m.did);
            assert_eq!(
                error,
                RecordError::Identity(IdentityError::BadSignature("identity declaration"))
            );
        }
        other => panic!("{other:?}"),
    }
    let e = reader().account(&m.did).await.unwrap_err();
    assert!(
        matches!(e, DirectoryError::Refused(_)) && !e.is_retryable(),
        "{e:?}"
    );

    let b = create_account("bobforged");
    let bob = Client::builder(
        Arc::new(directory_for(&b).await),
        Arc::new(MemoryTransport::new()),
        Store::in_memory().unwrap(),
    )
    .identity(DeviceIdentity::new_account(b.did.clone()))
    .build()
    .await
    .unwrap();
    assert!(bob
        .create_group(std::slice::from_ref(&m.did))
        .await
        .is_err());
    assert!(bob.groups().await.unwrap().is_empty());
}

#[tokio::test]
async fn id_6_forged_endorsement_is_refused() {
    let (m, _c, key) = published("endorse").await;
    let dir = directory_for(&m).await;
    let older = IdentityKeyPair::generate();
    let mut decl = key.declare(&m.did, unix_now());
    decl.endorsements = vec![older.endorse(&m.did, &key.public(), unix_now())];
    dir.publish_declaration(&decl).await.unwrap();
    let ok = reader().lookup(&m.did).await.unwrap();
    assert_eq!(ok.declaration.declaration.endorsements.len(), 1);
    decl.endorsements[0].created += 1;
    dir.publish_declaration(&decl).await.unwrap();
    assert!(matches!(
        reader().lookup(&m.did).await,
        Err(PdsError::Declaration {
            error: RecordError::Identity(IdentityError::ForgedEndorsement),
            ..
        })
    ));
}

#[tokio::test]
async fn rec_4_device_with_forged_certificate_is_skipped() {
    let (m, c, _) = published("forgedcert").await;
    let inst = InstallationKeyPair::generate();
    let now = unix_now();
    let forged = IdentityKeyPair::generate().certify(&m.did, &inst.public(), now, now + 100);
    let (rkey, mut v) = records::encode_device(&atmls::directory::DeviceRecord {
        certificate: forged,
        display_name: Some("evil".into()),
    });
    put_raw(&m, records::DEVICE, Some(&rkey), &v);
    // And one whose record key is not its installation id.
    v["displayName"] = json!("misfiled");
    put_raw(&m, records::DEVICE, Some("misfiled"), &v);
    let found = reader().lookup(&m.did).await.unwrap();
    assert_eq!(found.account.devices, vec![*c.installation()]);
    let err = |k: &str| &found.rejected.iter().find(|r| r.rkey == k).unwrap().error;
    assert_eq!(
        *err(&rkey),
        RecordError::Identity(IdentityError::Mismatch("device identity key"))
    );
    assert!(matches!(err("misfiled"), RecordError::BadRecordKey(_)));
}

fn b64(b: &[u8]) -> String {
    records::encode_key_package(&atmls::directory::KeyPackageRecord {
        did: Did::new("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa").unwrap(),
        installation_key: InstallationKeyPair::generate().public(),
        key_package_ref: b.to_vec(),
        key_package: vec![1],
        ciphersuite: 1,
        last_resort: false,
        created: 0,
        expires: 0,
    })["keyPackageRef"]["$bytes"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Serves one fixed JSON document at every path (a did:web host), on 127.0.0.1.
fn serve_did_doc(doc: impl Fn(u16) -> Value + Send + 'static) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let body = doc(port).to_string();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut buf = [0u8; 4096];
            let mut got = Vec::new();
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test]
async fn rec_6_did_document_without_pds_endpoint() {
    let port = serve_did_doc(|port| {
        json!({
            "id": format!("did:web:localhost%3A{port}"),
            "alsoKnownAs": ["at://nopds.test"],
            "service": [{"id": "#atproto_labeler", "type": "AtprotoLabeler", "serviceEndpoint": "http://localhost:1"}]
        })
    });
    let did = Did::new(&format!("did:web:localhost%3A{port}")).unwrap();
    let e = reader().lookup(&did).await.unwrap_err();
    assert!(
        matches!(&e, PdsError::NoPdsEndpoint(d) if *d == did),
        "{e:?}"
    );
    assert!(!e.is_retryable());
}

#[tokio::test]
async fn rec_7_pds_down_is_a_typed_retryable_error() {
    // A did:web account whose PDS is not running.
    let dead = closed_port();
    let port = serve_did_doc(move |port| {
        json!({
            "id": format!("did:web:localhost%3A{port}"),
            "service": [{"id": "#atproto_pds", "type": "AtprotoPersonalDataServer",
                         "serviceEndpoint": format!("http://127.0.0.1:{dead}")}]
        })
    });
    let did = Did::new(&format!("did:web:localhost%3A{port}")).unwrap();
    let dir = reader();
    assert_eq!(
        dir.pds_of(&did).await.unwrap(),
        format!("http://127.0.0.1:{dead}")
    );
    let e = dir.lookup(&did).await.unwrap_err();
    assert!(
        matches!(e, PdsError::Unavailable(_)) && e.is_retryable(),
        "{e:?}"
    );
    let e = dir.key_packages(&did).await.unwrap_err();
    assert!(
        matches!(e, DirectoryError::Unavailable(_)) && e.is_retryable(),
        "{e:?}"
    );
    // The PLC directory down: the same.
    let mut cfg = config();
    cfg.plc_url = format!("http://127.0.0.1:{}", closed_port());
    let e = PdsDirectory::new(cfg)
        .lookup(&Did::new("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa").unwrap())
        .await
        .unwrap_err();
    assert!(e.is_retryable(), "{e:?}");
}

#[tokio::test]
async fn session_errors_are_typed() {
    let a = create_account("sess");
    let dir = reader();
    let e = dir.login(&a.handle, "wrong-password").await.unwrap_err();
    assert!(matches!(e, PdsError::Auth(_)) && !e.is_retryable(), "{e:?}");
    // Not logged in: no writes.
    let dev = DeviceIdentity::new_account(a.did.clone());
    let decl = dev
        .identity_key
        .as_ref()
        .unwrap()
        .declare(&a.did, unix_now());
    let e = dir.publish_declaration(&decl).await.unwrap_err();
    assert!(matches!(e, DirectoryError::Refused(_)), "{e:?}");
    // Logged in as someone else: no writes into another repository.
    let b = create_account("sessb");
    let bdir = directory_for(&b).await;
    assert!(bdir.publish_declaration(&decl).await.is_err());
    assert!(list_raw(&a.did, records::DECLARATION).is_empty());
    // A refreshed session keeps working.
    bdir.refresh().await.unwrap();
    let bdev = DeviceIdentity::new_account(b.did.clone());
    let bdecl = bdev
        .identity_key
        .as_ref()
        .unwrap()
        .declare(&b.did, unix_now());
    bdir.publish_declaration(&bdecl).await.unwrap();
    assert_eq!(list_raw(&b.did, records::DECLARATION).len(), 1);
    // A handle that does not exist.
    assert!(matches!(
        dir.resolve("nobody-here.test").await,
        Err(PdsError::Handle(_))
    ));
}
