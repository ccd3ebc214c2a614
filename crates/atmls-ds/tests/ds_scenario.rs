//! End to end through the real `atmls-ds` over HTTP: three users, five devices, DMs and a
//! group, on SQLite and on PostgreSQL, and with two DS processes sharing one PostgreSQL; then
//! the blindness check (DS-1): the whole database and the logs hold no DID, group id or
//! plaintext.
#[path = "../../../tests/common/mod.rs"]
mod common;
mod ds_support;

use atmls::{Client, Event, GroupId};
use common::{joined, texts};
use ds_support::*;

/// What must never reach the service.
struct Secrets {
    needles: Vec<(String, Vec<u8>)>,
    /// A mailbox id the dump must contain (raw for SQLite, hex for pg_dump): proves the dump
    /// holds the stored data, so that the absence of the needles means something.
    mailbox: [u8; 32],
}

impl Secrets {
    fn add(&mut self, what: &str, bytes: &[u8]) {
        self.needles.push((what.to_owned(), bytes.to_vec()));
        // PostgreSQL dumps bytea as hex.
        self.needles
            .push((format!("{what} (hex)"), hex::encode(bytes).into_bytes()));
    }

    fn check_dump(&self, dump: &[u8]) {
        assert!(
            contains(dump, &self.mailbox) || contains(dump, hex::encode(self.mailbox).as_bytes()),
            "the dump does not hold the stored mailboxes"
        );
        self.check("the database", dump);
    }

    fn check(&self, place: &str, hay: &[u8]) {
        for (what, n) in &self.needles {
            assert!(!contains(hay, n), "{what} found in {place}");
        }
    }
}

async fn sync_texts(c: &Client) -> Vec<String> {
    texts(&c.sync().await.unwrap())
}

/// The scenario; device `i` talks to `urls[i % urls.len()]`. Returns what must stay secret.
async fn scenario(urls: &[String]) -> Secrets {
    let url = |i: usize| urls[i % urls.len()].as_str();
    let w = DsWorld::new();
    let (alice1, akey) = w.account(url(0), "alice").await;
    let alice2 = w.device(url(1), "alice", &akey).await;
    let (bob1, bkey) = w.account(url(2), "bob").await;
    let bob2 = w.device(url(3), "bob", &bkey).await;
    let (carol, _) = w.account(url(4), "carol").await;
    let mut secrets = Secrets {
        needles: vec![],
        mailbox: [0; 32],
    };
    for c in [&alice1, &bob1, &carol] {
        secrets.add("a DID", c.did().as_str().as_bytes());
    }
    for name in ["alice", "carol"] {
        secrets.add("a handle", format!("{name}.test").as_bytes());
    }

    // A DM that both of alice's and both of bob's devices see.
    let dm = alice1.dm(bob1.did()).await.unwrap();
    secrets.add("a group id", dm.as_bytes());
    for c in [&alice2, &bob1, &bob2] {
        assert_eq!(joined(&c.sync().await.unwrap()), vec![dm.clone()]);
    }
    let dm_text = "ds-secret: hello bob, via the DS";
    alice1.conversation(&dm).send_text(dm_text).await.unwrap();
    for c in [&alice2, &bob1, &bob2] {
        assert_eq!(sync_texts(c).await, vec![dm_text]);
    }
    bob2.conversation(&dm)
        .send_text("ds-secret: hi alice")
        .await
        .unwrap();
    for c in [&alice1, &alice2, &bob1] {
        assert_eq!(sync_texts(c).await, vec!["ds-secret: hi alice"]);
    }
    secrets.add("plaintext", dm_text.as_bytes());

    // A group of the three users, five devices.
    let g: GroupId = alice2
        .create_group(&[bob1.did().clone(), carol.did().clone()])
        .await
        .unwrap();
    secrets.add("a group id", g.as_bytes());
    secrets.mailbox = atmls::group::mailbox_for(g.as_bytes()).id.0;
    for c in [&alice1, &bob1, &bob2, &carol] {
        assert_eq!(joined(&c.sync().await.unwrap()), vec![g.clone()]);
    }
    let texts_sent = [
        "ds-secret: group hello from carol",
        "ds-secret: bob answers",
    ];
    carol
        .conversation(&g)
        .send_text(texts_sent[0])
        .await
        .unwrap();
    bob1.conversation(&g)
        .send_text(texts_sent[1])
        .await
        .unwrap();
    for c in [&alice1, &alice2, &bob2] {
        assert_eq!(sync_texts(c).await, texts_sent.to_vec());
    }
    assert_eq!(sync_texts(&bob1).await, vec![texts_sent[0]]);
    assert_eq!(sync_texts(&carol).await, vec![texts_sent[1]]);
    for t in texts_sent {
        secrets.add("plaintext", t.as_bytes());
    }

    // Update, remove, and a message carol must not read.
    bob2.conversation(&g).self_update().await.unwrap();
    alice1
        .conversation(&g)
        .remove_members(&[carol.did().clone()])
        .await
        .unwrap();
    let ev = carol.sync().await.unwrap();
    assert!(
        ev.iter().any(|e| matches!(e, Event::Removed { .. })),
        "{ev:?}"
    );
    let after = "ds-secret: carol is gone";
    alice2.conversation(&g).send_text(after).await.unwrap();
    secrets.add("plaintext", after.as_bytes());
    assert!(sync_texts(&carol).await.is_empty());
    for c in [&alice1, &bob1, &bob2] {
        assert_eq!(sync_texts(c).await, vec![after]);
    }
    // Everyone left in the group agrees on the epoch and its secrets.
    let fp = alice1.epoch_fingerprint(&g).await.unwrap();
    for c in [&alice2, &bob1, &bob2] {
        assert_eq!(c.epoch_fingerprint(&g).await.unwrap(), fp);
    }
    secrets
}

fn blindness(secrets: &Secrets, backend: &Backend, logs: &[std::path::PathBuf]) {
    secrets.check_dump(&backend.dump());
    for l in logs {
        let log = std::fs::read(l).unwrap();
        assert!(!log.is_empty());
        secrets.check("the log", &log);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ds_1_e2e_sqlite_three_users_five_devices_and_blindness() {
    let dir = tempfile::tempdir().unwrap();
    let backend = sqlite_in(&dir);
    let ds = Ds::start(
        &backend,
        "127.0.0.1:0",
        dir.path().join("ds.log"),
        NO_LIMITS,
    );
    let secrets = scenario(std::slice::from_ref(&ds.url)).await;
    blindness(&secrets, &backend, std::slice::from_ref(&ds.log));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ds_1_e2e_postgres_three_users_five_devices_and_blindness() {
    let Some(backend) = pg_fresh() else { return };
    let dir = tempfile::tempdir().unwrap();
    let ds = Ds::start(
        &backend,
        "127.0.0.1:0",
        dir.path().join("ds.log"),
        NO_LIMITS,
    );
    let secrets = scenario(std::slice::from_ref(&ds.url)).await;
    blindness(&secrets, &backend, std::slice::from_ref(&ds.log));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ds_4_two_processes_on_one_postgres() {
    let Some(backend) = pg_fresh() else { return };
    let dir = tempfile::tempdir().unwrap();
    let a = Ds::start(&backend, "127.0.0.1:0", dir.path().join("a.log"), NO_LIMITS);
    let b = Ds::start(&backend, "127.0.0.1:0", dir.path().join("b.log"), NO_LIMITS);
    let secrets = scenario(&[a.url.clone(), b.url.clone()]).await;
    blindness(&secrets, &backend, &[a.log.clone(), b.log.clone()]);
}
