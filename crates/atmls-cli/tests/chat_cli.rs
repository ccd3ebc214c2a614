//! The chat client end to end: alice, bob and carol each run the `atmls` binary in their
//! own processes, with their own stores, against the local reference PDS (accounts, records)
//! and a real atmls-ds (messages), and read each other's messages. `--json` output is what
//! the assertions read.
#![cfg(all(feature = "pds", feature = "ds-client"))]

mod ds_support;
#[path = "../../../tests/pds_support/mod.rs"]
mod pds_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use pds_support::*;
use serde_json::Value;

/// An atmls-ds on a free loopback port with a SQLite database, on its own thread and
/// runtime, for the life of the test binary.
fn start_ds(dir: &Path) -> String {
    let db = dir.join("ds.db");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let cfg = ds_support::ds_config(&db);
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(format!("http://{}", listener.local_addr().unwrap()))
                .unwrap();
            atmls_ds::run_on(cfg, listener, std::future::pending::<()>())
                .await
                .unwrap();
        });
    });
    rx.recv().unwrap()
}

/// One person's device: their account and their store.
struct Person {
    account: Account,
    store: PathBuf,
    ds: String,
}

impl Person {
    fn new(name: &str, dir: &Path, ds: &str) -> Person {
        Person {
            account: create_account(name),
            store: dir.join(format!("{name}.db")),
            ds: ds.to_owned(),
        }
    }

    fn handle(&self) -> &str {
        &self.account.handle
    }

    /// Runs `atmls --json <args>` as this person (no password in the environment).
    fn run(&self, args: &[&str]) -> Output {
        self.run_with(None, args)
    }

    fn run_with(&self, password: Option<&str>, args: &[&str]) -> Output {
        self.command(password, args).output().expect("run atmls")
    }

    /// `atmls --json <args>` as this person, not started.
    fn command(&self, password: Option<&str>, args: &[&str]) -> Command {
        let p = pds();
        let mut c = Command::new(env!("CARGO_BIN_EXE_atmls"));
        c.env("ATMLS_PASSPHRASE", PASSPHRASE);
        c.arg("--json")
            .args(args)
            .env("ATMLS_STORE", &self.store)
            .env("ATMLS_DS_URL", &self.ds)
            .env("ATMLS_HANDLE_RESOLVER", &p.pds_url)
            .env("ATMLS_PLC_URL", &p.plc_url)
            .env_remove("ATMLS_APP_PASSWORD")
            .env_remove("ATMLS_HANDLE")
            .stdin(Stdio::null());
        if let Some(pw) = password {
            c.env("ATMLS_APP_PASSWORD", pw);
        }
        c
    }

    /// `atmls login` by OAuth (the default): reads the page to open from the CLI's first
    /// line, signs in there (`approve`) or rejects, and returns the finished command's output
    /// (its stdout with that first line).
    fn oauth_login(&self, approve: bool) -> Output {
        use std::io::{BufRead, BufReader, Read};
        let mut c = self.command(None, &["login", "--handle", self.handle(), "--wait", "60"]);
        let mut child = c
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        let v: Value = serde_json::from_str(&first).unwrap_or(Value::Null);
        assert_eq!(v["event"], "open_url", "{first}");
        pds_support::browser::user_at_page(v["url"].as_str().unwrap(), &self.account, approve);
        let mut rest = String::new();
        stdout.read_to_string(&mut rest).unwrap();
        let mut o = child.wait_with_output().unwrap();
        o.stdout = (first + &rest).into_bytes();
        o
    }

    /// Runs a command that must succeed; its JSON lines.
    fn ok(&self, args: &[&str]) -> Vec<Value> {
        lines(&self.run(args), true)
    }

    /// Runs a command that must fail; its stderr.
    fn fails(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(!o.status.success(), "{args:?} succeeded: {}", text(&o));
        String::from_utf8_lossy(&o.stderr).into_owned()
    }

