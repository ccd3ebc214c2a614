//! `atmls pds …`: account commands against a real PDS (feature `pds`). The app password is
//! read from `ATMLS_APP_PASSWORD` or prompted for; it is never taken from the command line.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::Arc;

use atmls::directory::pds::{records, PdsConfig, PdsDirectory};
use atmls::identity::DeviceIdentity;
use atmls::storage::Store;
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
    /// This device's SQLite store.
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

fn password() -> Res<String> {
    if let Ok(p) = std::env::var("ATMLS_APP_PASSWORD") {
        return Ok(p);
    }
    eprint!("app password: ");
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let p = line.trim_end_matches(['\r', '\n']).to_owned();
    if p.is_empty() {
        return Err("no app password (set ATMLS_APP_PASSWORD or type it)".into());
    }
    Ok(p)
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
    let did = dir.login(handle, &password()?).await?;
    let existed = a.store.exists();
    if !existed && !create {
        return Err(format!(
            "no store at {}: run `atmls pds init` first",
            a.store.display()
        )
        .into());
    }
    let mut b = Client::builder(
        dir.clone(),
        Arc::new(MemoryTransport::new()),
        Store::open(&a.store)?,
    );
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
