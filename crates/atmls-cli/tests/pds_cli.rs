//! The `atmls pds` commands against the real PDS: a person initialises their account's
//! identity and this device, shows it, publishes and lists KeyPackages, and lists another
//! account's devices and KeyPackages. The app password comes from the environment.
#![cfg(feature = "pds")]

#[path = "../../../tests/pds_support/mod.rs"]
mod pds_support;

use std::process::{Command, Output, Stdio};

use pds_support::*;

fn atmls(store: &std::path::Path, password: Option<&str>, args: &[&str]) -> Output {
    let p = pds();
    let mut c = Command::new(env!("CARGO_BIN_EXE_atmls"));
    c.arg("pds")
        .arg("--handle-resolver")
        .arg(&p.pds_url)
        .arg("--plc-url")
        .arg(&p.plc_url)
        .arg("--store")
        .arg(store)
        .args(args)
        .env_remove("ATMLS_APP_PASSWORD")
        // The store is encrypted at rest under this passphrase.
        .env("ATMLS_PASSPHRASE", "cli test store passphrase")
        .stdin(Stdio::null());
    if let Some(pw) = password {
        c.env("ATMLS_APP_PASSWORD", pw);
    }
    c.output().expect("run atmls")
}

fn ok(o: &Output) -> String {
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

#[test]
fn cli_init_show_publish_and_list_another_account() {
    let alice = create_account("clia");
    let bob = create_account("clib");
    let dir = tempfile::tempdir().unwrap();
    let (sa, sb) = (dir.path().join("alice.db"), dir.path().join("bob.db"));

    // No password in the environment and none typed: refused, nothing published.
    let o = atmls(&sa, None, &["init", "--handle", &alice.handle]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("app password"));
    assert!(list_raw(&alice.did, "dev.atmls.declaration").is_empty());
    // The password is not an argument.
    let o = atmls(
        &sa,
        None,
        &["init", "--handle", &alice.handle, "--password", "x"],
    );
    assert!(!o.status.success());

    let out = ok(&atmls(
        &sa,
        Some(&alice.app_password),
        &["init", "--handle", &alice.handle],
    ));
    assert!(out.contains(&format!("did: {}", alice.did)), "{out}");
    assert!(out.contains("devices: 1"), "{out}");
    assert!(out.contains("key packages: 6"), "{out}");
    let fingerprint = out
        .lines()
        .find_map(|l| l.strip_prefix("identity key fingerprint: "))
        .unwrap()
        .to_owned();

    // Anyone can show alice by handle, without a password.
    let out = ok(&atmls(&sb, None, &["show", &alice.handle]));
    assert!(out.contains(&fingerprint), "{out}");
    // Re-running publish keeps the same identity (restored from the store).
    let out = ok(&atmls(
        &sa,
        Some(&alice.app_password),
        &["publish", "--handle", &alice.handle],
    ));
    assert!(
        out.contains(&fingerprint) && out.contains("key packages: 6"),
        "{out}"
    );
    // publish without init is refused.
    let o = atmls(
        &sb,
        Some(&bob.app_password),
        &["publish", "--handle", &bob.handle],
    );
    assert!(!o.status.success());

    // Bob lists alice's devices and KeyPackages.
    let out = ok(&atmls(&sb, None, &["devices", alice.did.as_str()]));
    assert!(out.contains("devices: 1"), "{out}");
    let out = ok(&atmls(&sb, None, &["key-packages", &alice.handle]));
    assert_eq!(out.matches("single-use").count(), 5, "{out}");
    assert_eq!(out.matches("last-resort").count(), 1, "{out}");
}
