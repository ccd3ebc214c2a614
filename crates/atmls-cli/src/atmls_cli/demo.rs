//! `atmls demo`: the walking-skeleton scenario on embedded defaults (in-memory directory,
//! in-process transport unless `--ds`, SQLite stores in a temp dir).

use std::path::Path;
use std::sync::Arc;

use atmls::blob::FsBlobStore;
use atmls::content::{Content, EncodedContent};
use atmls::directory::MemoryDirectory;
use atmls::identity::{unix_now, DeviceIdentity, Did, IdentityKeyPair, InstallationKeyPair};
use atmls::storage::Store;
use atmls::transport::{MemoryTransport, Transport};
use atmls::{Client, Event, GroupId};

use crate::opts::{Global, Res};

struct Env {
    dir: Arc<MemoryDirectory>,
    net: Arc<dyn Transport>,
    blobs: Arc<FsBlobStore>,
}

impl Env {
    async fn open(&self, path: &Path, identity: Option<DeviceIdentity>) -> Res<Client> {
        let mut b = Client::builder(self.dir.clone(), self.net.clone(), Store::open(path)?)
            .blob_store(self.blobs.clone());
        if let Some(i) = identity {
            b = b.identity(i);
        }
        Ok(b.build().await?)
    }
}

fn short(g: &GroupId) -> String {
    g.to_string()[..8].to_owned()
}

fn print_message(name: &str, m: &atmls::Message) {
    println!(
        "  [{name}] {} <{}> {}",
        short(&m.group),
        m.sender.did,
        m.decoded()
            .summary()
            .unwrap_or_else(|| format!("({})", m.content.type_id))
    );
}

async fn show(name: &str, c: &Client) -> Res<()> {
    for e in c.sync().await? {
        match e {
            Event::Joined { group, kind, by } => println!(
                "  [{name}] joined {kind:?} {} (added by {by})",
                short(&group)
            ),
            Event::MessageRequest { group, kind, by } => {
                // The demo's accounts accept each other's requests; an app asks the user.
                println!(
                    "  [{name}] message request: {kind:?} {} from {by}; accepted",
                    short(&group)
                );
                let conversation = c.conversation(&group);
                conversation.accept().await?;
                for m in conversation.messages().await? {
                    print_message(name, &m);
                }
            }
            Event::Declined { group, by, reason } => {
                println!("  [{name}] left {} from {by}: {reason:?}", short(&group))
            }
            Event::Message(m) => print_message(name, &m),
            Event::ContentRejected { message, error } => {
                println!(
                    "  [{name}] ignored {} from {}: {error}",
                    message.content.type_id, message.sender.did
                )
            }
            Event::DisappearingChanged { by, secs, .. } => match secs {
                Some(s) => println!("  [{name}] {by} set disappearing messages to {s} s"),
                None => println!("  [{name}] {by} turned disappearing messages off"),
            },
            Event::MembersAdded { members, by, .. } => {
                println!("  [{name}] {by} added {} device(s)", members.len())
            }
            Event::MembersRemoved { members, by, .. } => {
                println!("  [{name}] {by} removed {} device(s)", members.len())
            }
            Event::Removed { group, by } => {
                println!("  [{name}] removed from {} by {by}", short(&group))
            }
            Event::LeaveRequested { did, .. } => println!("  [{name}] {did} asked to leave"),
            Event::Refused { error, .. } => println!("  [{name}] refused a message: {error}"),
            Event::GovernanceChanged { by, change, .. } => {
                println!("  [{name}] {by} {}", change.description())
            }
            Event::JoinRequested { request, .. } => {
                println!("  [{name}] {} asks to join", request.did)
            }
            Event::PostDropped { message, error } => {
                println!(
                    "  [{name}] dropped a post from {}: {error}",
                    message.sender.did
                )
            }
            other => println!("  [{name}] {other:?}"),
        }
    }
    Ok(())
}

fn transport(g: &Global) -> Res<Arc<dyn Transport>> {
    match g.ds.as_deref() {
        None => Ok(Arc::new(MemoryTransport::new())),
        Some(url) => {
            println!("== through atmls-ds at {url}");
            g.transport()
        }
    }
}

