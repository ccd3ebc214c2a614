//! The openmls provider over one SQLite connection (usually inside a transaction).

use openmls_rust_crypto::RustCrypto;
use openmls_sqlite_storage::{Codec, SqliteStorageProvider};
use openmls_traits::OpenMlsProvider;
use rusqlite::Connection;

/// How openmls values are encoded in SQLite (STORE-4, spec/large-groups.md LG-1).
///
/// The large values of a group (its ratchet tree, its message secrets, its epoch secrets) are
/// postcard, and LZ4 on top when long (the secret tree is mostly empty slots), behind a
/// one-byte tag that JSON never starts with. Everything else stays JSON: keys must encode
/// as they always did, or rows written by earlier versions would no longer be found, and
/// openmls's join config needs a self-describing format. Reading goes by the tag, so JSON
/// values of existing stores stay readable and are rewritten compactly on their next write.
#[doc(hidden)]
#[derive(Default)]
pub struct StorageCodec;

/// Tag of a postcard value.
const TAG_POSTCARD: u8 = 0x01;
/// Tag of an LZ4 block (`u32` little-endian plain length, then the block) of a postcard value.
const TAG_POSTCARD_LZ4: u8 = 0x02;
/// Postcard values at least this long are compressed.
const LZ4_FROM: usize = 512;
/// Postcard values at least this long are compressed only if samples of them compress by a
/// quarter (LG-1): the ratchet tree, mostly keys and signatures, saves a fifth for 5 ms of
/// every commit at 10,000 members, and is stored plain.
const SAMPLE_FROM: usize = 256 << 10;
/// The samples, evenly spread over the value (a tree's leaves and parents differ).
const SAMPLES: usize = 8;
const SAMPLE_LEN: usize = 4 << 10;
/// A stored value never decompresses to more than this (a corrupt length cannot make us
/// allocate more).
const MAX_PLAIN: usize = 1 << 30;

/// The openmls types stored compactly, by the end of their type name. Only entities (never
/// keys) and never the join config.
const COMPACT_TYPES: &[&str] = &["::TreeSync", "::MessageSecretsStore", "::GroupEpochSecrets"];

fn is_compact<T: ?Sized>() -> bool {
    let name = std::any::type_name::<T>().trim_start_matches('&');
    COMPACT_TYPES.iter().any(|t| name.ends_with(t))
}

