//! A real PDS for the tests: `scripts/pds/pds-local.js` (the reference `@atproto/pds` with an
//! in-memory `@did-plc/server`, both on 127.0.0.1, free ports) started once per test binary,
//! accounts on it, raw XRPC for playing an attacker, and the `@atproto/lexicon` validator.
//! The PDS stops when the test binary exits: it watches its stdin, which closes then.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use atmls::directory::pds::{PdsConfig, PdsDirectory};

pub mod browser;
use atmls::identity::Did;
use serde_json::{json, Value};

/// The workspace root, where scripts/ is: this module is also built by the CLI crate's tests
/// (crates/atmls-cli), whose manifest is two levels down.
fn root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    match manifest
        .ancestors()
        .find(|d| d.join("scripts/pds").is_dir())
    {
        Some(root) => root.to_path_buf(),
        None => manifest,
    }
}

pub struct LocalPds {
    pub pds_url: String,
    pub plc_url: String,
    pub started_ms: u128,
    _child: Mutex<Child>,
    _stdin: Mutex<ChildStdin>,
}

static PDS: OnceLock<LocalPds> = OnceLock::new();
static NEXT: AtomicUsize = AtomicUsize::new(0);

/// The PDS of this test binary (started on first use). Fails, never skips, when the PDS is
/// not installed: `scripts/test.sh` installs it.
pub fn pds() -> &'static LocalPds {
    PDS.get_or_init(|| {
        let dir = root().join("scripts/pds");
        assert!(
            dir.join("node_modules/@atproto/pds").is_dir(),
            "the local PDS is not installed: run scripts/pds/install.sh (scripts/test.sh does)"
        );
        let t = Instant::now();
        let mut child = Command::new("node")
            .arg("pds-local.js")
            .current_dir(&dir)
            .env("PLC_PORT", "0")
            .env("PDS_PORT", "0")
            .env("NET_GUARD", "block")
            .env("EXIT_ON_STDIN_EOF", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn node scripts/pds/pds-local.js");
        let stdin = child.stdin.take().expect("stdin");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let line = lines
            .next()
            .expect("the PDS exited before it was ready")
            .expect("read");
        let ready: Value = serde_json::from_str(&line).expect("ready line");
        std::thread::spawn(move || for _ in lines {});
        let started_ms = t.elapsed().as_millis();
        eprintln!("local PDS ready in {started_ms} ms: {line}");
        LocalPds {
            pds_url: ready["pdsUrl"].as_str().expect("pdsUrl").to_owned(),
            plc_url: ready["plcUrl"].as_str().expect("plcUrl").to_owned(),
            started_ms,
            _child: Mutex::new(child),
            _stdin: Mutex::new(stdin),
        }
    })
}