/// Runs the demo (through `--ds` if given).
pub async fn demo(g: &Global) -> Res<()> {
    let tmp = tempfile::tempdir()?;
    let env = Env {
        dir: Arc::new(MemoryDirectory::new()),
        net: transport(g)?,
        blobs: Arc::new(FsBlobStore::new(tmp.path().join("blobs"))?),
    };
    let did = |s: &str| -> Res<Did> { Ok(s.parse()?) };
    println!("== accounts (state in {})", tmp.path().display());
    let alice_id = DeviceIdentity::new_account(did("did:plc:alicealicealicealicealic")?);
    let alice_key = IdentityKeyPair::from_secret_bytes(
        &alice_id
            .identity_key
            .as_ref()
            .ok_or("no key")?
            .secret_bytes()[..],
    )?;
    let alice_phone = env
        .open(&tmp.path().join("alice-phone.db"), Some(alice_id))
        .await?;
    // alice's laptop: its own installation key, certified by alice's identity key.
    let laptop_key = InstallationKeyPair::generate();
    let now = unix_now();
    let cert = alice_key.certify(
        alice_phone.did(),
        &laptop_key.public(),
        now,
        now + 365 * 86_400,
    );
    let laptop_db = tmp.path().join("alice-laptop.db");
    let alice_laptop = env
        .open(&laptop_db, Some(DeviceIdentity::linked(laptop_key, cert)?))
        .await?;
    let bob = env
        .open(
            &tmp.path().join("bob.db"),
            Some(DeviceIdentity::new_account(did(
                "did:plc:bobbobbobbobbobbobbobbob",
            )?)),
        )
        .await?;
    let carol = env
        .open(
            &tmp.path().join("carol.db"),
            Some(DeviceIdentity::new_account(did(
                "did:plc:carolcarolcarolcarolcaro",
            )?)),
        )
        .await?;
    for (n, c) in [
        ("alice-phone", &alice_phone),
        ("alice-laptop", &alice_laptop),
        ("bob", &bob),
        ("carol", &carol),
    ] {
        println!(
            "  {n}: {} device {}",
            c.did(),
            c.installation().fingerprint()
        );
    }

    println!("\n== DM alice <-> bob");
    let dm = alice_phone.dm(bob.did()).await?;
    alice_phone
        .conversation(&dm)
        .send_text("hi bob, this is alice")
        .await?;
    show("bob", &bob).await?;
    show("alice-laptop", &alice_laptop).await?;
    let again = bob.dm(alice_phone.did()).await?;
    println!(
        "  bob asks for his DM with alice: same group? {}",
        again == dm
    );
    bob.conversation(&dm).send_text("hi alice!").await?;
    show("alice-phone", &alice_phone).await?;
    show("alice-laptop", &alice_laptop).await?;

    println!("\n== group of three");
    let g = alice_laptop
        .create_group(&[bob.did().clone(), carol.did().clone()])
        .await?;
    show("bob", &bob).await?;
    show("carol", &carol).await?;
    show("alice-phone", &alice_phone).await?;
    carol.conversation(&g).send_text("hello from carol").await?;
    show("alice-phone", &alice_phone).await?;
    show("bob", &bob).await?;
    bob.conversation(&g).self_update().await?;
    println!("  bob rotated his leaf keys");

    println!("\n== carol removed");
    alice_phone
        .conversation(&g)
        .remove_members(&[carol.did().clone()])
        .await?;
    alice_phone
        .conversation(&g)
        .send_text("carol can't read this")
        .await?;
    show("carol", &carol).await?;
    match carol.conversation(&g).send_text("am I still here?").await {
        Err(e) => println!("  [carol] cannot send: {e}"),
        Ok(_) => return Err("carol could still send".into()),
    }
    show("bob", &bob).await?;
    show("alice-laptop", &alice_laptop).await?;

    content_demo(&alice_phone, &bob, &dm).await?;
    governance_demo(&alice_phone, &bob, &carol, &g).await?;

    println!("\n== alice's laptop restarts from its SQLite file");
    drop(alice_laptop);
    let alice_laptop = env.open(&laptop_db, None).await?;
    println!(
        "  reopened with {} conversations",
        alice_laptop.groups().await?.len()
    );
    bob.conversation(&g)
        .send_text("welcome back, laptop")
        .await?;
    show("alice-laptop", &alice_laptop).await?;
    alice_laptop
        .conversation(&dm)
        .send_text("still chatting after restart")
        .await?;
    show("bob", &bob).await?;
    show("carol", &carol).await?;
    println!("\ndemo finished");
    Ok(())
}

