//! This device's store, encrypted at rest (spec/storage.md STORE-6 to STORE-9) under a
//! passphrase from `ATMLS_PASSPHRASE` or typed, through Argon2id; a plain store is encrypted
//! in place the first time. A command works on one store: the key is derived once (Argon2id
//! is slow on purpose) and serves every connection the command opens to it.

use std::io::{BufRead, IsTerminal};
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use atmls::storage::{
    KeyProvider, KeyProviderError, KeyPurpose, PassphraseKey, StorageError, Store,
};
use zeroize::Zeroizing;

use crate::ctx::Res;

/// The passphrase's key, derived at the first opening and kept for the command's others.
struct CachedKey {
    passphrase: PassphraseKey,
    key: Mutex<Option<Zeroizing<[u8; 32]>>>,
}

impl KeyProvider for CachedKey {
    fn key(&self, purpose: KeyPurpose) -> Result<Zeroizing<[u8; 32]>, KeyProviderError> {
        let mut held = self.key.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(k) = held.as_ref() {
            return Ok(k.clone());
        }
        let k = self.passphrase.key(purpose)?;
        *held = Some(k.clone());
        Ok(k)
    }
}

/// The store's passphrase: `ATMLS_PASSPHRASE`, else typed (without echo on a terminal).
fn passphrase() -> Res<Zeroizing<String>> {
    if let Ok(p) = std::env::var("ATMLS_PASSPHRASE") {
        if !p.is_empty() {
            return Ok(Zeroizing::new(p));
        }
    }
    let typed = if std::io::stdin().is_terminal() {
        rpassword::prompt_password("store passphrase: ").unwrap_or_default()
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line
    };
    let p = Zeroizing::new(typed.trim_end_matches(['\r', '\n']).to_owned());
    if p.is_empty() {
        return Err(
            "no passphrase for the store (set ATMLS_PASSPHRASE or type it): it is encrypted at rest"
                .into(),
        );
    }
    Ok(p)
}

fn keys(path: &Path) -> Res<&'static CachedKey> {
    static KEYS: OnceLock<CachedKey> = OnceLock::new();
    if let Some(k) = KEYS.get() {
        return Ok(k);
    }
    let pass = passphrase()?;
    Ok(KEYS.get_or_init(|| CachedKey {
        passphrase: PassphraseKey::new(&pass, PassphraseKey::salt_file_for(path)),
        key: Mutex::new(None),
    }))
}

/// Opens the device's store at `path` encrypted (a plain one is encrypted in place), with
/// errors that say what to do.
pub fn open(path: &Path) -> Res<Store> {
    let keys = keys(path)?;
    if is_plain_sqlite(path) {
        eprintln!("encrypting the plain store {} in place", path.display());
    }
    Store::open_encrypted(path, keys).map_err(|e| match e {
        StorageError::WrongKey => format!(
            "wrong passphrase for the store {}, or it is not an atmls store: check \
             ATMLS_PASSPHRASE (or what you typed) and try again",
            path.display()
        )
        .into(),
        StorageError::Key(KeyProviderError::Missing(_)) => format!(
            "the store {} is encrypted but its salt file {} is missing: restore it from your \
             backup (without it the store cannot be opened)",
            path.display(),
            PassphraseKey::salt_file_for(path).display()
        )
        .into(),
        e => e.into(),
    })
}

/// Whether the file at `path` is a plain SQLite database (by its header).
fn is_plain_sqlite(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 16];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| &head == b"SQLite format 3\0")
}
