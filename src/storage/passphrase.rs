//! A store key from a passphrase (spec/storage.md STORE-7): Argon2id over the passphrase and a
//! random salt kept in a small file beside the database.

use std::io::Write;
use std::path::{Path, PathBuf};

use argon2::{Algorithm, Argon2, Params, Version};
use zeroize::Zeroizing;

use super::keys::{KeyProvider, KeyProviderError, KeyPurpose};

/// First bytes of a salt file (version 1: Argon2id, one lane).
const MAGIC: &[u8; 8] = b"atmlsdk1";
const FILE_LEN: usize = 8 + 4 + 4 + 16;
/// Cost of new salt files: 64 MiB, 3 passes, one lane (RFC 9106's second recommendation
/// with one lane; the cost of the identity recovery export too).
const DEFAULT_MEMORY_KIB: u32 = 64 * 1024;
const DEFAULT_PASSES: u32 = 3;
/// The weakest cost accepted (OWASP's minimum for Argon2id: 19 MiB, 2 passes), so a tampered
/// salt file cannot make guessing cheap; the largest (1 GiB, 10 passes), so it cannot exhaust
/// memory or time.
const MIN_MEMORY_KIB: u32 = 19 * 1024;
const MAX_MEMORY_KIB: u32 = 1024 * 1024;
const MIN_PASSES: u32 = 2;
const MAX_PASSES: u32 = 10;

/// A [`KeyProvider`] that derives the store's key from a passphrase with Argon2id (64 MiB, 3
/// passes by default). Its random salt and cost live in a 32-byte file beside the database
/// ([`PassphraseKey::salt_file_for`]: `<store>.kdf`), written when the store is first
/// encrypted. The salt is not secret, but the store cannot be opened without it: back it up
/// with the database.
///
/// ```
/// use atmls::storage::{KeyProvider, KeyPurpose, PassphraseKey};
/// let dir = tempfile::tempdir()?;
/// let db = dir.path().join("atmls.db");
/// let keys = PassphraseKey::new("correct horse battery staple", PassphraseKey::salt_file_for(&db))
///     .cost(19 * 1024, 2); // the weakest cost accepted, to keep the example quick
/// let k = keys.key(KeyPurpose::Create)?;
/// // Another passphrase, the same salt: another key.
/// let other = PassphraseKey::new("tr0ub4dor&3", PassphraseKey::salt_file_for(&db));
/// assert_ne!(other.key(KeyPurpose::Open)?, k);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct PassphraseKey {
    passphrase: Zeroizing<String>,
    salt_file: PathBuf,
    memory_kib: u32,
    passes: u32,
}

impl std::fmt::Debug for PassphraseKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PassphraseKey")
            .field("salt_file", &self.salt_file)
            .finish_non_exhaustive()
    }
}

impl PassphraseKey {
    /// A provider for `passphrase`, with its salt in `salt_file`.
    ///
    /// ```
    /// use atmls::storage::PassphraseKey;
    /// let keys = PassphraseKey::new("correct horse battery staple", "/var/lib/app/atmls.db.kdf");
    /// # drop(keys);
    /// ```
    pub fn new(passphrase: &str, salt_file: impl Into<PathBuf>) -> Self {
        PassphraseKey {
            passphrase: Zeroizing::new(passphrase.to_owned()),
            salt_file: salt_file.into(),
            memory_kib: DEFAULT_MEMORY_KIB,
            passes: DEFAULT_PASSES,
        }
    }

    /// The salt file of the store at `store`: `<store>.kdf` beside it.
    ///
    /// ```
    /// use atmls::storage::PassphraseKey;
    /// let f = PassphraseKey::salt_file_for(std::path::Path::new("/data/atmls.db"));
    /// assert_eq!(f, std::path::Path::new("/data/atmls.db.kdf"));
    /// ```
    pub fn salt_file_for(store: &Path) -> PathBuf {
        let mut s = store.as_os_str().to_owned();
        s.push(".kdf");
        PathBuf::from(s)
    }

    /// The Argon2id cost of a new salt file: memory in KiB (19 MiB to 1 GiB) and passes (2 to
    /// 10). An existing salt file keeps the cost it was written with.
    ///
    /// ```
    /// use atmls::storage::{KeyProvider, KeyProviderError, KeyPurpose, PassphraseKey};
    /// let dir = tempfile::tempdir()?;
    /// let too_cheap = PassphraseKey::new("pass phrase", dir.path().join("a.kdf")).cost(1024, 1);
    /// assert!(matches!(too_cheap.key(KeyPurpose::Create), Err(KeyProviderError::Invalid(_))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cost(mut self, memory_kib: u32, passes: u32) -> Self {
        self.memory_kib = memory_kib;
        self.passes = passes;
        self
    }

    /// The salt file's content, or a new one written atomically when the store is new.
    fn salt(&self, purpose: KeyPurpose) -> Result<SaltFile, KeyProviderError> {
        match std::fs::read(&self.salt_file) {
            Ok(bytes) => SaltFile::parse(&bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => match purpose {
                KeyPurpose::Create => self.write_new(),
                KeyPurpose::Open => Err(KeyProviderError::Missing(format!(
                    "the salt file {} is gone; restore it from a backup",
                    self.salt_file.display()
                ))),
            },
            Err(e) => Err(e.into()),
        }
    }

    fn write_new(&self) -> Result<SaltFile, KeyProviderError> {
        let s = SaltFile {
            memory_kib: self.memory_kib,
            passes: self.passes,
            salt: rand::random(),
        };
        s.check()?;
        // Written beside, synced, then renamed: a crash leaves no half-written salt file.
        let mut tmp = self.salt_file.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&s.encode())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &self.salt_file)?;
        super::encryption::sync_dir(&self.salt_file)?;
        Ok(s)
    }
}

