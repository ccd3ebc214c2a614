//! A stolen PDS password, on the real reference PDS (spec/trust.md TRUST-3, TRUST-5,
//! TRUST-10): the attacker logs into alice's account with her password and publishes a new
//! declaration, a device and KeyPackages. bob is warned and does not add the attacker's
//! device; the attacker reads nothing in existing chats; alice's device detects the rogue
//! records on self-check.
#![cfg(feature = "pds")]

mod common;
mod pds_support;

use std::sync::Arc;

use atmls::directory::pds::PdsDirectory;
use atmls::identity::DeviceIdentity;
use atmls::storage::Store;
use atmls::transport::MemoryTransport;
use atmls::trust::{SelfCheckFinding, TrustError};
use atmls::{Client, Error, Event};
use common::texts;
use pds_support::*;

async fn client_with(dir: PdsDirectory, net: &Arc<MemoryTransport>, id: DeviceIdentity) -> Client {
    Client::builder(Arc::new(dir), net.clone(), Store::in_memory().unwrap())
        .identity(id)
        .message_requests(false)
        .build()
        .await
        .unwrap()
}

async fn client(a: &Account, net: &Arc<MemoryTransport>) -> Client {
    client_with(
        directory_for(a).await,
        net,
        DeviceIdentity::new_account(a.did.clone()),
    )
    .await
}

#[tokio::test]
async fn trust_3_5_10_stolen_pds_password_on_the_real_pds() {
    let (a, b, c) = (
        create_account("alice"),
        create_account("bob"),
        create_account("carol"),
    );
    let net = Arc::new(MemoryTransport::new());
    let alice = client(&a, &net).await;
    let bob = client(&b, &net).await;
    let carol = client(&c, &net).await;
    let dm = bob.dm(&a.did).await.unwrap();
    let g = bob
        .create_group(&[a.did.clone(), c.did.clone()])
        .await
        .unwrap();
    alice.sync().await.unwrap();
    carol.sync().await.unwrap();
    assert!(alice.self_check().await.unwrap().is_empty());

    // The attacker logs in with alice's account password (not her app password) and sets up
    // a "new device" with a fresh identity key: declaration, device, KeyPackages.
    let stolen = PdsDirectory::new(config());
    stolen
        .login(&a.handle, "main-password-not-used-by-atmls")
        .await
        .unwrap();
    let attacker = client_with(stolen, &net, DeviceIdentity::new_account(a.did.clone())).await;

    // bob is warned and adds nobody.
    let e = bob
        .create_group(std::slice::from_ref(&a.did))
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::Trust(TrustError::UnacceptedKeyChange { ref did, verified: false, .. }) if did == &a.did),
        "{e:?}"
    );
    assert!(bob
        .conversation(&g)
        .add_members(std::slice::from_ref(&a.did))
        .await
        .is_err());
    let pinned = bob.contact_trust(&a.did).await.unwrap();
    let ev = bob.sync().await.unwrap();
    assert!(ev.iter().any(|e| matches!(
        e,
        Event::TrustWarning { did, old, new, .. }
            if did == &a.did && *old == pinned.identity_key && Some(*new) == pinned.pending
    )));
    assert_eq!(bob.conversation(&g).members().await.unwrap().len(), 3);

    // The attacker reads nothing.
    bob.conversation(&dm).send_text("dm secret").await.unwrap();
    bob.conversation(&g)
        .send_text("group secret")
        .await
        .unwrap();
    let ev = attacker.sync().await.unwrap();
    assert!(texts(&ev).is_empty(), "{ev:?}");
    assert!(attacker.groups().await.unwrap().is_empty());
    let mut got = texts(&alice.sync().await.unwrap());
    got.sort();
    assert_eq!(got, vec!["dm secret", "group secret"]);

    // alice's device finds the rogue declaration, device and KeyPackages in her repo.
    let found = alice.self_check().await.unwrap();
    assert!(found
        .iter()
        .any(|f| matches!(f, SelfCheckFinding::ForeignDeclaration { .. })));
    assert!(found.contains(&SelfCheckFinding::ForeignDevice {
        installation: *attacker.installation()
    }));
    assert!(found.iter().any(|f| matches!(
        f,
        SelfCheckFinding::ForeignKeyPackage { installation, .. } if installation == attacker.installation()
    )));
}
