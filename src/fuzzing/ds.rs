//! Targets of the atmls-ds HTTP API (spec/ds.md DS-API-*): what the client transport reads
//! from a service (JSON bodies; ids and cursors in hex and decimal).

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::mode;
use atmls_ds_wire::api::{self, Accepted, ErrorBody, PageBody, SubscribeBody, TreeStored};

/// Whatever a body deserializes to serializes and deserializes back to the same value.
fn body<T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug>(data: &[u8]) {
    let Ok(v) = serde_json::from_slice::<T>(data) else {
        return;
    };
    let again = serde_json::to_vec(&v).unwrap_or_else(|e| panic!("{v:?}: {e}"));
    assert_eq!(serde_json::from_slice::<T>(&again).ok(), Some(v));
}

/// DS-API-9. Mode byte: which body or field the rest is (page, error, post answer, tree
/// answer, subscription, mailbox id, cursor).
pub(super) fn response(data: &[u8]) {
    let Some((m, rest)) = mode(data) else {
        return;
    };
    match m % 7 {
        0 => body::<PageBody>(rest),
        1 => body::<ErrorBody>(rest),
        2 => body::<Accepted>(rest),
        3 => body::<TreeStored>(rest),
        4 => body::<SubscribeBody>(rest),
        5 => hex_id(rest),
        _ => cursor(rest),
    }
}

fn hex_id(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(id) = api::parse_hex::<32>(s) {
        assert_eq!(hex::encode(id), s.to_ascii_lowercase());
    }
}

fn cursor(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(c) = api::parse_cursor(s) {
        assert!(c <= i64::MAX as u64);
        assert_eq!(s.trim_start_matches('0').parse::<u64>().unwrap_or(0), c);
    }
}
