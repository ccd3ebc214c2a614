//! Round trips and every tamper case of the streaming construction (CONTENT-25a to 25f).
//!
//! Test code: `unwrap`/`expect` only on values the tests build themselves (plaintexts, blobs
//! they encrypt and then tamper with on purpose, temporary files), never on another party's
//! input.

use super::*;

const C: usize = STREAM_CHUNK + STREAM_TAG;

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}

async fn seal(plain: &[u8]) -> (Vec<u8>, SealedStream) {
    let mut blob = Vec::new();
    let s = encrypt_stream(&mut &plain[..], &mut blob).await.unwrap();
    (blob, s)
}

async fn open(s: &SealedStream, blob: &[u8]) -> Result<Vec<u8>, StreamError> {
    open_with(s, &s.digest, blob).await
}

async fn open_with(
    s: &SealedStream,
    digest: &[u8; 32],
    blob: &[u8],
) -> Result<Vec<u8>, StreamError> {
    let mut out = Vec::new();
    decrypt_stream(&s.key, digest, s.size, &mut &blob[..], &mut out).await?;
    Ok(out)
}

/// The digest a store that rewrote the blob would also have to forge (it cannot know the
/// digest inside the message, but the chunk checks must hold on their own).
fn digest_of(b: &[u8]) -> [u8; 32] {
    Sha256::digest(b).into()
}

#[tokio::test]
async fn content_25b_round_trip_at_chunk_edges() {
    for n in [
        0,
        1,
        STREAM_CHUNK - 1,
        STREAM_CHUNK,
        STREAM_CHUNK + 1,
        3 * STREAM_CHUNK,
        300_000,
    ] {
        let plain = data(n);
        let (blob, s) = seal(&plain).await;
        assert_eq!(s.size, n as u64);
        assert_eq!(blob.len() as u64, s.blob_len);
        assert_eq!(s.blob_len, padded_len(stream_len(n as u64)));
        assert_eq!(open(&s, &blob).await.unwrap(), plain, "size {n}");
    }
}

#[tokio::test]
async fn content_25a_fresh_key_and_prefix_each_time() {
    let (b1, s1) = seal(&data(1000)).await;
    let (b2, s2) = seal(&data(1000)).await;
    assert_ne!(s1.key.key, s2.key.key);
    assert_ne!(s1.key.nonce_prefix, s2.key.nonce_prefix);
    assert_ne!(b1, b2);
}

#[test]
fn content_25d_padding_buckets() {
    assert_eq!(padded_len(0), 64 * 1024);
    assert_eq!(padded_len(64 * 1024 + 1), 128 * 1024);
    assert_eq!(padded_len(1 << 20), 1 << 20);
    assert_eq!(padded_len((1 << 20) + 1), (1 << 20) + (1 << 17));
    for len in [(1u64 << 20) + 1, 5_000_000, 100 << 20, (100 << 20) + 7] {
        let p = padded_len(len);
        assert!(p >= len && p <= len + len / 8, "{len} -> {p}");
        assert_eq!(padded_len(p), p, "a padded length is its own bucket");
    }
}

#[tokio::test]
async fn content_25c_altered_chunk_fails_its_tag() {
    let (blob, s) = seal(&data(3 * STREAM_CHUNK + 5)).await;
    for chunk in 0..4u64 {
        let mut bad = blob.clone();
        bad[chunk as usize * C + 7] ^= 1;
        let r = open_with(&s, &digest_of(&bad), &bad).await;
        assert!(
            matches!(r, Err(StreamError::ChunkAuthentication { chunk: c }) if c == chunk),
            "{r:?}"
        );
    }
}

#[tokio::test]
async fn content_25c_reordered_or_duplicated_chunks_fail() {
    let (blob, s) = seal(&data(3 * STREAM_CHUNK + 5)).await;
    let mut swapped = blob.clone();
    swapped[..C].copy_from_slice(&blob[C..2 * C]);
    swapped[C..2 * C].copy_from_slice(&blob[..C]);
    let r = open_with(&s, &digest_of(&swapped), &swapped).await;
    assert!(
        matches!(r, Err(StreamError::ChunkAuthentication { chunk: 0 })),
        "{r:?}"
    );
    let mut dup = blob.clone();
    dup[C..2 * C].copy_from_slice(&blob[..C]);
    let r = open_with(&s, &digest_of(&dup), &dup).await;
    assert!(
        matches!(r, Err(StreamError::ChunkAuthentication { chunk: 1 })),
        "{r:?}"
    );
}

