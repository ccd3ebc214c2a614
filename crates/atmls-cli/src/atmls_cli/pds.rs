//! `atmls pds …`: account commands against a real PDS (feature `pds`). The app password is
//! read from `ATMLS_APP_PASSWORD` or prompted for; it is never taken from the command line.
//! The device's store is encrypted at rest (spec/storage.md STORE-6 to STORE-9) under a
//! passphrase from `ATMLS_PASSPHRASE` or a prompt, through Argon2id; a plain store is
//! encrypted in place the first time.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::Arc;

use atmls::directory::pds::{records, PdsConfig, PdsDirectory};
use atmls::identity::DeviceIdentity;
use atmls::storage::{KeyProviderError, PassphraseKey, StorageError, Store};
use atmls::transport::MemoryTransport;
use atmls::Client;
use clap::{Args, Subcommand};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// Where to resolve identities, and which local store is this device.
#[derive(Args)]
pub struct PdsArgs {
    /// XRPC service trusted to resolve handles (com.atproto.identity.resolveHandle) instead
    /// of DNS and HTTPS (the default, as the ATProto handle spec says); e.g. a local PDS.
    #[arg(long, env = "ATMLS_HANDLE_RESOLVER")]
    handle_resolver: Option<String>,
    /// PLC directory for did:plc documents.
    #[arg(long, env = "ATMLS_PLC_URL", default_value = "https://plc.directory")]
    plc_url: String,
    /// Fetch did:web documents over plain http (local testing only).
    #[arg(long, env = "ATMLS_DID_WEB_HTTP")]
    did_web_http: bool,
    /// This device's SQLite store, encrypted under a passphrase (ATMLS_PASSPHRASE, or typed);
    /// its Argon2id salt is kept beside it in `<store>.kdf`: back up both.
    #[arg(long, env = "ATMLS_STORE", default_value = "atmls.db")]
    store: PathBuf,
    #[command(subcommand)]
    command: PdsCommand,
}

#[derive(Subcommand)]
enum PdsCommand {
    /// Create this device's identity (a new messaging identity key for the account) if the
    /// store is new, and publish the declaration, the device and KeyPackages.
    Init {
        /// Your handle or DID (or ATMLS_HANDLE).
        #[arg(long, env = "ATMLS_HANDLE")]
        handle: String,
    },
    /// Top up this device's published KeyPackages (and republish its identity).
    Publish {
        /// Your handle or DID (or ATMLS_HANDLE).
        #[arg(long, env = "ATMLS_HANDLE")]
        handle: String,
    },
    /// Show an account's messaging identity: DID, identity-key fingerprint, devices.
    Show {
        /// Handle or DID.
        who: String,
    },
    /// List an account's valid devices.
    Devices {
        /// Handle or DID.
        who: String,
    },
    /// List an account's KeyPackages (and the records refused, with the reason).
    KeyPackages {
        /// Handle or DID.
        who: String,
    },
}

/// A secret from the environment variable `var`, or typed on stdin after `prompt`.
fn secret(var: &str, prompt: &str) -> Res<Option<String>> {
    if let Ok(p) = std::env::var(var) {
        return Ok(Some(p));
    }
    eprint!("{prompt}: ");
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let p = line.trim_end_matches(['\r', '\n']).to_owned();
    Ok((!p.is_empty()).then_some(p))
}

fn password() -> Res<String> {
    secret("ATMLS_APP_PASSWORD", "app password")?
        .ok_or_else(|| "no app password (set ATMLS_APP_PASSWORD or type it)".into())
}

/// Opens the device's store encrypted under the passphrase (a plain one is encrypted in
/// place), with errors that say what to do.
fn open_store(path: &std::path::Path) -> Res<Store> {
    let pass = secret("ATMLS_PASSPHRASE", "store passphrase")?.ok_or(
        "no passphrase for the store (set ATMLS_PASSPHRASE or type it): it is encrypted at rest",
    )?;
    let salt = PassphraseKey::salt_file_for(path);
    if is_plain_sqlite(path) {
        eprintln!("encrypting the plain store {} in place", path.display());
    }
    Store::open_encrypted(path, &PassphraseKey::new(&pass, &salt)).map_err(|e| match e {
        StorageError::WrongKey => format!(
            "wrong passphrase for the store {}, or it is not an atmls store: check \
             ATMLS_PASSPHRASE (or what you typed) and try again",
            path.display()
        )
        .into(),
        StorageError::Key(KeyProviderError::Missing(_)) => format!(
            "the store {} is encrypted but its salt file {} is missing: restore it from your \
             backup (without it the store cannot be opened)",
            path.display(),
            salt.display()
        )
        .into(),
        e => e.into(),
    })
}

