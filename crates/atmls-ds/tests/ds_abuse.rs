//! atmls-ds against hostile posters (spec/ds.md DS-9, DS-17), on the real binary over SQLite:
//! a removed member flooding a group mailbox does not spend the members' budget, and a
//! stranger flooding a Welcome mailbox makes its own posts dearer, while an honest inviter
//! pays the price it is told and gets through.
#[path = "../../../tests/common/mod.rs"]
mod common;
mod ds_support;

use atmls::identity::{unix_now, InstallationKeyPair};
use atmls::transport::stamp::{make_stamp, stamp_header, stamp_ok, STAMP_HEADER};
use atmls::transport::*;
use ds_support::raw::*;
use ds_support::*;

fn start(extra: &[&str]) -> (Ds, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let ds = Ds::start(
        &sqlite_in(&dir),
        "127.0.0.1:0",
        dir.path().join("ds.log"),
        extra,
    );
    (ds, dir)
}

/// DS-9: a removed member knows the mailbox's capability and its last epoch's tag, not the
/// current one. Its flood under that old tag and under made-up tags is limited, and members
/// posting under the current tag are not: before the budget was per tag, the same flood made
/// the next member's message a 429.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ds_9_a_removed_members_flood_does_not_spend_the_members_budget() {
    let (ds, _d) = start(&["--rate-mailbox", "5", "--rate-address", "0"]);
    let t = ds.transport();
    let raw = Raw::new(&ds);
    let mb = Mailbox::from_capability(rand::random());
    let (old, current) = ([1u8; 32], [2u8; 32]);
    // The commit that removed the attacker, under the old tag, by a member.
    let seq = match t
        .submit_commit(
            &mb,
            &EpochTag(old),
            0,
            b"removal",
            &IdempotencyKey::random(),
        )
        .await
        .unwrap()
    {
        CommitOutcome::Accepted { seq } => seq,
        other => panic!("{other:?}"),
    };
    let messages = format!("/v1/mailboxes/{}/messages", hex::encode(mb.id.0));
    let commits = format!("/v1/mailboxes/{}/commits", hex::encode(mb.id.0));
    let mut refused = 0;
    for i in 0..60u8 {
        let (path, tag) = match i % 3 {
            0 => (&messages, old),
            1 => (&commits, old),
            _ => (&commits, rand::random()),
        };
        let mut h = group_headers(&mb, tag, rand::random());
        h.push(("atmls-after", seq.to_string()));
        if raw.post(path, &h, b"junk".to_vec()).await.0 == 429 {
            refused += 1;
        }
    }
    assert!(refused > 0, "the flood under the old tag is limited");
    // Members, in the current epoch, post as usual: at once, not after a retry (raw posts,
    // which the client transport would retry on a 429).
    for n in 0..8u8 {
        let mut h = group_headers(&mb, current, rand::random());
        h.push(("atmls-after", seq.to_string()));
        let (status, body) = raw.post(&messages, &h, vec![n; 8]).await;
        assert_eq!(status, 200, "member message {n}: {body:?}");
    }
    let got = t
        .send_message(
            &mb,
            &EpochTag(current),
            seq,
            b"via the transport",
            &IdempotencyKey::random(),
        )
        .await;
    assert!(matches!(got, Ok(SendOutcome::Accepted { .. })), "{got:?}");
}