#[tokio::test]
async fn content_25c_truncation_detected() {
    let (blob, s) = seal(&data(2 * STREAM_CHUNK + 5)).await;
    for cut in [0, 10, C, C + 1, 2 * C, 2 * C + 20] {
        let bad = &blob[..cut];
        let r = open_with(&s, &digest_of(bad), bad).await;
        assert!(
            matches!(r, Err(StreamError::Truncated { .. })),
            "cut {cut}: {r:?}"
        );
    }
}

#[tokio::test]
async fn content_25c_a_non_final_chunk_cannot_end_the_stream() {
    // A stream of two full chunks and an empty last one; read as if its size were one
    // chunk, chunk 1 must be the (empty) last chunk, and the full chunk 1 does not verify as
    // one: its nonce had last = 0.
    let (blob, mut s) = seal(&data(2 * STREAM_CHUNK)).await;
    s.size = STREAM_CHUNK as u64;
    let r = open_with(&s, &digest_of(&blob), &blob).await;
    assert!(
        matches!(r, Err(StreamError::ChunkAuthentication { chunk: 1 })),
        "{r:?}"
    );
    // The last chunk moved to the front fails too.
    let (blob, s) = seal(&data(STREAM_CHUNK + 100)).await;
    let mut moved = blob[C..C + 100 + STREAM_TAG].to_vec();
    moved.extend_from_slice(&blob[..C]);
    let r = open_with(&s, &digest_of(&moved), &moved).await;
    assert!(
        matches!(r, Err(StreamError::ChunkAuthentication { chunk: 0 })),
        "{r:?}"
    );
}

#[tokio::test]
async fn content_25d_extension_and_bad_padding_refused() {
    let (blob, s) = seal(&data(STREAM_CHUNK + 100)).await;
    let mut longer = blob.clone();
    longer.push(0);
    let r = open_with(&s, &digest_of(&longer), &longer).await;
    assert!(matches!(r, Err(StreamError::TrailingData)), "{r:?}");
    let mut dirty = blob.clone();
    *dirty.last_mut().unwrap() = 1;
    let r = open_with(&s, &digest_of(&dirty), &dirty).await;
    assert!(matches!(r, Err(StreamError::TrailingData)), "{r:?}");
    let short = &blob[..blob.len() - 1];
    let r = open_with(&s, &digest_of(short), short).await;
    assert!(matches!(r, Err(StreamError::TrailingData)), "{r:?}");
}

#[tokio::test]
async fn content_25e_digest_checked() {
    let (blob, s) = seal(&data(1000)).await;
    let mut wrong = s.digest;
    wrong[0] ^= 1;
    let r = open_with(&s, &wrong, &blob).await;
    assert!(matches!(r, Err(StreamError::DigestMismatch)), "{r:?}");
    assert!(!r.unwrap_err().is_retryable());
}

#[tokio::test]
async fn content_25f_failed_decryption_writes_nothing_to_the_target() {
    let dir = tempfile::tempdir().unwrap();
    let plain = data(2 * STREAM_CHUNK + 9);
    let (blob, s) = seal(&plain).await;
    let blob_path = dir.path().join("blob");
    let target = dir.path().join("out");
    let mut bad = blob.clone();
    bad[C + 3] ^= 1;
    tokio::fs::write(&blob_path, &bad).await.unwrap();
    let r = decrypt_stream_to_path(&s.key, &s.digest, s.size, &blob_path, &target).await;
    assert!(
        matches!(r, Err(StreamError::ChunkAuthentication { chunk: 1 })),
        "{r:?}"
    );
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        left,
        vec![std::ffi::OsString::from("blob")],
        "no target, no temporary"
    );
    tokio::fs::write(&blob_path, &blob).await.unwrap();
    decrypt_stream_to_path(&s.key, &s.digest, s.size, &blob_path, &target)
        .await
        .unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), plain);
}
