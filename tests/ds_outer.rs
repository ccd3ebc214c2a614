//! Outer encryption of group payloads (spec/ds.md DS-2) and the capability-derived mailbox id
//! (DS-3), on the in-process transport: what reaches any transport is sealed and padded, and
//! only a member in the right epoch opens it.
mod common;

use atmls::group::mailbox_for;
use atmls::transport::*;
use atmls::{Error, Event};
use common::*;

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn ds_2_group_payloads_are_sealed_padded_and_epoch_bound() {
    let w = World::new();
    let (alice, _) = w.account("alice").await;
    let (bob, _) = w.account("bob").await;
    let g = alice.create_group(&[bob.did().clone()]).await.unwrap();
    bob.sync().await.unwrap();
    let text = "a secret about the outer layer";
    alice.conversation(&g).send_text(text).await.unwrap();
    let mb = mailbox_for(g.as_bytes());
    let items = w.net.fetch(&mb.id, 0, 100).await.unwrap().items;
    assert_eq!(items.len(), 2);
    for i in &items {
        let p = &i.payload;
        assert_eq!(p[0], 1, "version byte");
        // version + nonce + tag around a multiple of 256 bytes.
        assert_eq!((p.len() - 1 - 12 - 16) % 256, 0, "padded: {}", p.len());
        assert!(!contains(p, g.as_bytes()), "group id in clear");
        assert!(!contains(p, alice.did().as_str().as_bytes()));
        assert!(!contains(p, text.as_bytes()));
    }
    assert_eq!(texts(&bob.sync().await.unwrap()), vec![text]);

    // The sealed message does not open in the next epoch: bob rotates, then replays it.
    let msg = items[1].payload.clone();
    bob.conversation(&g).self_update().await.unwrap();
    let before = bob.epoch_fingerprint(&g).await.unwrap();
    let e = bob
        .conversation(&g)
        .process_incoming(&msg)
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::Group(atmls::group::GroupError::Undecryptable(_))),
        "{e:?}"
    );
    assert_eq!(bob.epoch_fingerprint(&g).await.unwrap(), before);

    // A stranger who knows the mailbox id but not the capability cannot post.
    let stranger = Mailbox {
        id: mb.id,
        post_secret: Some([0; 32]),
    };
    assert_eq!(
        w.net
            .send_message(
                &stranger,
                &EpochTag([5; 32]),
                0,
                b"x",
                &IdempotencyKey::random()
            )
            .await,
        Err(TransportError::Forbidden)
    );
    // Someone holding the capability but no group key (a removed member, say) can post, and
    // members refuse it at the outer layer, state unchanged.
    w.net
        .send_message(&mb, &EpochTag([6; 32]), 0, &msg, &IdempotencyKey::random())
        .await
        .unwrap();
    let ev = alice.sync().await.unwrap();
    assert!(
        ev.iter().any(|e| matches!(
            e,
            Event::Refused {
                error: atmls::group::GroupError::Undecryptable(_),
                ..
            }
        )),
        "{ev:?}"
    );
    assert_eq!(alice.epoch_fingerprint(&g).await.unwrap(), before);
}

#[test]
fn ds_3_mailbox_id_is_the_hash_of_the_capability() {
    let m = mailbox_for(&[7; 32]);
    let cap = m.post_secret.unwrap();
    assert_eq!(m.id, MailboxId::for_capability(&cap));
    assert_ne!(m.id.0, cap);
    assert_ne!(MailboxId::for_capability(&[0; 32]), m.id);
}
