//! Streaming encryption of attachments (spec/content.md CONTENT-25a to CONTENT-25f): a
//! STREAM construction (Hoang, Reyhanitabar, Rogaway, Vizár, "Online authenticated-encryption
//! and its nonce-reuse misuse-resistance", 2015) over ChaCha20-Poly1305, chunk by chunk, so
//! that a file of any size is encrypted and decrypted in bounded memory.
//!
//! The plaintext is cut into chunks of [`STREAM_CHUNK`] bytes; the last chunk is shorter
//! (possibly empty), so a stream always ends with exactly one short chunk. Chunk `i` is sealed
//! under the attachment's fresh key with nonce `prefix[7] ‖ uint32(i) ‖ last` (`last` = 1 for
//! the final chunk, else 0) and associated data [`STREAM_AAD`]. Each sealed chunk is its
//! ciphertext followed by its 16-byte tag. A reordered, duplicated or altered chunk fails its
//! tag (wrong counter); a stream cut at a chunk boundary ends without a last chunk; bytes after
//! the last chunk are refused. The blob is the stream followed by zero bytes up to
//! [`padded_len`], and its SHA-256 is the reference's digest.
//!
//! Decryption writes each chunk only once its tag verified, but a later chunk may still fail:
//! what was written before an error is authenticated yet incomplete. Callers MUST NOT show or
//! keep a partial output ([`decrypt_stream_to_path`] decrypts into a temporary file beside the
//! target and renames it into place only when the whole blob checked out).

use std::path::Path;

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce, Tag};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use zeroize::Zeroize;

use crate::blob::StreamKey;

/// Plaintext bytes per chunk (64 KiB).
pub const STREAM_CHUNK: usize = 64 * 1024;
/// Bytes of the Poly1305 tag after each chunk.
pub const STREAM_TAG: usize = 16;
/// Associated data of every chunk.
pub const STREAM_AAD: &[u8] = b"atmls/v1/attachment-stream";
/// Largest plaintext of a streamed attachment: 4 GiB (well below the 2^32 chunks the counter
/// allows).
pub const MAX_STREAM_PLAINTEXT: u64 = 4 << 30;

/// Errors of streaming encryption and decryption. Only [`StreamError::Io`] may go away on a
/// retry; the others are properties of the bytes.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// Reading the input or writing the output failed.
    #[error("attachment stream I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The blob ended inside chunk `chunk`, before the stream's last chunk (CONTENT-25c).
    #[error("attachment stream truncated in chunk {chunk}")]
    Truncated {
        /// Index of the chunk that could not be read whole.
        chunk: u64,
    },
    /// Chunk `chunk` failed authentication: altered, reordered, duplicated, or not the last
    /// chunk where one was due (CONTENT-25c).
    #[error("attachment chunk {chunk} failed authentication")]
    ChunkAuthentication {
        /// Index of the chunk.
        chunk: u64,
    },
    /// Bytes follow the last chunk that are not its zero padding, or the padding is the
    /// wrong length (CONTENT-25d).
    #[error("attachment blob has bytes after its stream that are not its padding")]
    TrailingData,
    /// The blob's SHA-256 differs from the reference's digest (CONTENT-25e).
    #[error("attachment blob digest mismatch")]
    DigestMismatch,
    /// The plaintext is larger than [`MAX_STREAM_PLAINTEXT`].
    #[error("attachment of more than {max} bytes")]
    TooLarge {
        /// The limit.
        max: u64,
    },
}

impl StreamError {
    /// Whether trying again could succeed (I/O failures only).
    pub fn is_retryable(&self) -> bool {
        match self {
            StreamError::Io(_) => true,
            StreamError::Truncated { .. }
            | StreamError::ChunkAuthentication { .. }
            | StreamError::TrailingData
            | StreamError::DigestMismatch
            | StreamError::TooLarge { .. } => false,
        }
    }
}

impl StreamKey {
    fn nonce(&self, chunk: u64, last: bool) -> Nonce {
        let mut n = [0u8; 12];
        n[..7].copy_from_slice(&self.nonce_prefix);
        // Callers bound the chunk count below 2^32 (MAX_STREAM_PLAINTEXT).
        n[7..11].copy_from_slice(&(chunk as u32).to_be_bytes());
        n[11] = u8::from(last);
        Nonce::from(n)
    }
}

/// Bytes of the stream of a plaintext of `size` bytes: every chunk plus its tag, the last
/// (short, possibly empty) one included.
pub fn stream_len(size: u64) -> u64 {
    size + STREAM_TAG as u64 * (size / STREAM_CHUNK as u64 + 1)
}

pub use atmls_ds_wire::blob_api::padded_len;

/// What [`encrypt_stream`] produced.
#[derive(Debug)]
pub struct SealedStream {
    /// The key and nonce prefix.
    pub key: StreamKey,
    /// SHA-256 of the whole blob (stream and padding).
    pub digest: [u8; 32],
    /// Plaintext bytes read.
    pub size: u64,
    /// Blob bytes written: [`padded_len`] of [`stream_len`] of `size`.
    pub blob_len: u64,
}

/// Fills `buf` from `r` up to its capacity or the end of the input; the bytes read.
async fn fill<R: AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
    want: usize,
) -> std::io::Result<usize> {
    buf.clear();
    buf.resize(want, 0);
    let mut got = 0;
    while got < want {
        let n = r.read(&mut buf[got..]).await?;
        if n == 0 {
            break;
        }
        got += n;
    }
    buf.truncate(got);
    Ok(got)
}

