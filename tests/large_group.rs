//! A 1,000-member group: build, add, remove, message. Members beyond a few real clients are
//! accounts that only published KeyPackages (they never process anything).
mod common;
use atmls::directory::Directory;
use atmls::identity::DeviceIdentity;
use atmls::keypackage::KeyPackagePolicy;
use atmls::storage::Store;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_member_group_build_add_remove_message() {
    let w = World::new();
    let (alice, _) = w.account("alice").await;
    let (bob, _) = w.account("bob").await;
    let mut dids = vec![bob.did().clone()];
    // 997 more accounts, each one device with one last-resort KeyPackage.
    let policy = KeyPackagePolicy {
        single_use: 0,
        replenish_below: 0,
        lifetime_secs: 86_400,
    };
    for i in 0..997u32 {
        let name: String = format!("{:0>6}", i)
            .chars()
            .map(|c| (b'a' + (c as u8 - b'0')) as char)
            .collect();
        let d = did(&format!("m{name}"));
        let c = atmls::Client::builder(w.dir.clone(), w.net.clone(), Store::in_memory().unwrap())
            .identity(DeviceIdentity::new_account(d.clone()))
            .key_package_policy(policy.clone())
            .build()
            .await
            .unwrap();
        assert_eq!(w.dir.key_packages(&d).await.unwrap().len(), 1);
        drop(c);
        dids.push(d);
    }
    let g = alice.create_group(&dids).await.unwrap();
    assert_eq!(alice.conversation(&g).members().await.unwrap().len(), 999);
    assert_eq!(joined(&bob.sync().await.unwrap()), vec![g.clone()]);

    let (carol, _) = w.account("carol").await;
    alice
        .conversation(&g)
        .add_members(&[carol.did().clone()])
        .await
        .unwrap();
    assert_eq!(alice.conversation(&g).members().await.unwrap().len(), 1000);
    assert_eq!(joined(&carol.sync().await.unwrap()), vec![g.clone()]);
    bob.sync().await.unwrap();

    alice
        .conversation(&g)
        .remove_members(&dids[1..11])
        .await
        .unwrap();
    assert_eq!(alice.conversation(&g).members().await.unwrap().len(), 990);
    alice.conversation(&g).send_text("to 990").await.unwrap();
    assert_eq!(texts(&bob.sync().await.unwrap()), vec!["to 990"]);
    assert_eq!(texts(&carol.sync().await.unwrap()), vec!["to 990"]);
    assert_eq!(
        bob.epoch_fingerprint(&g).await.unwrap(),
        carol.epoch_fingerprint(&g).await.unwrap()
    );
}