/// DS-17: posts to a Welcome mailbox carry a stamp bound to the post; one without, with too
/// few bits, made for another payload, key or mailbox, or malformed, is refused and nothing is
/// stored. The refusal names the price.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ds_17_welcome_posts_need_a_stamp_bound_to_the_post() {
    let (ds, _d) = start(&["--stamp-bits", "10", "--rate-address", "0"]);
    let raw = Raw::new(&ds);
    let device = InstallationKeyPair::generate();
    let proof = WelcomeReadProof::sign(&device.secret_bytes(), unix_now());
    let mb = proof.mailbox;
    let path = format!("/v1/mailboxes/{}/welcomes", hex::encode(mb.0));
    let idem = [3u8; 16];
    let post = |stamp: Option<String>| {
        let mut h = vec![("idempotency-key", hex::encode(idem))];
        if let Some(s) = stamp {
            h.push((STAMP_HEADER, s));
        }
        h
    };
    // A stamp of at least 1 bit and fewer than 10.
    let weak = (0u64..)
        .find(|n| stamp_ok(&mb, &idem, b"w", *n, 1) && !stamp_ok(&mb, &idem, b"w", *n, 10))
        .unwrap();
    let other_payload = make_stamp(&mb, &idem, b"v", 10).unwrap();
    let other_key = make_stamp(&mb, &[4; 16], b"w", 10).unwrap();
    let other_mailbox = make_stamp(&MailboxId([0; 32]), &idem, b"w", 10).unwrap();
    for stamp in [
        None,
        Some(weak),
        Some(other_payload),
        Some(other_key),
        Some(other_mailbox),
    ] {
        let (status, body) = raw
            .post(&path, &post(stamp.map(stamp_header)), b"w".to_vec())
            .await;
        assert_eq!(status, 428, "{stamp:?} {body:?}");
        let body = body.unwrap();
        assert_eq!(
            (body.error.as_str(), body.limit),
            ("stamp_required", Some(10))
        );
    }
    assert_error(
        raw.post(&path, &post(Some("not hex!".into())), b"w".to_vec())
            .await,
        400,
        "malformed",
    );
    let t = ds.transport();
    assert!(t
        .fetch_welcomes(&proof, 0, 10)
        .await
        .unwrap()
        .items
        .is_empty());
    // The right stamp is taken, and the client transport pays the price it is told.
    let good = make_stamp(&mb, &idem, b"w", 10).unwrap();
    assert_eq!(
        raw.post(&path, &post(Some(stamp_header(good))), b"w".to_vec())
            .await
            .0,
        200
    );
    t.send_welcome(&mb, b"invitation", &IdempotencyKey::random())
        .await
        .unwrap();
    let items = t.fetch_welcomes(&proof, 0, 10).await.unwrap().items;
    assert_eq!(
        items.iter().map(|i| i.payload.clone()).collect::<Vec<_>>(),
        vec![b"w".to_vec(), b"invitation".to_vec()]
    );
}

/// DS-17: a stranger flooding one Welcome mailbox (paying each time) raises its price a bit per
/// doubling; an honest inviter, told the new price, pays it and its Welcome is stored, where a
/// fixed per-mailbox bucket answered it 429. Other mailboxes keep the base price.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ds_17_a_stranger_flood_raises_its_price_and_inviters_still_get_through() {
    let (ds, _d) = start(&[
        "--stamp-bits",
        "2",
        "--rate-welcome",
        "1",
        "--rate-address",
        "0",
    ]);
    let raw = Raw::new(&ds);
    let device = InstallationKeyPair::generate();
    let proof = WelcomeReadProof::sign(&device.secret_bytes(), unix_now());
    let mb = proof.mailbox;
    let path = format!("/v1/mailboxes/{}/welcomes", hex::encode(mb.0));
    let mut price = 2u8;
    let mut prices = Vec::new();
    for _ in 0..120 {
        let idem: [u8; 16] = rand::random();
        let stamp = make_stamp(&mb, &idem, b"junk", price).unwrap();
        let h = vec![
            ("idempotency-key", hex::encode(idem)),
            (STAMP_HEADER, stamp_header(stamp)),
        ];
        let (status, body) = raw.post(&path, &h, b"junk".to_vec()).await;
        match status {
            200 => {}
            428 => price = body.unwrap().limit.unwrap() as u8,
            other => panic!("flood post answered {other}"),
        }
        prices.push(price);
    }
    // 1 post/s settles at about 14 recent posts: 120 at once cost 3 bits more than the base.
    assert!(price >= 5, "{prices:?}");
    let t = ds.transport();
    t.send_welcome(&mb, b"invitation", &IdempotencyKey::random())
        .await
        .unwrap();
    let mut all = Vec::new();
    loop {
        let page = t
            .fetch_welcomes(&proof, all.last().map_or(0, |i: &Delivered| i.seq), 1000)
            .await
            .unwrap();
        all.extend(page.items);
        if !page.more {
            break;
        }
    }
    assert_eq!(all.last().unwrap().payload, b"invitation");
    // Another mailbox is at the base price: its first post pays 2 bits.
    let other = welcome_mailbox_of(InstallationKeyPair::generate().public().as_bytes());
    let (status, body) = raw
        .post(
            &format!("/v1/mailboxes/{}/welcomes", hex::encode(other.0)),
            &[("idempotency-key", hex::encode([1u8; 16]))],
            b"x".to_vec(),
        )
        .await;
    assert_eq!((status, body.unwrap().limit), (428, Some(2)));
}