    fn login(&self) {
        let o = self.run_with(
            Some(&self.account.app_password),
            &["login", "--handle", self.handle()],
        );
        let l = lines(&o, true);
        assert_eq!(l[0]["event"], "logged_in", "{l:?}");
        assert_eq!(l[0]["did"], self.account.did.as_str());
    }
}

fn text(o: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn lines(o: &Output, success: bool) -> Vec<Value> {
    assert_eq!(o.status.success(), success, "{}", text(o));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

/// The lines of one event type.
fn events<'a>(l: &'a [Value], event: &str) -> Vec<&'a Value> {
    l.iter().filter(|v| v["event"] == event).collect()
}

/// Two people chat through the PDS and the DS: login, init, a DM that starts as a message
/// request, accept and reply, watch; a group; blocking; safety numbers.
#[test]
fn two_people_chat_through_the_pds_and_the_ds() {
    let dir = tempfile::tempdir().unwrap();
    let ds = start_ds(dir.path());
    let alice = Person::new("chata", dir.path(), &ds);
    let bob = Person::new("chatb", dir.path(), &ds);
    let carol = Person::new("chatc", dir.path(), &ds);

    logins_and_init(&alice, &bob, &carol);
    dm_request_accept_reply(&alice, &bob);
    group_create_name_role(&alice, &bob, &carol);
    block_hides_a_dm(&bob, &carol);
    safety_numbers_devices_logout(&alice, &bob);
}

/// Negatives before login and init; then each logs in and sets up.
fn logins_and_init(alice: &Person, bob: &Person, carol: &Person) {
    // Before logging in, commands say what to do.
    let err = alice.fails(&["groups"]);
    assert!(
        err.contains("not logged in") && err.contains("atmls login"),
        "{err}"
    );
    // A wrong app password is refused, and nothing is saved.
    let o = alice.run_with(
        Some("wrong-password"),
        &["login", "--handle", alice.handle()],
    );
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("login refused"),
        "{}",
        text(&o)
    );
    assert!(alice.fails(&["groups"]).contains("not logged in"));

    for p in [&alice, &bob, &carol] {
        p.login();
        // Logged in but not set up: says to init.
        if p.handle() == alice.handle() {
            let err = alice.fails(&["dm", bob.handle(), "too early"]);
            assert!(err.contains("atmls init"), "{err}");
        }
        let l = p.ok(&["init"]);
        assert_eq!(l[0]["event"], "initialised", "{l:?}");
        assert_eq!(l[0]["created"], true);
    }
    // Again: already set up, the same device.
    let again = alice.ok(&["init"]);
    assert_eq!(again[0]["created"], false, "{again:?}");

    // An unknown handle.
    let err = alice.fails(&["dm", "nobody-here.test", "hi"]);
    assert!(err.contains("unknown account nobody-here.test"), "{err}");
}

/// `atmls login` signs in by OAuth unless given an app password (REC-13): a refused sign-in
/// says so and saves nothing; an approved one serves every later command (publishing through
/// the DPoP-bound session, resumed from the store without a browser); `logout` revokes it.
#[test]
fn oauth_login_then_chat_and_a_refused_sign_in() {
    let dir = tempfile::tempdir().unwrap();
    let ds = start_ds(dir.path());
    let alice = Person::new("oaua", dir.path(), &ds);
    let bob = Person::new("oaub", dir.path(), &ds);

    let o = alice.oauth_login(false);
    assert!(!o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("refused") && err.contains("atmls login"),
        "{err}"
    );
    assert!(alice.fails(&["groups"]).contains("not logged in"));

    let l = lines(&alice.oauth_login(true), true);
    let done = events(&l, "logged_in");
    assert_eq!(done[0]["auth"], "oauth", "{l:?}");
    assert_eq!(done[0]["did"], alice.account.did.as_str());
    alice.ok(&["init"]);
    bob.login();
    bob.ok(&["init"]);
    dm_request_accept_reply(&alice, &bob);

    alice.ok(&["logout"]);
    assert!(alice.fails(&["groups"]).contains("not logged in"));
}

