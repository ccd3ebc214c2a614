//! The attachment-blob routes of the atmls-ds API (spec/content.md CONTENT-25g to CONTENT-25k):
//! paths, bodies, limits and error codes shared by the server and
//! `atmls::blob::HttpBlobStore`. Errors are [`ErrorBody`](super::api::ErrorBody) JSON like the
//! rest of the API.
//!
//! - `POST /v1/mailboxes/{mailbox}/blobs`, `Authorization: Bearer <capability>`, body
//!   [`BlobCreate`]: begins an upload; answers [`BlobCreated`].
//! - `PUT /v1/mailboxes/{mailbox}/blobs/{id}/chunks/{i}`: chunk `i`, exactly [`BLOB_CHUNK`]
//!   bytes (the last one: the rest); `204`. Again: replaced.
//! - `GET /v1/mailboxes/{mailbox}/blobs/{id}`: [`BlobStatus`], which chunks the service has.
//! - `POST /v1/mailboxes/{mailbox}/blobs/{id}/complete`: publishes it; `409 incomplete` while
//!   a chunk is missing.
//! - `DELETE /v1/mailboxes/{mailbox}/blobs/{id}`: erases it (CONTENT-25k); `204`.
//! - `GET /v1/blobs/{id}`, optionally `Range: bytes=N-`: the complete blob (`200`), or from
//!   byte `N` on (`206`), streamed a chunk at a time; no capability.

use serde::{Deserialize, Serialize};

/// The size a blob of `len` bytes is padded to (CONTENT-25d): the next power of two up to
/// 1 MiB (at least 64 KiB), above that the next multiple of an eighth of the power of two
/// below it (at most 12.5 % more), so a store learns the size only within a bucket.
///
/// ```
/// use atmls_ds_wire::blob_api::{padded_len, MAX_BLOB};
/// assert_eq!(padded_len(1), 64 * 1024);
/// assert_eq!(padded_len(64 * 1024 + 1), 128 * 1024);
/// assert_eq!(padded_len(1 << 20), 1 << 20);
/// // Above 1 MiB: the next multiple of 128 KiB (an eighth of 1 MiB).
/// assert_eq!(padded_len((1 << 20) + 1), (1 << 20) + (128 << 10));
/// // A 100 MiB attachment pads to at most MAX_BLOB.
/// assert!(padded_len(100 << 20) <= MAX_BLOB);
/// ```
pub fn padded_len(len: u64) -> u64 {
    const MIB: u64 = 1 << 20;
    if len <= MIB {
        return len.max(64 * 1024).next_power_of_two();
    }
    let step = (1u64 << (63 - len.leading_zeros())) / 8;
    len.div_ceil(step).saturating_mul(step)
}

/// Blobs are uploaded, stored and read in chunks of this many bytes (the last one shorter).
pub const BLOB_CHUNK: usize = 256 << 10;
/// Largest blob the service accepts: 128 MiB, a padded 100 MiB attachment (CONTENT-25d).
pub const MAX_BLOB: u64 = 128 << 20;
/// Bytes of blobs one group mailbox may hold at once, uploads under way included: 1 GiB.
pub const BLOB_BUDGET: u64 = 1 << 30;

/// Body of a new upload.
///
/// ```
/// use atmls_ds_wire::blob_api::{padded_len, BlobCreate, MAX_BLOB};
/// let body = BlobCreate { size: padded_len(300_000) };
/// assert_eq!(serde_json::to_string(&body)?, r#"{"size":524288}"#);
/// assert!(body.size <= MAX_BLOB);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct BlobCreate {
    /// The blob's size in bytes: a padded size (CONTENT-25d), at most [`MAX_BLOB`].
    pub size: u64,
}

/// Answer to a new upload (`201`).
///
/// ```
/// use atmls_ds_wire::{api::parse_hex, blob_api::{BlobCreated, BLOB_CHUNK}};
/// let json = format!(r#"{{"id":"{}","chunk":{BLOB_CHUNK}}}"#, "ab".repeat(32));
/// let created: BlobCreated = serde_json::from_str(&json)?;
/// assert_eq!(created.chunk, 256 * 1024);
/// assert_eq!(parse_hex::<32>(&created.id), Some([0xab; 32]));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct BlobCreated {
    /// The blob's random id, 64 hex digits: the uploader's handle and the readers' name.
    pub id: String,
    /// Bytes per chunk.
    pub chunk: u64,
}

/// What the service holds of an upload (`200`).
///
/// ```
/// use atmls_ds_wire::blob_api::{BlobStatus, BLOB_CHUNK};
/// let status: BlobStatus =
///     serde_json::from_str(r#"{"size":1048576,"chunk":262144,"have":[0,1,3],"complete":false}"#)?;
/// // A 1 MiB blob is four chunks; chunk 2 is still missing.
/// let chunks = status.size.div_ceil(BLOB_CHUNK as u64);
/// let missing: Vec<u64> = (0..chunks).filter(|i| !status.have.contains(i)).collect();
/// assert_eq!(missing, [2]);
/// assert!(!status.complete);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct BlobStatus {
    /// The declared size.
    pub size: u64,
    /// Bytes per chunk.
    pub chunk: u64,
    /// The chunks stored, in order.
    pub have: Vec<u64>,
    /// Whether it is complete (readable).
    pub complete: bool,
}

/// Error codes of the blob routes.
pub mod code {
    /// No blob under this id: never issued, not complete yet, erased, or pruned.
    pub const UNKNOWN_BLOB: &str = "unknown_blob";
    /// The mailbox's blobs would pass [`BLOB_BUDGET`](super::BLOB_BUDGET); `limit` is it.
    pub const OVER_BUDGET: &str = "over_budget";
    /// `complete` while chunks are missing.
    pub const INCOMPLETE: &str = "incomplete";
    /// A chunk to a complete blob.
    pub const COMPLETE: &str = "complete";
    /// This service's storage keeps no blobs.
    pub const NOT_IMPLEMENTED: &str = "not_implemented";
}