/// Each content type once, in the DM (spec/content.md CONTENT-17 to CONTENT-30).
async fn content_demo(alice: &Client, bob: &Client, dm: &GroupId) -> Res<()> {
    println!("\n== typed content in the DM");
    let (a_dm, b_dm) = (alice.conversation(dm), bob.conversation(dm));
    let q = b_dm.send_markdown("**lunch** at noon?").await?;
    show("alice-phone", alice).await?;
    let r = a_dm
        .reply(&q.id, Content::text("yes, the usual place"))
        .await?;
    a_dm.react(&q.id, "👍").await?;
    show("bob", bob).await?;
    b_dm.mark_read(&r.id).await?;
    b_dm.typing(true).await?;
    show("alice-phone", alice).await?;
    let typo = a_dm.send_text("see you at 12:30").await?;
    a_dm.edit(&typo.id, Content::text("see you at 12:15"))
        .await?;
    show("bob", bob).await?;
    if let Err(e) = b_dm.edit(&typo.id, Content::text("bob was here")).await {
        println!("  [bob] cannot edit alice's message: {e}");
    }
    let menu: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let sent = a_dm.attach("menu.pdf", "application/pdf", &menu).await?;
    show("bob", bob).await?;
    let item = b_dm.message(&sent.id).await?;
    if let Some(Some(Content::Attachment(a))) = item.map(|i| i.decoded()) {
        let ok = bob.download(&a).await? == menu;
        println!(
            "  [bob] downloaded {} ({} bytes, encrypted blob, digest checked): {ok}",
            a.filename, a.size
        );
    }
    let mut poll = EncodedContent::new("example.org/poll:1.0".parse()?, vec![1, 2, 3]);
    poll.fallback = Some("[a poll from a newer app: where to eat?]".into());
    a_dm.send_content(&poll).await?;
    a_dm.delete(&typo.id).await?;
    show("bob", bob).await?;
    let found = bob.search(Some(dm), "usual place", 10).await?;
    println!("  [bob] search \"usual place\": {} hit(s)", found.len());
    println!("  [bob] history, newest page:");
    for item in b_dm.history(None, 8).await?.items {
        let text = match (&item.deleted, item.text()) {
            (Some(t), _) => format!("(deleted by {})", t.by),
            (None, Some(t)) => t,
            (None, None) => "(no text)".into(),
        };
        let reactions: Vec<String> = item
            .reactions
            .iter()
            .map(|r| format!("{}×{}", r.emoji, r.count()))
            .collect();
        let edited = if item.edits > 0 { " (edited)" } else { "" };
        println!(
            "    {} {text}{edited} {}",
            item.sender.did,
            reactions.join(" ")
        );
    }
    a_dm.set_disappearing(Some(std::time::Duration::from_secs(3600)))
        .await?;
    show("bob", bob).await?;
    a_dm.set_disappearing(None).await?;
    show("bob", bob).await?;
    Ok(())
}

/// Roles, policies, metadata and an invite link in the group (spec/governance.md).
async fn governance_demo(alice: &Client, bob: &Client, carol: &Client, g: &GroupId) -> Res<()> {
    use atmls::client::{InviteLink, InviteOptions};
    use atmls::group::{Preset, Role};
    println!("\n== roles, policies and an invite link in the group");
    let (a_g, b_g) = (alice.conversation(g), bob.conversation(g));
    println!(
        "  roles: alice is {}, bob is {}",
        b_g.role(alice.did()).await?.name(),
        b_g.role(bob.did()).await?.name()
    );
    a_g.set_name("Lunch Club").await?;
    a_g.set_role(bob.did(), Role::Moderator).await?;
    a_g.apply_preset(Preset::AdminsOnly).await?;
    show("bob", bob).await?;
    if let Err(e) = b_g.set_name("Bob's Club").await {
        println!("  [bob] cannot rename the group: {e}");
    }
    let link = a_g
        .create_invite(InviteOptions {
            max_uses: 1,
            expires_in: Some(std::time::Duration::from_secs(3600)),
            approval: false,
        })
        .await?;
    let url = link.qr_payload();
    println!("  [alice] invite link (also the QR payload): {url}");
    let pending = carol.request_join(&InviteLink::parse(&url)?).await?;
    println!("  [carol] asked to join with the link");
    show("alice-phone", alice).await?;
    println!(
        "  [carol] outcome: {:?}",
        carol.join_outcome(&pending).await?
    );
    show("carol", carol).await?;
    println!(
        "  [carol] the group is called \"{}\"",
        carol.conversation(g).metadata().await?.name
    );
    show("bob", bob).await?;
    Ok(())
}
