//! `atmls pds …`: account commands against a real PDS (feature `pds`). The app password is
//! read from `ATMLS_APP_PASSWORD` or prompted for; it is never taken from the command line.
//! The device's store is encrypted at rest (spec/storage.md STORE-6 to STORE-9) under a
//! passphrase from `ATMLS_PASSPHRASE` or a prompt, through Argon2id; a plain store is
//! encrypted in place the first time.

use std::sync::Arc;

use atmls::directory::pds::{records, PdsDirectory};
use atmls::identity::DeviceIdentity;
use atmls::transport::MemoryTransport;
use atmls::Client;
use clap::{Args, Subcommand};

use crate::ctx::{Global, Res};
use crate::login::password;

/// `atmls pds …` (the global options say where to resolve identities and which store).
#[derive(Args)]
pub struct PdsArgs {
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

fn date(secs: u64) -> String {
    records::format_datetime(secs)
}

/// Logs in and opens this device's client, which publishes identity, device and KeyPackages.
async fn open(g: &Global, handle: &str, create: bool) -> Res<(Arc<PdsDirectory>, Client)> {
    let dir = Arc::new(g.directory());
    let existed = g.store.exists();
    // An existing store is opened first, so a wrong passphrase is said before any login; a
    // new one is made only once the login worked.
    let store = if existed {
        Some(crate::store::open(&g.store)?)
    } else {
        None
    };
    let did = dir.login(handle, &password()?).await?;
    if !existed && !create {
        return Err(format!(
            "no store at {}: run `atmls pds init` first",
            g.store.display()
        )
        .into());
    }
    let store = match store {
        Some(s) => s,
        None => crate::store::open(&g.store)?,
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
pub async fn run(g: &Global, a: PdsArgs) -> Res<()> {
    match &a.command {
        PdsCommand::Init { handle } | PdsCommand::Publish { handle } => {
            let create = matches!(a.command, PdsCommand::Init { .. });
            let (dir, client) = open(g, handle, create).await?;
            println!("did: {}", client.did());
            println!(
                "this device: {}",
                records::installation_id(client.installation())
            );
            show(&dir, client.did().as_str(), "show").await
        }
        PdsCommand::Show { who } => show(&g.directory(), who, "show").await,
        PdsCommand::Devices { who } => show(&g.directory(), who, "devices").await,
        PdsCommand::KeyPackages { who } => show(&g.directory(), who, "key-packages").await,
    }
}