/// Whether the file at `path` is a plain SQLite database (by its header).
fn is_plain_sqlite(path: &std::path::Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 16];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| &head == b"SQLite format 3\0")
}

fn directory(a: &PdsArgs) -> PdsDirectory {
    let mut c = PdsConfig::new();
    c.handle_resolver = a.handle_resolver.clone();
    c.plc_url = a.plc_url.clone();
    if a.did_web_http {
        // Development against local hosts.
        c.did_web_scheme = "http".into();
        c.allow_private_did_web = true;
    }
    PdsDirectory::new(c)
}

fn date(secs: u64) -> String {
    records::format_datetime(secs)
}

/// Logs in and opens this device's client, which publishes identity, device and KeyPackages.
async fn open(a: &PdsArgs, handle: &str, create: bool) -> Res<(Arc<PdsDirectory>, Client)> {
    let dir = Arc::new(directory(a));
    let existed = a.store.exists();
    if !existed && !create {
        return Err(format!(
            "no store at {}: run `atmls pds init` first",
            a.store.display()
        )
        .into());
    }
    // An existing store is opened first, so a wrong passphrase is said before any login; a
    // new one is made only once the login worked.
    let store = if existed {
        Some(open_store(&a.store)?)
    } else {
        None
    };
    let did = dir.login(handle, &password()?).await?;
    let store = match store {
        Some(s) => s,
        None => open_store(&a.store)?,
    };
    let mut b = Client::builder(dir.clone(), Arc::new(MemoryTransport::new()), store);
    if !existed {
        b = b.identity(DeviceIdentity::new_account(did));
    }
    Ok((dir, b.build().await?))
}

async fn show(dir: &PdsDirectory, who: &str, what: &str) -> Res<()> {
    let did = dir.resolve(who).await?;
    let l = dir.lookup(&did).await?;
    if what == "show" {
        println!("did: {did}");
        println!("pds: {}", l.pds);
        println!(
            "identity key fingerprint: {}",
            l.account.identity_key.fingerprint()
        );
        println!("ciphersuites: {:?}", l.declaration.profile.ciphersuites);
        println!(
            "incoming policy: {}",
            l.declaration.profile.incoming_policy.as_str()
        );
    }
    if what != "key-packages" {
        println!("devices: {}", l.devices.len());
        for d in &l.devices {
            let c = &d.certificate;
            println!(
                "  {}  {}  valid until {}",
                records::installation_id(&c.installation_key),
                d.display_name.as_deref().unwrap_or("-"),
                date(c.expires)
            );
        }
    }
    if what != "devices" {
        println!("key packages: {}", l.key_packages.len());
        if what == "key-packages" {
            for k in &l.key_packages {
                println!(
                    "  {}  device {}  {}  expires {}",
                    hex_short(&k.key_package_ref),
                    &records::installation_id(&k.installation_key)[..16],
                    if k.last_resort {
                        "last-resort"
                    } else {
                        "single-use"
                    },
                    date(k.expires)
                );
            }
        }
    }
    for r in &l.rejected {
        println!("refused {} {}: {}", r.collection, r.rkey, r.error);
    }
    Ok(())
}

fn hex_short(b: &[u8]) -> String {
    b.iter().take(8).map(|x| format!("{x:02x}")).collect()
}

/// Runs an `atmls pds` command.
pub async fn run(a: PdsArgs) -> Res<()> {
    match &a.command {
        PdsCommand::Init { handle } | PdsCommand::Publish { handle } => {
            let create = matches!(a.command, PdsCommand::Init { .. });
            let (dir, client) = open(&a, handle, create).await?;
            println!("did: {}", client.did());
            println!(
                "this device: {}",
                records::installation_id(client.installation())
            );
            show(&dir, client.did().as_str(), "show").await
        }
        PdsCommand::Show { who } => show(&directory(&a), who, "show").await,
        PdsCommand::Devices { who } => show(&directory(&a), who, "devices").await,
        PdsCommand::KeyPackages { who } => show(&directory(&a), who, "key-packages").await,
    }
}