/// Why a stored openmls value could not be encoded or decoded.
#[doc(hidden)]
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// A JSON value.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    /// A postcard value.
    #[error("postcard: {0}")]
    Postcard(#[from] postcard::Error),
    /// An LZ4 block.
    #[error("lz4: {0}")]
    Lz4(#[from] lz4_flex::block::DecompressError),
    /// A compressed value's length prefix.
    #[error("compressed value too short or too large")]
    Length,
}

impl Codec for StorageCodec {
    type Error = CodecError;

    fn to_vec<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, Self::Error> {
        if !is_compact::<T>() {
            return Ok(serde_json::to_vec(value)?);
        }
        encode_compact(value)
    }

    fn from_slice<T: serde::de::DeserializeOwned>(slice: &[u8]) -> Result<T, Self::Error> {
        decode(slice)
    }
}

thread_local! {
    /// Where postcard encodes before the value is tagged (and compressed). A 10,000-member tree
    /// is about 1.7 MB: grown from empty for every commit, the vector was copied about twice
    /// over; kept, it is written once.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A scratch buffer larger than this is not kept after use.
const SCRATCH_KEEP: usize = 64 << 20;

fn encode_compact<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    SCRATCH.with(|cell| {
        // Taken out, so a value whose encoding re-entered the codec would find an empty one.
        let mut buf = cell.take();
        buf.clear();
        let plain = postcard::to_extend(value, buf)?;
        let out = tag_compact(&plain);
        if plain.capacity() <= SCRATCH_KEEP {
            cell.replace(plain);
        }
        out
    })
}

/// Tags an encoded value, compressing it when long.
fn tag_compact(plain: &[u8]) -> Result<Vec<u8>, CodecError> {
    if plain.len() < LZ4_FROM || !compresses(plain) {
        let mut out = Vec::with_capacity(plain.len() + 1);
        out.push(TAG_POSTCARD);
        out.extend_from_slice(plain);
        return Ok(out);
    }
    let len = u32::try_from(plain.len()).map_err(|_| CodecError::Length)?;
    // Compressed in place behind the tag and length, not into a block then copied.
    let mut out = vec![0u8; 5 + lz4_flex::block::get_maximum_output_size(plain.len())];
    out[0] = TAG_POSTCARD_LZ4;
    out[1..5].copy_from_slice(&len.to_le_bytes());
    let n = lz4_flex::block::compress_into(plain, &mut out[5..]).map_err(|_| CodecError::Length)?;
    out.truncate(5 + n);
    Ok(out)
}

/// Whether LZ4 saves at least a quarter of `plain`, judged from samples when it is long.
fn compresses(plain: &[u8]) -> bool {
    if plain.len() < SAMPLE_FROM {
        return true;
    }
    let mut block = vec![0u8; lz4_flex::block::get_maximum_output_size(SAMPLE_LEN)];
    let stride = (plain.len() - SAMPLE_LEN) / (SAMPLES - 1);
    let mut compressed = 0;
    for k in 0..SAMPLES {
        let sample = plain
            .get(k * stride..k * stride + SAMPLE_LEN)
            .unwrap_or_default();
        compressed += lz4_flex::block::compress_into(sample, &mut block).unwrap_or(SAMPLE_LEN);
    }
    compressed * 4 <= 3 * SAMPLES * SAMPLE_LEN
}

fn decode<T: serde::de::DeserializeOwned>(slice: &[u8]) -> Result<T, CodecError> {
    match slice.split_first() {
        Some((&TAG_POSTCARD, rest)) => Ok(postcard::from_bytes(rest)?),
        Some((&TAG_POSTCARD_LZ4, rest)) => {
            let (len, block) = rest.split_first_chunk::<4>().ok_or(CodecError::Length)?;
            let len = u32::from_le_bytes(*len) as usize;
            if len > MAX_PLAIN {
                return Err(CodecError::Length);
            }
            let plain = lz4_flex::block::decompress(block, len)?;
            Ok(postcard::from_bytes(&plain)?)
        }
        // JSON (values written before the compact codec, and every non-compact type).
        _ => Ok(serde_json::from_slice(slice)?),
    }
}

/// openmls's view of our state for the length of one operation.
pub(crate) struct Provider<'a> {
    crypto: &'a RustCrypto,
    storage: SqliteStorageProvider<StorageCodec, &'a Connection>,
}

impl<'a> Provider<'a> {
    pub(crate) fn new(crypto: &'a RustCrypto, conn: &'a Connection) -> Self {
        Provider {
            crypto,
            storage: SqliteStorageProvider::new(conn),
        }
    }
}

impl<'a> OpenMlsProvider for Provider<'a> {
    type CryptoProvider = RustCrypto;
    type RandProvider = RustCrypto;
    type StorageProvider = SqliteStorageProvider<StorageCodec, &'a Connection>;

    fn storage(&self) -> &Self::StorageProvider {
        &self.storage
    }

    fn crypto(&self) -> &Self::CryptoProvider {
        self.crypto
    }

