//! `atmls verify` (safety numbers, with a QR code in the terminal), `devices` and `link`
//! (adding a device to the account with a pairing code).

use std::time::Duration;

use atmls::directory::pds::records;
use atmls::identity::PublicKey;
use atmls::trust::{PairingCode, PendingLink, TrustError};
use clap::{Args, Subcommand};
use qrcode::render::unicode::Dense1x2;
use qrcode::QrCode;
use serde_json::json;

use crate::ctx::{self, Ctx, Global, Login, Res};

/// Prints `payload` as a QR code of unicode half blocks (two rows of modules per line).
pub fn print_qr(payload: &str) -> Res<()> {
    let code = QrCode::new(payload.as_bytes()).map_err(|e| format!("QR code: {e}"))?;
    let image = code
        .render::<Dense1x2>()
        .dark_color(Dense1x2::Light)
        .light_color(Dense1x2::Dark)
        .quiet_zone(true)
        .build();
    println!("{image}");
    Ok(())
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// Their handle or DID.
    pub who: String,
    /// You compared the numbers (in person or on a call) and they match: mark verified.
    #[arg(long)]
    pub confirm: bool,
    /// The payload of their QR code, as scanned: checked, and marks verified if it matches.
    #[arg(long, conflicts_with = "confirm")]
    pub scan: Option<String>,
}

/// Shows the safety number with an account, or records that it was checked.
pub async fn verify(c: &Ctx, a: &VerifyArgs) -> Res<()> {
    let did = c.resolve(&a.who).await?;
    if let Some(scanned) = &a.scan {
        c.client
            .verify_safety_qr(&did, scanned.trim())
            .await
            .map_err(|e| format!("the scanned code does not match: {e} — do NOT trust this contact until you find out why"))?;
        return verified(c, &a.who, &did);
    }
    if a.confirm {
        c.client.mark_verified(&did).await?;
        return verified(c, &a.who, &did);
    }
    let number = c.client.safety_number(&did).await.map_err(|e| match e {
        atmls::Error::Trust(TrustError::UnknownContact(_)) => format!(
            "you have no conversation with {} yet: start one (`atmls dm {}`), then verify",
            a.who, a.who
        )
        .into(),
        e => Box::<dyn std::error::Error>::from(e),
    })?;
    let trust = c.client.contact_trust(&did).await?;
    c.out.emit(
        json!({"event": "safety_number", "did": did.as_str(), "digits": number.digits(),
               "qr": number.qr_payload(), "verified": trust.verified}),
        format!(
            "safety number with {} ({}):\n\n  {}\n\n{}",
            a.who,
            if trust.verified {
                "verified"
            } else {
                "not verified yet"
            },
            number
                .display_groups()
                .chunks(4)
                .map(|r| r.join(" "))
                .collect::<Vec<_>>()
                .join("\n  "),
            "compare it with theirs (or scan their code), then `atmls verify <handle> --confirm`"
        ),
    );
    if !c.out.json {
        print_qr(&number.qr_payload())?;
    }
    Ok(())
}

fn verified(c: &Ctx, who: &str, did: &atmls::identity::Did) -> Res<()> {
    c.out.emit(
        json!({"event": "verified", "did": did.as_str()}),
        format!("{who} is verified"),
    );
    Ok(())
}

#[derive(Args, Debug)]
pub struct DevicesArgs {
    /// Whose devices (default: yours).
    pub who: Option<String>,
    /// Add your devices that are missing from your conversations (e.g. one just linked).
    #[arg(long, conflicts_with = "who")]
    pub add: bool,
}