/// alice's DM is a request for bob, who accepts and replies; alice watches.
fn dm_request_accept_reply(alice: &Person, bob: &Person) {
    // alice writes to bob: for bob, a message request.
    let l = alice.ok(&["dm", bob.handle(), "hello bob"]);
    let dm = events(&l, "dm")[0]["group"].as_str().unwrap().to_owned();
    assert_eq!(events(&l, "sent")[0]["text"], "hello bob", "{l:?}");
    let l = bob.ok(&["requests"]);
    let req = events(&l, "request");
    assert_eq!(req.len(), 1, "{l:?}");
    assert_eq!(req[0]["group"], dm.as_str());
    assert_eq!(req[0]["by"], alice.account.did.as_str());
    // bob accepts (by a prefix of the id) and reads alice's message.
    let l = bob.ok(&["accept", &dm[..10]]);
    assert_eq!(events(&l, "accepted").len(), 1, "{l:?}");
    let msgs = events(&l, "message");
    assert!(
        msgs.iter()
            .any(|m| m["text"] == "hello bob" && m["from"] == alice.account.did.as_str()),
        "{l:?}"
    );
    assert!(bob.ok(&["requests"]).is_empty());
    // bob replies, naming the DM by alice's handle.
    let l = bob.ok(&["send", alice.handle(), "hi alice"]);
    assert_eq!(events(&l, "sent")[0]["group"], dm.as_str(), "{l:?}");
    // alice's watch shows it.
    let l = alice.ok(&["watch", "--until-idle"]);
    let got = events(&l, "message");
    assert!(
        got.iter()
            .any(|m| m["text"] == "hi alice" && m["from"] == bob.account.did.as_str()),
        "{l:?}"
    );
    // And the live watch: bob writes while alice watches for one event.
    let watching = spawn(
        alice,
        &["watch", "--count", "1", "--timeout", "60", "--poll", "1"],
    );
    std::thread::sleep(std::time::Duration::from_secs(2));
    bob.ok(&["send", &dm, "live now"]);
    let o = watching.wait_with_output().unwrap();
    let l = lines(&o, true);
    assert!(
        events(&l, "message")
            .iter()
            .any(|m| m["text"] == "live now"),
        "{}",
        text(&o)
    );
}