    fn rand(&self) -> &Self::RandProvider {
        self.crypto
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openmls::prelude::{
        BasicCredential, Ciphersuite, CredentialWithKey, GroupId, MlsGroup, MlsGroupCreateConfig,
    };
    use openmls_basic_credential::SignatureKeyPair;

    const CS: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;

    /// The codec every store used before the compact one.
    #[derive(Default)]
    struct Json;
    impl Codec for Json {
        type Error = serde_json::Error;
        fn to_vec<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, Self::Error> {
            serde_json::to_vec(value)
        }
        fn from_slice<T: serde::de::DeserializeOwned>(slice: &[u8]) -> Result<T, Self::Error> {
            serde_json::from_slice(slice)
        }
    }

    fn new_group<P: OpenMlsProvider>(p: &P) -> (MlsGroup, SignatureKeyPair) {
        let signer = SignatureKeyPair::new(CS.signature_algorithm()).unwrap();
        signer.store(p.storage()).unwrap();
        let cwk = CredentialWithKey {
            credential: BasicCredential::new(b"a".to_vec()).into(),
            signature_key: signer.public().into(),
        };
        let config = MlsGroupCreateConfig::builder()
            .ciphersuite(CS)
            .use_ratchet_tree_extension(true)
            .build();
        let g = MlsGroup::new_with_group_id(p, &signer, &config, GroupId::from_slice(b"g"), cwk)
            .unwrap();
        (g, signer)
    }

    fn first_byte(c: &Connection, data_type: &str) -> u8 {
        c.query_row(
            "SELECT group_data FROM openmls_group_data WHERE data_type = ?1",
            [data_type],
            |r| r.get::<_, Vec<u8>>(0),
        )
        .unwrap()[0]
    }

    #[test]
    fn lg_1_large_values_compact_keys_and_join_config_json() {
        let store = crate::storage::Store::in_memory().unwrap();
        let crypto = RustCrypto::default();
        let p = Provider::new(&crypto, &store.conn);
        let (mut g, signer) = new_group(&p);
        g.create_message(&p, &signer, b"hi").unwrap();
        for t in ["tree", "message_secrets", "group_epoch_secrets"] {
            assert!(
                [TAG_POSTCARD, TAG_POSTCARD_LZ4].contains(&first_byte(&store.conn, t)),
                "{t} not compact"
            );
        }
        assert_eq!(first_byte(&store.conn, "join_group_config"), b'{');
        // The key (group id) is the JSON encoding it always was.
        let key: Vec<u8> = store
            .conn
            .query_row(
                "SELECT group_id FROM openmls_group_data WHERE data_type = 'tree'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(key, serde_json::to_vec(&GroupId::from_slice(b"g")).unwrap());
        let loaded = MlsGroup::load(p.storage(), g.group_id()).unwrap().unwrap();
        assert_eq!(loaded.epoch(), g.epoch());
    }

    #[test]
    fn lg_1_json_values_of_older_stores_stay_readable() {
        let store = crate::storage::Store::in_memory().unwrap();
        let crypto = RustCrypto::default();
        // Written the old way...
        let old = SqliteStorageProvider::<Json, &Connection>::new(&store.conn);
        struct Old<'a>(&'a RustCrypto, SqliteStorageProvider<Json, &'a Connection>);
        impl<'a> OpenMlsProvider for Old<'a> {
            type CryptoProvider = RustCrypto;
            type RandProvider = RustCrypto;
            type StorageProvider = SqliteStorageProvider<Json, &'a Connection>;
            fn storage(&self) -> &Self::StorageProvider {
                &self.1
            }
            fn crypto(&self) -> &Self::CryptoProvider {
                self.0
            }
            fn rand(&self) -> &Self::RandProvider {
                self.0
            }
        }
        let (g, _) = new_group(&Old(&crypto, old));
        assert_eq!(first_byte(&store.conn, "tree"), b'{');
        // ... read, used and rewritten by the compact codec.
        let p = Provider::new(&crypto, &store.conn);
        let mut loaded = MlsGroup::load(p.storage(), g.group_id()).unwrap().unwrap();
        let signer = SignatureKeyPair::read(
            p.storage(),
            loaded.own_leaf_node().unwrap().signature_key().as_slice(),
            CS.signature_algorithm(),
        )
        .unwrap();
        loaded.create_message(&p, &signer, b"hi").unwrap();
        assert!(
            [TAG_POSTCARD, TAG_POSTCARD_LZ4].contains(&first_byte(&store.conn, "message_secrets"))
        );
        let again = MlsGroup::load(p.storage(), g.group_id()).unwrap().unwrap();
        assert_eq!(again.epoch(), g.epoch());
    }

    #[test]
    fn lg_1_long_values_are_compressed_and_round_trip() {
        let v: Vec<Option<u64>> = (0..20_000).map(|i| (i % 97 == 0).then_some(i)).collect();
        let bytes = encode_compact(&v).unwrap();
        assert_eq!(bytes[0], TAG_POSTCARD_LZ4);
        assert!(bytes.len() < postcard::to_allocvec(&v).unwrap().len() / 4);
        assert_eq!(
            StorageCodec::from_slice::<Vec<Option<u64>>>(&bytes).unwrap(),
            v
        );
        let short = encode_compact(&7u64).unwrap();
        assert_eq!(short[0], TAG_POSTCARD);
        assert_eq!(StorageCodec::from_slice::<u64>(&short).unwrap(), 7);
    }

    /// A long value that does not compress (keys, signatures) is stored plain; one that does,
    /// compressed; both round-trip.
    #[test]
    fn lg_1_long_values_are_compressed_only_when_it_pays() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let random: Vec<u64> = (0..60_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x
            })
            .collect();
        let plain = postcard::to_allocvec(&random).unwrap();
        assert!(plain.len() >= SAMPLE_FROM);
        let bytes = encode_compact(&random).unwrap();
        assert_eq!(bytes.first(), Some(&TAG_POSTCARD));
        assert_eq!(bytes.len(), plain.len() + 1);
        assert_eq!(decode::<Vec<u64>>(&bytes).unwrap(), random);

        let sparse: Vec<Option<u64>> = (0..SAMPLE_FROM as u64)
            .map(|i| (i % 97 == 0).then_some(i))
            .collect();
        let bytes = encode_compact(&sparse).unwrap();
        assert_eq!(bytes.first(), Some(&TAG_POSTCARD_LZ4));
        assert_eq!(decode::<Vec<Option<u64>>>(&bytes).unwrap(), sparse);
    }

