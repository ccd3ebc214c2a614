//! `atmls groups`, `group create|add|remove|name|role|members`, `invite create|redeem`.

use std::time::Duration;

use atmls::client::{InviteLink, InviteOptions, JoinOutcome};
use atmls::group::{GroupKind, Role};
use atmls::identity::Did;
use atmls::GroupId;
use clap::{Subcommand, ValueEnum};
use serde_json::json;

use crate::chat::{find_group, sync};
use crate::ctx::{Ctx, Res};
use crate::out::{kind_name, short};
use crate::trust::print_qr;

/// This device's conversations.
pub async fn groups(c: &Ctx) -> Res<()> {
    sync(c).await?;
    let list = c.client.groups().await?;
    if list.is_empty() && !c.out.json {
        println!("no conversations yet: `atmls dm <handle> <text>` starts one");
    }
    for g in list {
        let conv = c.client.conversation(&g.id);
        let name = match g.kind {
            GroupKind::Group => conv.metadata().await.map(|m| m.name).unwrap_or_default(),
            _ => String::new(),
        };
        let members = conv.members().await.map(|m| m.len()).unwrap_or(0);
        let status = format!("{:?}", g.status).to_lowercase();
        let peer = g.dm_peer.as_ref().map(|d| d.as_str().to_owned());
        let label = match (&peer, name.is_empty()) {
            (Some(p), _) => format!("DM with {p}"),
            (None, false) => format!("\"{name}\""),
            (None, true) => "(unnamed group)".into(),
        };
        c.out.emit(
            json!({"event": "group", "group": g.id.to_string(), "kind": kind_name(g.kind),
                   "name": name, "peer": peer, "status": status, "devices": members, "epoch": g.epoch}),
            format!("[{}] {label}, {members} device(s), {status}", short(&g.id)),
        );
    }
    Ok(())
}

