//! `atmls init`, `dm`, `send`, `watch`, `requests`, `accept`, `decline`, `block`, `unblock`:
//! conversations and consent on this device.

use std::time::Duration;

use atmls::directory::pds::{records, PdsError};
use atmls::identity::DeviceIdentity;
use atmls::{Event, GroupId};
use clap::Args;
use serde_json::json;

use crate::ctx::{self, Ctx, Global, Login, Res};
use crate::out::{self, kind_name, message_json, message_line, print_event, short};

#[derive(Args, Debug)]
pub struct InitArgs {
    /// Create a new messaging identity even though the account already has one (published
    /// by another device, now lost): contacts will see an unendorsed key change.
    #[arg(long)]
    pub new_identity: bool,
}

/// Creates this device's identity (a new messaging identity for the account) and publishes
/// it, or says it is there already.
pub async fn init(g: &Global, a: &InitArgs) -> Res<()> {
    let out = g.out();
    let login = Login::resume(g).await?;
    let transport = g.transport()?;
    let existing = ctx::build(&login, &transport, crate::store::open(&g.store)?, None).await;
    let (client, created) = match existing {
        Ok(c) => (c, false),
        Err(atmls::Error::NoIdentity) => {
            refuse_second_identity(&login, a.new_identity).await?;
            out.progress("creating this device's identity and publishing it and its KeyPackages…");
            let identity = DeviceIdentity::new_account(login.did.clone());
            let c = ctx::build(
                &login,
                &transport,
                crate::store::open(&g.store)?,
                Some(identity),
            )
            .await?;
            (c, true)
        }
        Err(e) => return Err(e.into()),
    };
    ctx::check_account(&client, &login)?;
    let device = records::installation_id(client.installation());
    out.emit(
        json!({"event": "initialised", "did": client.did().as_str(), "handle": login.handle,
               "device": device, "created": created}),
        format!(
            "{} {} ({})\nthis device: {device}",
            if created { "ready:" } else { "already set up:" },
            login.handle,
            client.did()
        ),
    );
    login.save().await
}

