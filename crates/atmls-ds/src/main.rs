//! `atmls-ds`: the atmls delivery service (spec/ds.md).
#![forbid(unsafe_code)]

use clap::Parser as _;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() {
    let cfg = atmls_ds::Config::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(&cfg.log).unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = atmls_ds::run(cfg).await {
        tracing::error!(error = %e, "atmls-ds failed");
        eprintln!("atmls-ds: {e}");
        std::process::exit(1);
    }
}
