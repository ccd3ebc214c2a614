//! The `atmls demo` command: on embedded defaults, through a real atmls-ds, and refusing a
//! plain-http service on a remote host (TRANSPORT-8).

mod ds_support;

use std::process::Command;

fn demo(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_atmls"))
        .arg("demo")
        .args(args)
        .output()
        .expect("run atmls demo");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The README's first command: the demo on embedded defaults (in-process transport).
#[test]
fn demo_runs_on_embedded_defaults() {
    let (ok, stdout, stderr) = demo(&[]);
    assert!(ok, "{stdout}\n{stderr}");
    assert!(stdout.contains("demo finished"), "{stdout}");
}

/// The demo through atmls-ds, here started in the test's process on a free loopback port
/// with a SQLite store: the demo's conversations are stored there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ds_demo_runs_through_atmls_ds() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ds.db");
    let cfg = ds_support::ds_config(&db);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let ds = tokio::spawn(atmls_ds::run_on(cfg, listener, async move {
        let _ = stopped.await;
    }));
    let (ok, stdout, stderr) = tokio::task::spawn_blocking(move || demo(&["--ds", &url]))
        .await
        .unwrap();
    assert!(ok, "{stdout}\n{stderr}");
    assert!(stdout.contains("through atmls-ds"), "{stdout}");
    assert!(stdout.contains("still chatting after restart"), "{stdout}");
    assert!(stdout.contains("demo finished"), "{stdout}");
    let _ = stop.send(());
    ds.await.unwrap().unwrap();
    // The demo's conversations went through the service.
    let items: i64 = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("SELECT count(*) FROM items", [], |r| r.get(0))
        .unwrap();
    assert!(items > 10, "{items} items stored");
}

/// The demo refuses a plain-http DS URL to a remote host before contacting it (TRANSPORT-8).
#[test]
fn transport_8_demo_refuses_plain_http_to_a_remote_host() {
    let (ok, _, err) = demo(&["--ds", "http://192.0.2.1:1"]);
    assert!(!ok);
    assert!(err.contains("plain http"), "{err}");
}
