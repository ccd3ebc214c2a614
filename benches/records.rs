//! Reading an account from a PDS, without the network: decoding and checking its records
//! (spec/records.md REC-2 … REC-5) for one account with one device and 6 KeyPackages.
//! `declaration`: decode + binding signature; `devices`: decode + certificate;
//! `key_packages_6`: decode + every KeyPackage check (KP-1 … KP-5, leaf proof) for 6 records.

use std::sync::Arc;

use atmls::directory::pds::{check_declaration, check_devices, check_key_packages, records};
use atmls::directory::{AccountRecord, Directory, MemoryDirectory};
use atmls::identity::{unix_now, DeviceIdentity, Did};
use atmls::storage::Store;
use atmls::transport::MemoryTransport;
use atmls::Client;
use criterion::{criterion_group, criterion_main, Criterion};

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let did: Did = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse().unwrap();
    let dir = Arc::new(MemoryDirectory::new());
    let (account, kps) = rt.block_on(async {
        let _c = Client::builder(
            dir.clone(),
            Arc::new(MemoryTransport::new()),
            Store::in_memory().unwrap(),
        )
        .identity(DeviceIdentity::new_account(did.clone()))
        .build()
        .await
        .unwrap();
        (
            dir.account(&did).await.unwrap().unwrap(),
            dir.key_packages(&did).await.unwrap(),
        )
    });
    let decl = records::encode_declaration(&account.declaration, &Default::default());
    let devices: Vec<_> = account.devices.iter().map(records::encode_device).collect();
    let kp_raw: Vec<_> = kps
        .iter()
        .enumerate()
        .map(|(i, k)| (format!("k{i}"), records::encode_key_package(k)))
        .collect();
    let now = unix_now();
    let checked = check_declaration(&did, &decl).unwrap();
    let verified = AccountRecord {
        declaration: account.declaration.clone(),
        devices: account.devices.clone(),
    }
    .verify(&did, now)
    .unwrap();
    assert_eq!(
        check_key_packages(&checked, &verified, &kp_raw, now)
            .0
            .len(),
        6
    );

    let mut g = c.benchmark_group("records");
    g.bench_function("declaration", |b| {
        b.iter(|| check_declaration(&did, &decl).unwrap())
    });
    g.bench_function("devices", |b| {
        b.iter(|| check_devices(&checked, &devices, now))
    });
    g.bench_function("key_packages_6", |b| {
        b.iter(|| check_key_packages(&checked, &verified, &kp_raw, now))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
