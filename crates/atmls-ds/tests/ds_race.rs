//! Races through the real DS: 50 members of one group commit (self-update) at once on the same
//! epoch. Per epoch exactly one commit is accepted; losers catch up and retry, so every intent
//! lands once; every member converges on the same epoch and exporter secret (DS-4).
#[path = "../../../tests/common/mod.rs"]
mod common;
mod ds_support;

use std::sync::Arc;
use std::time::Instant;

use atmls::transport::*;
use atmls::{Client, Error};
use ds_support::*;

const MEMBERS: usize = 50;

async fn race(backend: Backend, dir: tempfile::TempDir) {
    let a = Ds::start(&backend, "127.0.0.1:0", dir.path().join("a.log"), NO_LIMITS);
    // On PostgreSQL, half the members use a second process.
    let b = match backend {
        Backend::Postgres(_) => Some(Ds::start(
            &backend,
            "127.0.0.1:0",
            dir.path().join("b.log"),
            NO_LIMITS,
        )),
        Backend::Sqlite(_) => None,
    };
    let url = |i: usize| match (&b, i % 2) {
        (Some(b), 1) => b.url.clone(),
        _ => a.url.clone(),
    };
    let t0 = Instant::now();
    let w = DsWorld::new();
    let mut clients: Vec<Arc<Client>> = Vec::new();
    for i in 0..MEMBERS {
        // `did()` keeps letters and pads with 'a': end with 'z' to keep names distinct.
        let digits: String = i
            .to_string()
            .bytes()
            .map(|d| (b'a' + (d - b'0')) as char)
            .collect();
        let name = format!("m{digits}z");
        clients.push(Arc::new(w.account(&url(i), &name).await.0));
    }
    let others: Vec<_> = clients[1..].iter().map(|c| c.did().clone()).collect();
    let g = clients[0].create_group(&others).await.unwrap();
    for c in &clients[1..] {
        c.sync().await.unwrap();
    }
    let start = clients[0].epoch_fingerprint(&g).await.unwrap().0;
    let setup = t0.elapsed();

    let t1 = Instant::now();
    let mut tasks = Vec::new();
    for c in &clients {
        let (c, g) = (Arc::clone(c), g.clone());
        tasks.push(tokio::spawn(async move {
            // The application keeps its intent across lost races until it lands.
            let mut conflicts = 0;
            loop {
                match c.conversation(&g).self_update().await {
                    Ok(()) => return conflicts,
                    Err(Error::Conflict) => conflicts += 1,
                    Err(e) => panic!("{e:?}"),
                }
            }
        }));
    }
    let mut conflicts = 0;
    for t in tasks {
        conflicts += t.await.unwrap();
    }
    let race_time = t1.elapsed();

    for c in &clients {
        c.sync().await.unwrap();
    }
    let fp = clients[0].epoch_fingerprint(&g).await.unwrap();
    assert_eq!(
        fp.0,
        start + MEMBERS as u64,
        "every intent landed exactly once"
    );
    for c in &clients[1..] {
        assert_eq!(c.epoch_fingerprint(&g).await.unwrap(), fp, "all converge");
    }
    // The mailbox holds exactly one commit per epoch.
    let t = HttpTransport::new(&a.url).unwrap();
    let mut commits = 0;
    let mut after = 0;
    loop {
        let p = t
            .fetch(&atmls::group::mailbox_for(g.as_bytes()).id, after, 1000)
            .await
            .unwrap();
        for d in &p.items {
            after = d.seq;
            commits += usize::from(d.kind == Kind::Commit);
        }
        if !p.more {
            break;
        }
    }
    assert_eq!(commits as u64, fp.0, "one commit per epoch from epoch 0");
    let metrics = reqwest::get(format!("{}/metrics", a.metrics_url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let taken: u64 = metrics
        .lines()
        .filter(|l| l.starts_with("atmls_ds_posts_total{kind=\"commit\",outcome=\"epoch_taken\"}"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert!(taken > 0, "the commits did race");
    eprintln!(
        "race: {MEMBERS} members, setup {setup:?}, all {MEMBERS} updates landed in {race_time:?}, \
         {taken} commits refused on this process, {conflicts} operations gave up after 8 lost races and were retried"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ds_4_fifty_members_commit_at_once_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let b = sqlite_in(&dir);
    race(b, dir).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ds_4_fifty_members_commit_at_once_postgres_two_processes() {
    let Some(b) = pg_fresh() else { return };
    race(b, tempfile::tempdir().unwrap()).await;
}