/// A group: created, renamed, a role given; a request for the stranger.
fn group_create_name_role(alice: &Person, bob: &Person, carol: &Person) {
    // A group: alice creates and renames it; bob (whom she talks to) is in it; carol (a
    // stranger to alice) has it as a request.
    let l = alice.ok(&[
        "group",
        "create",
        "--name",
        "Lunch",
        bob.handle(),
        carol.handle(),
    ]);
    let g = events(&l, "group_created")[0]["group"]
        .as_str()
        .unwrap()
        .to_owned();
    alice.ok(&["group", "name", &g[..12], "Lunch Club"]);
    let l = alice.ok(&["group", "role", &g, bob.handle(), "admin"]);
    assert_eq!(events(&l, "role_set").len(), 1, "{l:?}");
    let l = bob.ok(&["groups"]);
    let listed: Vec<_> = events(&l, "group")
        .into_iter()
        .filter(|v| v["group"] == g.as_str())
        .collect();
    assert_eq!(listed.len(), 1, "{l:?}");
    assert_eq!(listed[0]["name"], "Lunch Club");
    let l = bob.ok(&["group", "members", &g]);
    let roles: Vec<_> = events(&l, "member")
        .iter()
        .map(|m| {
            (
                m["did"].as_str().unwrap().to_owned(),
                m["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        roles.contains(&(alice.account.did.to_string(), "owner".into())),
        "{roles:?}"
    );
    assert!(
        roles.contains(&(bob.account.did.to_string(), "admin".into())),
        "{roles:?}"
    );
    let l = carol.ok(&["requests"]);
    assert!(
        events(&l, "request")
            .iter()
            .any(|r| r["group"] == g.as_str()),
        "{l:?}"
    );
    let l = bob.ok(&["send", &g, "see you at noon"]);
    assert_eq!(events(&l, "sent").len(), 1);
    let l = alice.ok(&["watch", "--until-idle"]);
    assert!(
        events(&l, "message")
            .iter()
            .any(|m| m["text"] == "see you at noon"),
        "{l:?}"
    );
}

/// bob blocks carol: her DM never shows; unblocking.
fn block_hides_a_dm(bob: &Person, carol: &Person) {
    // bob blocks carol: her DM never shows, as a request or a message.
    let l = bob.ok(&["block", carol.handle()]);
    assert_eq!(
        events(&l, "blocked")[0]["did"],
        carol.account.did.as_str(),
        "{l:?}"
    );
    let l = bob.ok(&["blocked"]);
    assert_eq!(events(&l, "blocked_account").len(), 1, "{l:?}");
    carol.ok(&["dm", bob.handle(), "buy my stuff"]);
    let l = bob.ok(&["watch", "--until-idle"]);
    assert!(!l.iter().any(|v| v["text"] == "buy my stuff"), "{l:?}");
    assert!(
        events(&l, "declined")
            .iter()
            .any(|d| d["by"] == carol.account.did.as_str()),
        "{l:?}"
    );
    let l = bob.ok(&["requests"]);
    assert!(events(&l, "request").is_empty(), "{l:?}");
    let l = bob.ok(&["groups"]);
    assert!(
        !events(&l, "group")
            .iter()
            .any(|v| v["peer"] == carol.account.did.as_str()),
        "{l:?}"
    );
    // Unblocked, carol can write again (a new request).
    bob.ok(&["unblock", carol.handle()]);
    assert!(events(&bob.ok(&["blocked"]), "blocked_account").is_empty());
}

/// Safety numbers, devices, logout.
fn safety_numbers_devices_logout(alice: &Person, bob: &Person) {
    // Safety numbers: the same on both sides; verifying with a wrong scan is refused.
    let a = alice.ok(&["verify", bob.handle()]);
    let b = bob.ok(&["verify", alice.handle()]);
    assert_eq!(a[0]["digits"], b[0]["digits"], "{a:?} {b:?}");
    assert_eq!(a[0]["verified"], false);
    let err = alice.fails(&["verify", bob.handle(), "--scan", "not-a-code"]);
    assert!(err.contains("does not match"), "{err}");
    let qr = b[0]["qr"].as_str().unwrap();
    let l = alice.ok(&["verify", bob.handle(), "--scan", qr]);
    assert_eq!(events(&l, "verified").len(), 1, "{l:?}");
    assert_eq!(alice.ok(&["verify", bob.handle()])[0]["verified"], true);

    // Devices: one each, this one marked.
    let l = alice.ok(&["devices"]);
    assert_eq!(events(&l, "device").len(), 1, "{l:?}");
    assert_eq!(l[0]["this_device"], true);

    // The saved session: logout forgets it.
    alice.ok(&["logout"]);
    assert!(alice.fails(&["groups"]).contains("not logged in"));
}

/// Without a delivery service the chat commands say how to give one; the human output of
/// `verify` shows a QR code.
#[test]
fn no_ds_is_explained_and_verify_draws_a_qr_code() {
    let dir = tempfile::tempdir().unwrap();
    let ds = start_ds(dir.path());
    let alice = Person::new("qra", dir.path(), &ds);
    let bob = Person::new("qrb", dir.path(), &ds);
    for p in [&alice, &bob] {
        p.login();
        p.ok(&["init"]);
    }
    let p = pds();
    let run = |args: &[&str], ds: Option<&str>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_atmls"));
        c.env("ATMLS_PASSPHRASE", PASSPHRASE);
        c.args(args)
            .env("ATMLS_STORE", &alice.store)
            .env("ATMLS_HANDLE_RESOLVER", &p.pds_url)
            .env("ATMLS_PLC_URL", &p.plc_url)
            .env_remove("ATMLS_DS_URL")
            .stdin(Stdio::null());
        if let Some(ds) = ds {
            c.env("ATMLS_DS_URL", ds);
        }
        c.output().unwrap()
    };
    let o = run(&["groups"], None);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--ds"),
        "{}",
        text(&o)
    );
    // No conversation yet: no safety number, and the way to get one.
    let o = run(&["verify", bob.handle()], Some(&ds));
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("atmls dm"),
        "{}",
        text(&o)
    );
    alice.ok(&["dm", bob.handle(), "hi"]);
    let o = run(&["verify", bob.handle()], Some(&ds));
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("safety number with"), "{out}");
    assert!(
        out.contains('▀') || out.contains('▄') || out.contains('█'),
        "{out}"
    );
}

