//! atmls-ds, the delivery service (spec/ds.md): the HTTP API shared with the client transport
//! ([`api`]), and with feature `ds-server` the service itself: storage, limits, metrics and
//! the server.

pub mod api;
pub mod blob_api;

#[cfg(feature = "ds-server")]
mod blobs;
#[cfg(feature = "ds-server")]
mod config;
#[cfg(feature = "ds-server")]
mod layers;
#[cfg(feature = "ds-server")]
pub mod limits;
#[cfg(feature = "ds-server")]
mod listen;
#[cfg(feature = "ds-server")]
pub mod metrics;
#[cfg(feature = "ds-server")]
pub mod server;
#[cfg(feature = "ds-server")]
pub mod store;
#[cfg(feature = "ds-server")]
mod trees;
#[cfg(feature = "ds-server")]
mod welcomes;

#[cfg(feature = "ds-server")]
pub use config::{run, Config};
