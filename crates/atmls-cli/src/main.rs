//! The atmls command-line tool: a chat client for AT Protocol accounts on a real PDS and an
//! atmls-ds delivery service (`login`, `init`, `dm`, `send`, `watch`, …), account commands
//! (`pds …`), and `demo`, the walking-skeleton scenario on embedded defaults.
#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};

#[path = "atmls_cli/demo.rs"]
mod demo;
#[path = "atmls_cli/opts.rs"]
mod opts;

#[cfg(feature = "pds")]
#[path = "atmls_cli/chat.rs"]
mod chat;
#[cfg(feature = "pds")]
#[path = "atmls_cli/commands.rs"]
mod commands;
#[cfg(feature = "pds")]
#[path = "atmls_cli/ctx.rs"]
mod ctx;
#[cfg(feature = "pds")]
#[path = "atmls_cli/groups.rs"]
mod groups;
#[cfg(feature = "pds")]
#[path = "atmls_cli/login.rs"]
mod login;
#[cfg(feature = "pds")]
#[path = "atmls_cli/oauth.rs"]
mod oauth;
#[cfg(feature = "pds")]
#[path = "atmls_cli/out.rs"]
mod out;
#[cfg(feature = "pds")]
#[path = "atmls_cli/pds.rs"]
mod pds;
#[cfg(feature = "pds")]
#[path = "atmls_cli/store.rs"]
mod store;
#[cfg(feature = "pds")]
#[path = "atmls_cli/trust.rs"]
mod trust;

#[derive(Parser)]
#[command(
    name = "atmls",
    version,
    about = "End-to-end encrypted messaging for AT Protocol accounts, on MLS",
    after_help = "Start: `atmls login --handle you.example.com` (app password from \
                  ATMLS_APP_PASSWORD or typed), then `atmls init`, then `atmls dm <handle> <text>`."
)]
struct Cli {
    #[command(flatten)]
    global: opts::Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the demo: alice (two devices), bob and carol; DMs, a group, removal, restart
    /// (through the atmls-ds at `--ds` if given).
    Demo,
    #[cfg(feature = "pds")]
    #[command(flatten)]
    Chat(commands::ChatCommand),
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let r = match cli.command {
        Command::Demo => demo::demo(&cli.global).await,
        #[cfg(feature = "pds")]
        Command::Chat(c) => commands::run(&cli.global, c).await,
    };
    if let Err(e) = r {
        if cli.global.json {
            println!(
                "{}",
                serde_json::json!({"event": "error", "error": e.to_string()})
            );
        }
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