impl KeyProvider for PassphraseKey {
    fn key(&self, purpose: KeyPurpose) -> Result<Zeroizing<[u8; 32]>, KeyProviderError> {
        if self.passphrase.is_empty() {
            return Err(KeyProviderError::Invalid("an empty passphrase".into()));
        }
        let s = self.salt(purpose)?;
        let params = Params::new(s.memory_kib, s.passes, 1, Some(32))
            .map_err(|e| KeyProviderError::Invalid(e.to_string()))?;
        let mut out = Zeroizing::new([0u8; 32]);
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(self.passphrase.as_bytes(), &s.salt, &mut out[..])
            .map_err(|e| KeyProviderError::Invalid(e.to_string()))?;
        Ok(out)
    }
}

/// A salt file: magic, memory cost (KiB) and passes (big-endian), 16-byte salt.
#[derive(Debug, PartialEq, Eq)]
struct SaltFile {
    memory_kib: u32,
    passes: u32,
    salt: [u8; 16],
}

impl SaltFile {
    fn parse(b: &[u8]) -> Result<Self, KeyProviderError> {
        let bad = || KeyProviderError::Invalid("not an atmls salt file".into());
        if b.len() != FILE_LEN || &b[..8] != MAGIC {
            return Err(bad());
        }
        let word = |i: usize| b[i..i + 4].try_into().map(u32::from_be_bytes);
        let s = SaltFile {
            memory_kib: word(8).map_err(|_| bad())?,
            passes: word(12).map_err(|_| bad())?,
            salt: b[16..].try_into().map_err(|_| bad())?,
        };
        s.check()?;
        Ok(s)
    }

    fn check(&self) -> Result<(), KeyProviderError> {
        if (MIN_MEMORY_KIB..=MAX_MEMORY_KIB).contains(&self.memory_kib)
            && (MIN_PASSES..=MAX_PASSES).contains(&self.passes)
        {
            return Ok(());
        }
        Err(KeyProviderError::Invalid(format!(
            "Argon2id cost {} KiB, {} passes: allowed are {MIN_MEMORY_KIB} to {MAX_MEMORY_KIB} \
             KiB and {MIN_PASSES} to {MAX_PASSES} passes",
            self.memory_kib, self.passes
        )))
    }

    fn encode(&self) -> [u8; FILE_LEN] {
        let mut b = [0u8; FILE_LEN];
        b[..8].copy_from_slice(MAGIC);
        b[8..12].copy_from_slice(&self.memory_kib.to_be_bytes());
        b[12..16].copy_from_slice(&self.passes.to_be_bytes());
        b[16..].copy_from_slice(&self.salt);
        b
    }
}

// Test code: `unwrap` only on files the tests write themselves in a temporary directory.
#[cfg(test)]
mod tests {
    use super::*;

    fn quick(pass: &str, f: &Path) -> PassphraseKey {
        PassphraseKey::new(pass, f).cost(MIN_MEMORY_KIB, MIN_PASSES)
    }

    /// STORE-7: the salt file is written once, read back, and the same passphrase gives the
    /// same key; another passphrase another key.
    #[test]
    fn store_7_a_passphrase_key_is_stable_and_depends_on_the_passphrase() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("s.db.kdf");
        let k = quick("one passphrase", &f).key(KeyPurpose::Create).unwrap();
        assert_eq!(std::fs::read(&f).unwrap().len(), FILE_LEN);
        assert_eq!(
            quick("one passphrase", &f).key(KeyPurpose::Open).unwrap(),
            k
        );
        assert_ne!(
            quick("two passphrase", &f).key(KeyPurpose::Open).unwrap(),
            k
        );
        // The cost asked now does not override the file's.
        let again = PassphraseKey::new("one passphrase", &f).key(KeyPurpose::Open);
        assert_eq!(again.unwrap(), k);
    }

    /// STORE-7: without its salt file an encrypted store has no key (never a new salt); an
    /// empty passphrase, a malformed file or a cost out of bounds are refused.
    #[test]
    fn store_7_a_missing_or_bad_salt_file_or_empty_passphrase_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("s.db.kdf");
        let e = quick("pass", &f).key(KeyPurpose::Open).unwrap_err();
        assert!(
            matches!(e, KeyProviderError::Missing(_)) && !e.is_retryable(),
            "{e}"
        );
        assert!(!f.exists());
        let e = quick("", &f).key(KeyPurpose::Create).unwrap_err();
        assert!(matches!(e, KeyProviderError::Invalid(_)), "{e}");
        assert!(!f.exists());
        for bytes in [
            b"garbage".to_vec(),
            SaltFile {
                memory_kib: u32::MAX,
                passes: 3,
                salt: [1; 16],
            }
            .encode()
            .to_vec(),
            SaltFile {
                memory_kib: MIN_MEMORY_KIB,
                passes: 1,
                salt: [1; 16],
            }
            .encode()
            .to_vec(),
        ] {
            std::fs::write(&f, &bytes).unwrap();
            let e = quick("pass", &f).key(KeyPurpose::Open).unwrap_err();
            assert!(matches!(e, KeyProviderError::Invalid(_)), "{e}");
            assert_eq!(std::fs::read(&f).unwrap(), bytes, "left as it was");
        }
    }
}