    /// The scratch buffer is reused: a short value encoded after a long one carries none of
    /// the long one's bytes, and encoding is the same every time.
    #[test]
    fn lg_1_scratch_buffer_reuse() {
        let long: Vec<u64> = (0..50_000).collect();
        let short: Vec<u64> = vec![7, 8, 9];
        let first = encode_compact(&short).unwrap();
        let long_bytes = encode_compact(&long).unwrap();
        let again = encode_compact(&short).unwrap();
        assert_eq!(first, again);
        assert_eq!(again.first(), Some(&TAG_POSTCARD));
        assert_eq!(decode::<Vec<u64>>(&again).unwrap(), short);
        assert_eq!(long_bytes.first(), Some(&TAG_POSTCARD_LZ4));
        assert_eq!(decode::<Vec<u64>>(&long_bytes).unwrap(), long);
        assert_eq!(encode_compact(&long).unwrap(), long_bytes);
    }

    #[test]
    fn lg_1_corrupt_compact_values_are_errors() {
        type V = Vec<u64>;
        assert!(StorageCodec::from_slice::<V>(&[TAG_POSTCARD_LZ4]).is_err());
        assert!(
            StorageCodec::from_slice::<V>(&[TAG_POSTCARD_LZ4, 0xff, 0xff, 0xff, 0xff]).is_err()
        );
        assert!(StorageCodec::from_slice::<V>(&[TAG_POSTCARD_LZ4, 9, 0, 0, 0, 0xf0, 1]).is_err());
        assert!(StorageCodec::from_slice::<V>(&[TAG_POSTCARD, 0xff]).is_err());
        assert!(StorageCodec::from_slice::<V>(b"[1,").is_err());
    }
}
