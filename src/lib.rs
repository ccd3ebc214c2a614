//! # atmls
//!
//! End-to-end encrypted direct and group messaging between AT Protocol accounts, on MLS
//! (RFC 9420) through openmls.
//!
//! The data flows through one module per concern: [`identity`] (DIDs, identity and
//! installation keys) → [`credential`] (what a leaf proves) → [`keypackage`] → [`group`] →
//! [`transport`] → [`content`], with [`directory`] (where identities are published) and
//! [`storage`] beside them, and [`extensions`] (atmls's MLS extension types) below all.
//! [`Client`] ties them together. No module names a later one (tests/module_graph.rs).
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![warn(unreachable_pub)]

pub mod blob;
pub mod client;
pub mod clock;
pub mod content;
pub mod credential;
pub mod directory;
pub mod extensions;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod group;
pub mod identity;
pub mod keypackage;
pub mod storage;
pub mod transport;
pub mod trust;
mod wire;

pub use client::{
    Client, ClientBuilder, Conversation, Error, Event, GroupInfo, Message, MessageRequest,
};

// The README's library example runs as a doc test, so it cannot go stale.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExample;
pub use group::{GroupId, GroupStatus};