/// `atmls <args>` as `p`, started in the background with stdout piped.
fn spawn(p: &Person, args: &[&str]) -> std::process::Child {
    let mut c = Command::new(env!("CARGO_BIN_EXE_atmls"));
    c.env("ATMLS_PASSPHRASE", PASSPHRASE);
    c.arg("--json")
        .args(args)
        .env("ATMLS_STORE", &p.store)
        .env("ATMLS_DS_URL", &p.ds)
        .env("ATMLS_HANDLE_RESOLVER", &pds().pds_url)
        .env("ATMLS_PLC_URL", &pds().plc_url)
        .env_remove("ATMLS_APP_PASSWORD")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c.spawn().unwrap()
}

/// An invite link redeemed while the group's owner watches; a second device linked with a
/// pairing code, added to the account's conversations, reading what arrives next.
#[test]
fn invite_redeemed_and_second_device_linked() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let ds = start_ds(dir.path());
    let alice = Person::new("inva", dir.path(), &ds);
    let bob = Person::new("invb", dir.path(), &ds);
    let carol = Person::new("invc", dir.path(), &ds);
    for p in [&alice, &bob, &carol] {
        p.login();
        p.ok(&["init"]);
    }

    // alice's group with bob; carol joins by the link while alice's device is online.
    let l = alice.ok(&["group", "create", "--name", "Book club", bob.handle()]);
    let g = events(&l, "group_created")[0]["group"]
        .as_str()
        .unwrap()
        .to_owned();
    // For bob, alice is a stranger: the group is a request until he accepts it.
    let l = bob.ok(&["groups"]);
    assert!(events(&l, "group").is_empty(), "{l:?}");
    assert_eq!(events(&l, "message_request").len(), 1, "{l:?}");
    bob.ok(&["accept", &g]);
    let l = alice.ok(&["invite", "create", &g, "--max-uses", "1"]);
    let link = events(&l, "invite")[0]["link"].as_str().unwrap().to_owned();
    let mut owner = spawn(&alice, &["watch", "--timeout", "90", "--poll", "1"]);
    let bad = carol.fails(&["invite", "redeem", "https://example.com/not-an-invite"]);
    assert!(bad.contains("not an atmls invite link"), "{bad}");
    let l = carol.ok(&["invite", "redeem", &link, "--wait", "60"]);
    owner.kill().unwrap();
    owner.wait().unwrap();
    assert_eq!(events(&l, "join")[0]["outcome"], "approved", "{l:?}");
    let l = carol.ok(&["groups"]);
    let joined: Vec<_> = events(&l, "group")
        .into_iter()
        .filter(|v| v["group"] == g.as_str())
        .collect();
    assert_eq!(joined.len(), 1, "{l:?}");
    assert_eq!(joined[0]["name"], "Book club");

    // bob's second device: logged in on its own store, it shows a code and waits.
    let bob2 = Person {
        account: bob.account.clone(),
        store: dir.path().join("bob2.db"),
        ds: ds.clone(),
    };
    bob2.login();
    let err = bob2.fails(&["groups"]);
    assert!(err.contains("atmls init"), "{err}");
    let mut pending = spawn(&bob2, &["link", "--wait", "90"]);
    let mut out = std::io::BufReader::new(pending.stdout.take().unwrap()).lines();
    let first: Value = serde_json::from_str(&out.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["event"], "link_code", "{first}");
    let code = first["code"].as_str().unwrap().to_owned();
    // A wrong code approves nothing.
    let err = bob.fails(&["link", "approve", "AAAA-AAAA-AAAA-AAAA", "--wait", "1"]);
    assert!(!err.is_empty());
    let l = bob.ok(&["link", "approve", &code, "--wait", "60"]);
    assert_eq!(events(&l, "link_approved")[0]["added"], true, "{l:?}");
    let rest: Vec<Value> = out
        .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
        .collect();
    assert!(pending.wait().unwrap().success());
    assert_eq!(rest.last().unwrap()["event"], "linked", "{rest:?}");
    let l = bob.ok(&["devices"]);
    assert_eq!(events(&l, "device").len(), 2, "{l:?}");
    // The new device is in the group, and reads what is sent next.
    alice.ok(&["send", &g, "chapter 3 tonight"]);
    let l = bob2.ok(&["watch", "--until-idle"]);
    assert!(
        events(&l, "message")
            .iter()
            .any(|m| m["text"] == "chapter 3 tonight"),
        "{l:?}"
    );
}