/// Minimal HTTP/1.0 client for the test's own raw XRPC calls (attacker writes, set-up).
pub fn http(method: &str, url: &str, token: Option<&str>, body: Option<&Value>) -> (u16, Value) {
    let rest = url.strip_prefix("http://").expect("http url");
    let (hostport, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut s = TcpStream::connect(hostport).expect("connect");
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: {hostport}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    let status: u16 = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status");
    let json = out
        .split_once("\r\n\r\n")
        .and_then(|(_, b)| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    (status, json)
}

#[derive(Clone)]
pub struct Account {
    pub handle: String,
    pub did: Did,
    pub access: String,
    pub app_password: String,
}

/// A new account on the local PDS (unique handle under `.test`) with an app password.
pub fn create_account(name: &str) -> Account {
    let p = pds();
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    let handle = format!("{name}{}x{n}.test", std::process::id() % 10_000);
    let (st, out) = http(
        "POST",
        &format!("{}/xrpc/com.atproto.server.createAccount", p.pds_url),
        None,
        Some(&json!({
            "handle": handle,
            "email": format!("{}@example.invalid", handle),
            "password": "main-password-not-used-by-atmls",
        })),
    );
    assert_eq!(st, 200, "createAccount: {out}");
    let access = out["accessJwt"].as_str().unwrap().to_owned();
    let (st, app) = http(
        "POST",
        &format!("{}/xrpc/com.atproto.server.createAppPassword", p.pds_url),
        Some(&access),
        Some(&json!({ "name": "atmls" })),
    );
    assert_eq!(st, 200, "createAppPassword: {app}");
    Account {
        did: Did::new(out["did"].as_str().unwrap()).unwrap(),
        handle,
        access,
        app_password: app["password"].as_str().unwrap().to_owned(),
    }
}

/// The directory configuration for the local network.
pub fn config() -> PdsConfig {
    let p = pds();
    let mut c = PdsConfig::new();
    // The local PDS's `.test` handles have no DNS: the PDS itself resolves them (REC-6).
    c.handle_resolver = Some(p.pds_url.clone());
    c.plc_url = p.plc_url.clone();
    c.did_web_scheme = "http".into();
    // The test did:web hosts run on 127.0.0.1.
    c.allow_private_did_web = true;
    c
}

/// A directory logged in as `a`.
pub async fn directory_for(a: &Account) -> PdsDirectory {
    let d = PdsDirectory::new(config());
    let did = d.login(&a.handle, &a.app_password).await.expect("login");
    assert_eq!(did, a.did);
    d
}

/// Raw records of a collection in `did`'s repository, as (rkey, value).
pub fn list_raw(did: &Did, collection: &str) -> Vec<(String, Value)> {
    let (st, out) = http(
        "GET",
        &format!(
            "{}/xrpc/com.atproto.repo.listRecords?repo={did}&collection={collection}&limit=100",
            pds().pds_url
        ),
        None,
        None,
    );
    assert_eq!(st, 200, "{out}");
    out["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let uri = r["uri"].as_str().unwrap();
            (
                uri.rsplit('/').next().unwrap().to_owned(),
                r["value"].clone(),
            )
        })
        .collect()
}

/// Writes any JSON as a record into `a`'s repository (what an attacker with the password can do).
pub fn put_raw(a: &Account, collection: &str, rkey: Option<&str>, record: &Value) -> String {
    let (nsid, body) = match rkey {
        Some(k) => (
            "putRecord",
            json!({"repo": a.did.as_str(), "collection": collection, "rkey": k, "record": record}),
        ),
        None => (
            "createRecord",
            json!({"repo": a.did.as_str(), "collection": collection, "record": record}),
        ),
    };
    let (st, out) = http(
        "POST",
        &format!("{}/xrpc/com.atproto.repo.{nsid}", pds().pds_url),
        Some(&a.access),
        Some(&body),
    );
    assert_eq!(st, 200, "{nsid}: {out}");
    out["uri"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned()
}

/// Runs the official `@atproto/lexicon` validator (scripts/lexicon/validate.js) on every
/// lexicon file and on `records` (collection, record). Panics if a lexicon is invalid.
pub fn validate(records: &[(&str, Value)]) -> Vec<Result<(), String>> {
    validate_in(&root().join("lexicons"), records).expect("lexicons are valid")
}

/// Like [`validate`] on another lexicon directory; `Err` carries the validator's complaint.
pub fn validate_in(
    dir: &std::path::Path,
    records: &[(&str, Value)],
) -> Result<Vec<Result<(), String>>, String> {
    let script = root().join("scripts/lexicon/validate.js");
    assert!(
        root().join("scripts/lexicon/node_modules/@atproto/lexicon").is_dir(),
        "the lexicon validator is not installed: run scripts/lexicon/install.sh (scripts/test.sh does)"
    );
    let input: Vec<Value> = records
        .iter()
        .map(|(c, r)| json!({"collection": c, "record": r}))
        .collect();
    let mut child = Command::new("node")
        .arg(script)
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn node validate.js");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(Value::Array(input).to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let v: Value = serde_json::from_slice(&out.stdout).expect("validator output");
    Ok(v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            if r["ok"] == true {
                Ok(())
            } else {
                Err(r["error"].as_str().unwrap_or_default().to_owned())
            }
        })
        .collect())
}