/// An account's valid devices, from its PDS.
pub async fn devices(c: &Ctx, a: &DevicesArgs) -> Res<()> {
    let did = match &a.who {
        Some(w) => c.resolve(w).await?,
        None => c.client.did().clone(),
    };
    if a.add {
        c.out
            .progress("adding your other devices to your conversations…");
        c.client.add_own_devices().await?;
    }
    let found = c.login.dir.lookup(&did).await?;
    let me = records::installation_id(c.client.installation());
    for d in &found.devices {
        let id = records::installation_id(&d.certificate.installation_key);
        let this = id == me;
        c.out.emit(
            json!({"event": "device", "did": did.as_str(), "device": id, "name": d.display_name,
                   "expires": d.certificate.expires, "this_device": this}),
            format!(
                "{id}  {}  valid until {}{}",
                d.display_name.as_deref().unwrap_or("-"),
                records::format_datetime(d.certificate.expires),
                if this { "  (this device)" } else { "" }
            ),
        );
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct LinkArgs {
    #[command(subcommand)]
    pub approve: Option<LinkCmd>,
    /// On the new device: seconds to wait for the approval.
    #[arg(long, default_value_t = 300)]
    pub wait: u64,
}

#[derive(Subcommand, Debug)]
pub enum LinkCmd {
    /// On a device already set up: approve the new device showing this code (or QR payload).
    Approve {
        /// The code shown by `atmls link` on the new device.
        code: String,
        /// Seconds to wait for the new device to publish its KeyPackages, to add it to
        /// your conversations.
        #[arg(long, default_value_t = 60)]
        wait: u64,
    },
}

/// `atmls link`: on a new device (logged in, not initialised), shows a code and waits for
/// another device of the account to approve it; `atmls link approve <code>` approves.
pub async fn link(g: &Global, a: &LinkArgs) -> Res<()> {
    match &a.approve {
        Some(LinkCmd::Approve { code, wait }) => {
            let c = Ctx::open(g).await?;
            approve(&c, code, *wait).await?;
            c.finish().await
        }
        None => link_new(g, a.wait).await,
    }
}

async fn link_new(g: &Global, wait: u64) -> Res<()> {
    let out = g.out();
    let login = Login::resume(g).await?;
    let transport = g.transport()?;
    match ctx::build(&login, &transport, crate::store::open(&g.store)?, None).await {
        Err(atmls::Error::NoIdentity) => {}
        Ok(_) => {
            return Err(
                "this device is already set up: link a new device from its own store (--store)"
                    .into(),
            )
        }
        Err(e) => return Err(e.into()),
    }
    let pending = PendingLink::start(&*transport, login.did.clone()).await?;
    let code = pending.code().display();
    out.emit(
        json!({"event": "link_code", "code": code, "qr": pending.code().qr_payload(&login.did)}),
        format!("on a device already set up, run:\n\n  atmls link approve {code}\n\n(or scan this code)"),
    );
    if !out.json {
        print_qr(&pending.code().qr_payload(&login.did))?;
    }
    out.progress("waiting for the approval…");
    let identity = pending
        .wait(
            &*transport,
            Duration::from_secs(2),
            Duration::from_secs(wait),
        )
        .await
        .map_err(|e| format!("not linked: {e} (run `atmls link` again for a new code)"))?;
    let client = ctx::build(
        &login,
        &transport,
        crate::store::open(&g.store)?,
        Some(identity),
    )
    .await?;
    out.emit(
        json!({"event": "linked", "did": client.did().as_str(), "device": records::installation_id(client.installation())}),
        "linked: your other device adds this one to your conversations",
    );
    login.save().await
}

async fn approve(c: &Ctx, code: &str, wait: u64) -> Res<()> {
    let code = match PairingCode::from_qr(code.trim()) {
        Ok((did, code)) if &did == c.client.did() => code,
        Ok((did, _)) => return Err(format!("that code links a device of {did}, not yours").into()),
        Err(_) => PairingCode::parse(code).map_err(|e| format!("not a pairing code: {e}"))?,
    };
    let key = c.client.approve_link(&code).await?;
    let id = records::installation_id(&key);
    c.out.progress(format!(
        "approved device {id}; waiting for it to publish its KeyPackages…"
    ));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
    while !has_key_packages(c, &key).await {
        if tokio::time::Instant::now() >= deadline {
            c.out.emit(
                json!({"event": "link_approved", "device": id, "added": false}),
                "approved; the new device is not running yet: once it runs, `atmls devices --add` adds it to your conversations",
            );
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    // The conversations joined since the last run too.
    crate::chat::sync(c).await?;
    c.client.add_own_devices().await?;
    c.out.emit(
        json!({"event": "link_approved", "device": id, "added": true}),
        format!("approved device {id} and added it to your conversations"),
    );
    Ok(())
}

async fn has_key_packages(c: &Ctx, key: &PublicKey) -> bool {
    match c.login.dir.lookup(c.client.did()).await {
        Ok(l) => l.key_packages.iter().any(|k| &k.installation_key == key),
        Err(_) => false,
    }
}