/// An account whose identity another device published links this device instead.
async fn refuse_second_identity(login: &Login, force: bool) -> Res<()> {
    match login.dir.lookup(&login.did).await {
        Err(PdsError::NoIdentity(_)) => Ok(()),
        Ok(_) if force => Ok(()),
        Ok(_) => Err(format!(
            "{} already has a messaging identity (set up on another device): link this device \
             with `atmls link` (and `atmls link approve <code>` on the other one), or pass \
             --new-identity if that device is lost",
            login.handle
        )
        .into()),
        // A declaration that does not check is replaced, as a new account's would be.
        Err(PdsError::Declaration { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Syncs, printing what arrived (stderr for people, stdout lines with `--json`).
/// A sync that takes long (a first sync, a large group joined) says so on stderr.
pub async fn sync(c: &Ctx) -> Res<Vec<Event>> {
    let work = c.client.sync();
    tokio::pin!(work);
    let events = tokio::select! {
        r = &mut work => r?,
        _ = tokio::time::sleep(Duration::from_secs(2)) => {
            c.out.progress("syncing (catching up with your conversations)…");
            work.await?
        }
    };
    for e in &events {
        if let Some((v, line)) = out::event(e) {
            if c.out.json {
                println!("{v}");
            } else {
                eprintln!("{line}");
            }
        }
    }
    Ok(events)
}

/// A group named on the command line: its id, an unambiguous prefix of it, or the handle or
/// DID of a DM's peer (or of whoever sent a message request).
pub async fn find_group(c: &Ctx, name: &str) -> Res<GroupId> {
    if let Some(id) = GroupId::from_hex(name) {
        return Ok(id);
    }
    let groups = c.client.groups().await?;
    let requests = c.client.requests().await?;
    let ids = groups
        .iter()
        .map(|g| g.id.clone())
        .chain(requests.iter().map(|r| r.group.id.clone()));
    let lower = name.to_ascii_lowercase();
    if lower.len() >= 4 && lower.bytes().all(|b| b.is_ascii_hexdigit()) {
        let found: Vec<GroupId> = ids.filter(|i| i.to_string().starts_with(&lower)).collect();
        match found.as_slice() {
            [one] => return Ok(one.clone()),
            [] => {}
            _ => return Err(format!("{name} names several conversations: give more of it").into()),
        }
    }
    let did = c.resolve(name).await.map_err(|_| no_group(name))?;
    let dm = groups.iter().find(|g| g.dm_peer.as_ref() == Some(&did));
    let request = requests.iter().find(|r| r.by == did);
    match (dm, request) {
        (Some(g), _) => Ok(g.id.clone()),
        (None, Some(r)) => Ok(r.group.id.clone()),
        (None, None) => {
            Err(format!("no conversation with {name}: start one with `atmls dm {name}`").into())
        }
    }
}

fn no_group(name: &str) -> Box<dyn std::error::Error> {
    format!("no conversation {name}: `atmls groups` lists them (`atmls requests`: the requests)")
        .into()
}

#[derive(Args, Debug)]
pub struct DmArgs {
    /// Their handle or DID.
    pub who: String,
    /// A message to send (else the conversation's recent messages are shown).
    pub text: Option<String>,
}

/// Opens (creating if needed) the DM with an account, and sends or shows.
pub async fn dm(c: &Ctx, a: &DmArgs) -> Res<()> {
    let did = c.resolve(&a.who).await?;
    if &did == c.client.did() {
        return Err("that is you: DM another account".into());
    }
    sync(c).await?;
    c.out
        .progress(format!("opening the conversation with {}…", a.who));
    let group = c.client.dm(&did).await.map_err(|e| match e {
        atmls::Error::Directory(atmls::directory::DirectoryError::NoIdentity(_)) => format!(
            "{} has not set up atmls yet (no messaging identity on their PDS)",
            a.who
        )
        .into(),
        e => Box::<dyn std::error::Error>::from(e),
    })?;
    c.out.emit(
        json!({"event": "dm", "group": group.to_string(), "peer": did.as_str()}),
        format!("[{}] DM with {}", short(&group), a.who),
    );
    match &a.text {
        Some(text) => send_in(c, &group, text).await,
        None => show_recent(c, &group, 20).await,
    }
}

async fn send_in(c: &Ctx, group: &GroupId, text: &str) -> Res<()> {
    let m = c
        .client
        .conversation(group)
        .send_text(text)
        .await
        .map_err(|e| match e {
            atmls::Error::NotAccepted => format!(
                "this conversation is a message request: `atmls accept {}` first",
                short(group)
            )
            .into(),
            e => Box::<dyn std::error::Error>::from(e),
        })?;
    let mut v = message_json(&m);
    v["event"] = json!("sent");
    c.out.emit(v, message_line(&m));
    Ok(())
}

async fn show_recent(c: &Ctx, group: &GroupId, n: usize) -> Res<()> {
    let all = c.client.conversation(group).messages().await?;
    for m in all.iter().skip(all.len().saturating_sub(n)) {
        c.out.emit(message_json(m), message_line(m));
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct SendArgs {
    /// The conversation: group id (or a prefix), or a DM peer's handle.
    pub group: String,
    /// The message.
    pub text: String,
}

pub async fn send(c: &Ctx, a: &SendArgs) -> Res<()> {
    sync(c).await?;
    let group = find_group(c, &a.group).await?;
    send_in(c, &group, &a.text).await
}

#[derive(Args, Debug)]
pub struct ShowArgs {
    /// The conversation: group id (or a prefix), or a DM peer's handle.
    pub group: String,
    /// How many of the latest messages.
    #[arg(long, default_value_t = 20)]
    pub last: usize,
}

/// `atmls show <group>`: the latest messages of a conversation.
pub async fn show(c: &Ctx, a: &ShowArgs) -> Res<()> {
    sync(c).await?;
    let group = find_group(c, &a.group).await?;
    show_recent(c, &group, a.last).await
}

#[derive(Args, Debug)]
pub struct WatchArgs {
    /// Stop once a sync brings nothing new (for scripts and tests).
    #[arg(long)]
    pub until_idle: bool,
    /// Stop after this many events were shown.
    #[arg(long)]
    pub count: Option<usize>,
    /// Stop after this many seconds.
    #[arg(long)]
    pub timeout: Option<u64>,
    /// Check the delivery service at least this often (seconds) when it sends no signal.
    #[arg(long, default_value_t = 10)]
    pub poll: u64,
}

/// A live stream of events until Ctrl-C (or `--until-idle`, `--count`, `--timeout`).
pub async fn watch(c: &Ctx, a: &WatchArgs) -> Res<()> {
    if a.until_idle {
        loop {
            let events = c.client.sync().await?;
            if events.is_empty() {
                return Ok(());
            }
            events.iter().for_each(|e| print_event(&c.out, e));
        }
    }
    c.out.progress("watching for messages (Ctrl-C to stop)…");
    let mut events = c.client.watch(Duration::from_secs(a.poll.max(1)));
    let deadline = a
        .timeout
        .map(|s| tokio::time::Instant::now() + Duration::from_secs(s));
    let mut shown = 0usize;
    loop {
        let next = tokio::select! {
            e = events.recv() => e,
            _ = tokio::signal::ctrl_c() => return Ok(()),
            _ = sleep_until(deadline) => return Ok(()),
        };
        match next {
            None => return Ok(()),
            Some(Err(e)) if e.is_retryable() => c.out.progress(format!("(retrying: {e})")),
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(e)) => {
                if out::event(&e).is_some() {
                    print_event(&c.out, &e);
                    shown += 1;
                }
            }
        }
        if a.count.is_some_and(|n| shown >= n) {
            return Ok(());
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// The message requests waiting for a decision.
pub async fn requests(c: &Ctx) -> Res<()> {
    sync(c).await?;
    let list = c.client.requests().await?;
    if list.is_empty() && !c.out.json {
        println!("no message requests");
    }
    for r in list {
        let count = c.client.conversation(&r.group.id).messages().await?.len();
        c.out.emit(
            json!({"event": "request", "group": r.group.id.to_string(), "kind": kind_name(r.group.kind),
                   "by": r.by.as_str(), "since": r.since, "messages": count}),
            format!(
                "[{}] {} from {} ({count} message(s)): `atmls accept {}` or `atmls decline {}`",
                short(&r.group.id),
                kind_name(r.group.kind),
                r.by,
                short(&r.group.id),
                short(&r.group.id)
            ),
        );
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct GroupRef {
    /// The conversation: group id (or a prefix), or the handle of whoever started it.
    pub group: String,
}

/// Accepts a message request and shows its messages.
pub async fn accept(c: &Ctx, a: &GroupRef) -> Res<()> {
    sync(c).await?;
    let group = find_group(c, &a.group).await?;
    c.client.conversation(&group).accept().await?;
    c.out.emit(
        json!({"event": "accepted", "group": group.to_string()}),
        format!("[{}] accepted", short(&group)),
    );
    show_recent(c, &group, 20).await
}

/// Declines a message request (leaves the conversation).
pub async fn decline(c: &Ctx, a: &GroupRef) -> Res<()> {
    sync(c).await?;
    let group = find_group(c, &a.group).await?;
    c.client.conversation(&group).decline().await?;
    c.out.emit(
        json!({"event": "declined", "group": group.to_string()}),
        format!("[{}] declined", short(&group)),
    );
    Ok(())
}

#[derive(Args, Debug)]
pub struct WhoArgs {
    /// Their handle or DID.
    pub who: String,
}

/// Blocks (or unblocks) an account.
pub async fn block(c: &Ctx, a: &WhoArgs, on: bool) -> Res<()> {
    let did = c.resolve(&a.who).await?;
    if on {
        c.client.block(&did).await?;
    } else {
        c.client.unblock(&did).await?;
    }
    let word = if on { "blocked" } else { "unblocked" };
    c.out.emit(
        json!({"event": word, "did": did.as_str()}),
        format!("{word} {} ({did})", a.who),
    );
    Ok(())
}

/// Lists blocked accounts.
pub async fn blocked(c: &Ctx) -> Res<()> {
    for did in c.client.blocked().await? {
        c.out.emit(
            json!({"event": "blocked_account", "did": did.as_str()}),
            did.as_str(),
        );
    }
    Ok(())
}
