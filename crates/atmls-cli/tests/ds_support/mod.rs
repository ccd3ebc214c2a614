//! An atmls-ds for the CLI's tests: the real service's configuration on a SQLite database,
//! without rate limits (the tests post in bursts from one address).

use std::path::Path;

use clap::Parser as _;

/// The service's configuration with its database at `db` and no rate limits.
pub fn ds_config(db: &Path) -> atmls_ds::Config {
    atmls_ds::Config::parse_from([
        "atmls-ds",
        "--database",
        db.to_str().expect("a UTF-8 temp path"),
        "--rate-mailbox",
        "0",
        "--rate-welcome",
        "0",
        "--rate-address",
        "0",
    ])
}
