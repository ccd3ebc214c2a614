//! The chat client's commands and their dispatch.

use clap::Subcommand;

use crate::chat::{self, DmArgs, GroupRef, InitArgs, SendArgs, ShowArgs, WatchArgs, WhoArgs};
use crate::ctx::{Ctx, Global, Res};
use crate::groups::{self, GroupCmd, InviteCmd};
use crate::login::{self, LoginArgs};
use crate::pds::{self, PdsArgs};
use crate::trust::{self, DevicesArgs, LinkArgs, VerifyArgs};

#[derive(Subcommand)]
pub enum ChatCommand {
    /// Log in to your account's PDS (app password from ATMLS_APP_PASSWORD, or typed); the
    /// session is kept in the store for the other commands.
    Login(LoginArgs),
    /// Forget the saved session.
    Logout,
    /// Set up this device: a messaging identity for the account, published with this
    /// device's KeyPackages (once per account; other devices use `link`).
    Init(InitArgs),
    /// Open the DM with someone and send a message (or show the latest messages).
    Dm(DmArgs),
    /// Send a message to a conversation.
    Send(SendArgs),
    /// Show a conversation's latest messages.
    Show(ShowArgs),
    /// Show new messages and events as they arrive, until Ctrl-C.
    Watch(WatchArgs),
    /// List your conversations.
    Groups,
    /// Create and manage groups.
    #[command(subcommand)]
    Group(GroupCmd),
    /// Invite links: create one for a group, or join by one.
    #[command(subcommand)]
    Invite(InviteCmd),
    /// Message requests: conversations strangers started, waiting for you.
    Requests,
    /// Accept a message request.
    Accept(GroupRef),
    /// Decline a message request (leave the conversation).
    Decline(GroupRef),
    /// Block an account: its conversations are declined, its messages refused.
    Block(WhoArgs),
    /// Unblock an account.
    Unblock(WhoArgs),
    /// List blocked accounts.
    Blocked,
    /// Show the safety number with someone (and its QR code), or mark them verified.
    Verify(VerifyArgs),
    /// List an account's devices (yours by default).
    Devices(DevicesArgs),
    /// Link this new device to your account (shows a code), or approve one (`link approve`).
    Link(LinkArgs),
    /// Your account on a real PDS: publish this device's identity and KeyPackages, look up
    /// others'.
    Pds(PdsArgs),
}

/// Runs a chat command.
pub async fn run(g: &Global, cmd: ChatCommand) -> Res<()> {
    match cmd {
        ChatCommand::Login(a) => return login::login(g, &a).await,
        ChatCommand::Logout => return login::logout(g).await,
        ChatCommand::Init(a) => return chat::init(g, &a).await,
        ChatCommand::Link(a) => return trust::link(g, &a).await,
        ChatCommand::Pds(a) => return pds::run(g, a).await,
        _ => {}
    }
    let c = Ctx::open(g).await?;
    let r = with_client(&c, cmd).await;
    // The session is saved even when the command failed: a refresh replaced the tokens.
    let saved = c.finish().await;
    r.and(saved)
}

async fn with_client(c: &Ctx, cmd: ChatCommand) -> Res<()> {
    match cmd {
        ChatCommand::Dm(a) => chat::dm(c, &a).await,
        ChatCommand::Send(a) => chat::send(c, &a).await,
        ChatCommand::Show(a) => chat::show(c, &a).await,
        ChatCommand::Watch(a) => chat::watch(c, &a).await,
        ChatCommand::Groups => groups::groups(c).await,
        ChatCommand::Group(a) => groups::group(c, &a).await,
        ChatCommand::Invite(a) => groups::invite(c, &a).await,
        ChatCommand::Requests => chat::requests(c).await,
        ChatCommand::Accept(a) => chat::accept(c, &a).await,
        ChatCommand::Decline(a) => chat::decline(c, &a).await,
        ChatCommand::Block(a) => chat::block(c, &a, true).await,
        ChatCommand::Unblock(a) => chat::block(c, &a, false).await,
        ChatCommand::Blocked => chat::blocked(c).await,
        ChatCommand::Verify(a) => trust::verify(c, &a).await,
        ChatCommand::Devices(a) => trust::devices(c, &a).await,
        ChatCommand::Login(_)
        | ChatCommand::Logout
        | ChatCommand::Init(_)
        | ChatCommand::Link(_)
        | ChatCommand::Pds(_) => Ok(()),
    }
}