#[derive(Subcommand, Debug)]
pub enum GroupCmd {
    /// Create a group with these accounts.
    Create {
        /// Its name.
        #[arg(long)]
        name: Option<String>,
        /// Members' handles or DIDs.
        #[arg(required = true)]
        members: Vec<String>,
    },
    /// Add accounts to a group.
    Add {
        /// The group (id or prefix).
        group: String,
        /// Handles or DIDs.
        #[arg(required = true)]
        members: Vec<String>,
    },
    /// Remove accounts from a group.
    Remove {
        /// The group (id or prefix).
        group: String,
        /// Handles or DIDs.
        #[arg(required = true)]
        members: Vec<String>,
    },
    /// Rename a group.
    Name {
        /// The group (id or prefix).
        group: String,
        /// The new name.
        name: String,
    },
    /// Give a member a role.
    Role {
        /// The group (id or prefix).
        group: String,
        /// The member's handle or DID.
        who: String,
        /// The role.
        role: RoleArg,
    },
    /// List a group's members and their roles.
    Members {
        /// The group (id or prefix).
        group: String,
    },
    /// Leave a group.
    Leave {
        /// The group (id or prefix).
        group: String,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum RoleArg {
    Owner,
    Admin,
    Moderator,
    Member,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Role {
        match r {
            RoleArg::Owner => Role::Owner,
            RoleArg::Admin => Role::Admin,
            RoleArg::Moderator => Role::Moderator,
            RoleArg::Member => Role::Member,
        }
    }
}

async fn dids(c: &Ctx, who: &[String]) -> Res<Vec<Did>> {
    let mut out = Vec::with_capacity(who.len());
    for w in who {
        out.push(c.resolve(w).await?);
    }
    Ok(out)
}

fn done(c: &Ctx, group: &GroupId, what: &str, human: String) {
    c.out.emit(
        json!({"event": what, "group": group.to_string()}),
        format!("[{}] {human}", short(group)),
    );
}

pub async fn group(c: &Ctx, cmd: &GroupCmd) -> Res<()> {
    sync(c).await?;
    match cmd {
        GroupCmd::Create { name, members } => create(c, name.as_deref(), members).await,
        GroupCmd::Add { group, members } => {
            let (g, m) = (find_group(c, group).await?, dids(c, members).await?);
            c.progress_adding(m.len());
            c.client.conversation(&g).add_members(&m).await?;
            done(c, &g, "added", format!("added {}", members.join(", ")));
            Ok(())
        }
        GroupCmd::Remove { group, members } => {
            let (g, m) = (find_group(c, group).await?, dids(c, members).await?);
            c.client.conversation(&g).remove_members(&m).await?;
            done(c, &g, "removed", format!("removed {}", members.join(", ")));
            Ok(())
        }
        GroupCmd::Name { group, name } => {
            let g = find_group(c, group).await?;
            c.client.conversation(&g).set_name(name).await?;
            done(c, &g, "renamed", format!("renamed \"{name}\""));
            Ok(())
        }
        GroupCmd::Role { group, who, role } => {
            let (g, did) = (find_group(c, group).await?, c.resolve(who).await?);
            c.client
                .conversation(&g)
                .set_role(&did, (*role).into())
                .await?;
            let r = Role::from(*role).name();
            done(c, &g, "role_set", format!("{who} is now {r}"));
            Ok(())
        }
        GroupCmd::Members { group } => members(c, &find_group(c, group).await?).await,
        GroupCmd::Leave { group } => {
            let g = find_group(c, group).await?;
            c.client.conversation(&g).leave().await?;
            done(c, &g, "left", "left".into());
            Ok(())
        }
    }
}

impl Ctx {
    fn progress_adding(&self, n: usize) {
        self.out.progress(format!(
            "adding {n} account(s): fetching their KeyPackages…"
        ));
    }
}

async fn create(c: &Ctx, name: Option<&str>, members: &[String]) -> Res<()> {
    let m = dids(c, members).await?;
    c.progress_adding(m.len());
    let g = c.client.create_group(&m).await?;
    if let Some(n) = name {
        c.client.conversation(&g).set_name(n).await?;
    }
    c.out.emit(
        json!({"event": "group_created", "group": g.to_string(), "name": name}),
        format!(
            "[{}] created{} with {}",
            short(&g),
            name.map(|n| format!(" \"{n}\"")).unwrap_or_default(),
            members.join(", ")
        ),
    );
    Ok(())
}

async fn members(c: &Ctx, g: &GroupId) -> Res<()> {
    let conv = c.client.conversation(g);
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    for m in conv.members().await? {
        *seen.entry(m.did.as_str().to_owned()).or_default() += 1;
    }
    for (did, devices) in seen {
        let role = match Did::new(&did) {
            Ok(d) => conv.role(&d).await.map(|r| r.name()).unwrap_or("member"),
            Err(_) => "member",
        };
        c.out.emit(
            json!({"event": "member", "group": g.to_string(), "did": did, "role": role, "devices": devices}),
            format!("{did}  {role}  {devices} device(s)"),
        );
    }
    Ok(())
}

#[derive(Subcommand, Debug)]
pub enum InviteCmd {
    /// Create an invite link for a group (shown with its QR code).
    Create {
        /// The group (id or prefix).
        group: String,
        /// How many accounts may join by it (0: unlimited).
        #[arg(long, default_value_t = 0)]
        max_uses: u32,
        /// Hours it works (default: until revoked).
        #[arg(long)]
        expires_hours: Option<u64>,
        /// An admin approves each request (else joining is automatic).
        #[arg(long)]
        approval: bool,
    },
    /// Ask to join a group by its invite link, and wait for the answer.
    Redeem {
        /// The link.
        link: String,
        /// Seconds to wait for the answer (the group's admins' devices answer when online).
        #[arg(long, default_value_t = 60)]
        wait: u64,
    },
}

pub async fn invite(c: &Ctx, cmd: &InviteCmd) -> Res<()> {
    match cmd {
        InviteCmd::Create {
            group,
            max_uses,
            expires_hours,
            approval,
        } => {
            sync(c).await?;
            let g = find_group(c, group).await?;
            let options = InviteOptions {
                max_uses: *max_uses,
                expires_in: expires_hours.map(|h| Duration::from_secs(h.saturating_mul(3600))),
                approval: *approval,
            };
            let link = c.client.conversation(&g).create_invite(options).await?;
            let url = link.to_url();
            c.out.emit(
                json!({"event": "invite", "group": g.to_string(), "link": url}),
                format!("[{}] invite link: {url}", short(&g)),
            );
            if !c.out.json {
                print_qr(&link.qr_payload())?;
            }
            Ok(())
        }
        InviteCmd::Redeem { link, wait } => redeem(c, link, *wait).await,
    }
}

async fn redeem(c: &Ctx, link: &str, wait: u64) -> Res<()> {
    let link =
        InviteLink::parse(link.trim()).map_err(|e| format!("not an atmls invite link: {e}"))?;
    let pending = c.client.request_join(&link).await?;
    c.out
        .progress("asked to join; waiting for the group's answer…");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
    loop {
        sync(c).await?;
        let outcome = c.client.join_outcome(&pending).await?;
        if outcome != JoinOutcome::Pending || tokio::time::Instant::now() >= deadline {
            if outcome == JoinOutcome::Approved {
                // The Welcome follows the approval.
                sync(c).await?;
            }
            let word = format!("{outcome:?}").to_lowercase();
            c.out.emit(
                json!({"event": "join", "outcome": word}),
                match outcome {
                    JoinOutcome::Pending => {
                        "still waiting: `atmls watch` shows when you are added".to_owned()
                    }
                    JoinOutcome::Approved => "joined: `atmls groups` lists it".to_owned(),
                    _ => format!("not joined: {word}"),
                },
            );
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}
