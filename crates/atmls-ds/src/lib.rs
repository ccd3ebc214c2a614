//! # atmls-ds
//!
//! The atmls delivery service (spec/ds.md): storage (SQLite, or PostgreSQL with feature
//! `postgres`), limits, metrics and the HTTP server. Its wire contract with clients is the
//! `atmls-ds-wire` crate.
//!
//! The service depends on that crate and on neither atmls nor openmls: it stores and orders
//! opaque payloads under opaque ids, and the compiler checks that it can do nothing else
//! (spec/ds.md DS-2).
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![warn(unreachable_pub)]

mod blobs;
mod config;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod layers;
pub mod limits;
mod listen;
pub mod metrics;
pub mod server;
pub mod store;
mod trees;
mod welcomes;

pub use config::{run, run_on, Config};