/// Encrypts `plaintext` to `blob` under a fresh [`StreamKey`], chunk by chunk (CONTENT-25b),
/// and pads the blob (CONTENT-25d). Holds one chunk in memory.
pub async fn encrypt_stream<R, W>(
    plaintext: &mut R,
    blob: &mut W,
) -> Result<SealedStream, StreamError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let key = StreamKey::generate();
    let cipher = ChaCha20Poly1305::new(Key::from_slice(&key.key));
    let mut hash = Sha256::new();
    let mut buf = Vec::with_capacity(STREAM_CHUNK + STREAM_TAG);
    let (mut size, mut chunk) = (0u64, 0u64);
    loop {
        let n = fill(plaintext, &mut buf, STREAM_CHUNK).await?;
        size += n as u64;
        if size > MAX_STREAM_PLAINTEXT {
            return Err(StreamError::TooLarge {
                max: MAX_STREAM_PLAINTEXT,
            });
        }
        let last = n < STREAM_CHUNK;
        let tag = cipher
            .encrypt_in_place_detached(&key.nonce(chunk, last), STREAM_AAD, &mut buf)
            .map_err(|_| std::io::Error::other("chunk encryption failed"))?;
        buf.extend_from_slice(&tag);
        hash.update(&buf);
        blob.write_all(&buf).await?;
        if last {
            break;
        }
        chunk += 1;
    }
    let written = stream_len(size);
    let blob_len = padded_len(written);
    write_padding(blob, &mut hash, blob_len - written).await?;
    blob.flush().await?;
    buf.zeroize();
    Ok(SealedStream {
        key,
        digest: hash.finalize().into(),
        size,
        blob_len,
    })
}

async fn write_padding<W: AsyncWrite + Unpin>(
    w: &mut W,
    hash: &mut Sha256,
    mut n: u64,
) -> std::io::Result<()> {
    let zeros = [0u8; 8192];
    while n > 0 {
        let k = n.min(zeros.len() as u64) as usize;
        hash.update(&zeros[..k]);
        w.write_all(&zeros[..k]).await?;
        n -= k as u64;
    }
    Ok(())
}

/// Decrypts `blob`, the blob of a plaintext of `size` bytes, to `out` chunk by chunk
/// (CONTENT-25c): each chunk is written only after its tag verified. Then checks the padding
/// (CONTENT-25d) and the digest (CONTENT-25e). On an error, `out` may hold a prefix of the
/// plaintext that the caller must discard (see the module documentation).
pub async fn decrypt_stream<R, W>(
    key: &StreamKey,
    digest: &[u8; 32],
    size: u64,
    blob: &mut R,
    out: &mut W,
) -> Result<(), StreamError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    if size > MAX_STREAM_PLAINTEXT {
        return Err(StreamError::TooLarge {
            max: MAX_STREAM_PLAINTEXT,
        });
    }
    let cipher = ChaCha20Poly1305::new(Key::from_slice(&key.key));
    let mut hash = Sha256::new();
    let mut buf = Vec::with_capacity(STREAM_CHUNK + STREAM_TAG);
    let chunks = size / STREAM_CHUNK as u64 + 1;
    for chunk in 0..chunks {
        let last = chunk + 1 == chunks;
        let plain = if last {
            (size % STREAM_CHUNK as u64) as usize
        } else {
            STREAM_CHUNK
        };
        let want = plain + STREAM_TAG;
        if fill(blob, &mut buf, want).await? < want {
            return Err(StreamError::Truncated { chunk });
        }
        hash.update(&buf);
        let tag = Tag::clone_from_slice(&buf[plain..]);
        buf.truncate(plain);
        cipher
            .decrypt_in_place_detached(&key.nonce(chunk, last), STREAM_AAD, &mut buf, &tag)
            .map_err(|_| StreamError::ChunkAuthentication { chunk })?;
        out.write_all(&buf).await?;
    }
    buf.zeroize();
    check_padding(blob, &mut hash, stream_len(size)).await?;
    if <[u8; 32]>::from(hash.finalize()) != *digest {
        return Err(StreamError::DigestMismatch);
    }
    out.flush().await?;
    Ok(())
}

/// Reads the rest of the blob: exactly the zero padding of a stream of `written` bytes.
async fn check_padding<R: AsyncRead + Unpin>(
    r: &mut R,
    hash: &mut Sha256,
    written: u64,
) -> Result<(), StreamError> {
    let mut left = padded_len(written) - written;
    let mut buf = [0u8; 8192];
    loop {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        if n as u64 > left || buf[..n].iter().any(|&b| b != 0) {
            return Err(StreamError::TrailingData);
        }
        hash.update(&buf[..n]);
        left -= n as u64;
    }
    if left != 0 {
        return Err(StreamError::TrailingData);
    }
    Ok(())
}

/// Decrypts the blob in file `blob` to the file `target` (CONTENT-25f): into a temporary file
/// in `target`'s directory first, renamed to `target` only when every chunk, the padding and
/// the digest checked out. On any error the temporary is removed and `target` is untouched.
pub async fn decrypt_stream_to_path(
    key: &StreamKey,
    digest: &[u8; 32],
    size: u64,
    blob: &Path,
    target: &Path,
) -> Result<(), StreamError> {
    let dir = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".atmls-part-{}",
        hex::encode(rand::random::<[u8; 8]>())
    ));
    let result = async {
        let mut input = tokio::io::BufReader::new(tokio::fs::File::open(blob).await?);
        let mut output = tokio::io::BufWriter::new(tokio::fs::File::create(&tmp).await?);
        decrypt_stream(key, digest, size, &mut input, &mut output).await?;
        output.into_inner().sync_all().await?;
        tokio::fs::rename(&tmp, target).await?;
        Ok(())
    }
    .await;
    if result.is_err() {
        let _ = tokio::fs::remove_file(&tmp).await;
    }
    result
}

#[cfg(test)]
mod tests;