/// The stores' passphrase (the CLI's store is encrypted at rest, STORE-6).
const PASSPHRASE: &str = "chat test store passphrase";

/// A plain SQL connection to a CLI store, keyed as the CLI keys it (the test edits the saved
/// login's row).
fn open_store_sql(path: &std::path::Path) -> rusqlite::Connection {
    use atmls::storage::{KeyProvider, KeyPurpose, PassphraseKey};
    let key = PassphraseKey::new(PASSPHRASE, PassphraseKey::salt_file_for(path))
        .key(KeyPurpose::Open)
        .unwrap();
    let db = rusqlite::Connection::open(path).unwrap();
    db.execute_batch(&format!("PRAGMA key = \"x'{}'\";", hex::encode(&key[..])))
        .unwrap();
    db
}

/// The saved session: an expired access token is refreshed (and the new tokens saved) without
/// asking for the password; a refused refresh token says to log in again.
#[test]
fn saved_session_is_refreshed_when_expired_and_explained_when_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ds = start_ds(dir.path());
    let alice = Person::new("sesa", dir.path(), &ds);
    alice.login();
    alice.ok(&["init"]);
    let db = open_store_sql(&alice.store);
    let tokens = || -> (String, String) {
        db.query_row(
            "SELECT access_token, refresh_token FROM atmls_login",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
    };
    let (_, refresh) = tokens();
    // An access token that expired long ago (exp 1000).
    let expired = "eyJhbGciOiJub25lIn0.eyJleHAiOjEwMDB9.x";
    db.execute("UPDATE atmls_login SET access_token = ?1", [expired])
        .unwrap();
    alice.ok(&["groups"]);
    let (access2, refresh2) = tokens();
    assert_ne!(access2, expired);
    assert_ne!(refresh2, refresh, "the refreshed tokens are saved");
    // A refresh token the PDS refuses: log in again.
    db.execute(
        "UPDATE atmls_login SET access_token = ?1, refresh_token = 'revoked'",
        [expired],
    )
    .unwrap();
    let err = alice.fails(&["groups"]);
    assert!(
        err.contains("expired") && err.contains("atmls login"),
        "{err}"
    );
    alice.login();
    alice.ok(&["groups"]);
}
