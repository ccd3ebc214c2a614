//! Where the key of an encrypted store comes from (spec/storage.md STORE-7): a
//! [`KeyProvider`] that the app implements over the platform keychain or secure enclave, or
//! [`PassphraseKey`](super::PassphraseKey) for a passphrase.

use zeroize::Zeroizing;

/// Whether the key is asked for a store that is already encrypted.
///
/// ```
/// use atmls::storage::KeyPurpose;
/// // A keychain provider creates its key only for a store that is not encrypted yet.
/// let may_create = |p: KeyPurpose| p == KeyPurpose::Create;
/// assert!(may_create(KeyPurpose::Create) && !may_create(KeyPurpose::Open));
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPurpose {
    /// No encrypted store exists at the path yet (a new store, or a plain one about to be
    /// encrypted in place): the provider may create the key now, and must keep it.
    Create,
    /// The store is encrypted: the key must be the one it was created with. A provider that
    /// has none must say so ([`KeyProviderError::Missing`]) rather than make a new one.
    Open,
}

/// The key of an encrypted store: 32 random-looking bytes, used as SQLCipher's raw key (its
/// own passphrase derivation is skipped, STORE-6). Apps implement it with the platform
/// keychain or secure enclave; [`PassphraseKey`](super::PassphraseKey) derives it from a
/// passphrase.
///
/// ```
/// use atmls::storage::{KeyProvider, KeyProviderError, KeyPurpose};
/// use zeroize::Zeroizing;
///
/// /// A stand-in for a keychain item (a real app asks the platform's keychain).
/// struct Keychain(std::sync::Mutex<Option<[u8; 32]>>);
///
/// impl KeyProvider for Keychain {
///     fn key(&self, purpose: KeyPurpose) -> Result<Zeroizing<[u8; 32]>, KeyProviderError> {
///         let mut item = self.0.lock().map_err(|_| KeyProviderError::Unavailable("lock".into()))?;
///         match (*item, purpose) {
///             (Some(k), _) => Ok(Zeroizing::new(k)),
///             (None, KeyPurpose::Create) => Ok(Zeroizing::new(*item.insert(rand::random()))),
///             (None, _) => Err(KeyProviderError::Missing("no keychain item".into())),
///         }
///     }
/// }
///
/// let keychain = Keychain(Default::default());
/// assert!(matches!(keychain.key(KeyPurpose::Open), Err(KeyProviderError::Missing(_))));
/// let k = keychain.key(KeyPurpose::Create)?;
/// assert_eq!(keychain.key(KeyPurpose::Open)?, k);
/// # Ok::<(), KeyProviderError>(())
/// ```
pub trait KeyProvider {
    /// The store's key. Called once per opening, before anything is read from the store.
    ///
    /// ```
    /// use atmls::storage::{KeyProvider, KeyPurpose, PassphraseKey};
    /// let dir = tempfile::tempdir()?;
    /// let keys = PassphraseKey::new("correct horse battery staple", dir.path().join("a.db.kdf"))
    ///     .cost(19 * 1024, 2);
    /// let k = keys.key(KeyPurpose::Create)?;
    /// assert_eq!(keys.key(KeyPurpose::Open)?, k);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn key(&self, purpose: KeyPurpose) -> Result<Zeroizing<[u8; 32]>, KeyProviderError>;
}

/// Why a [`KeyProvider`] gave no key.
///
/// ```
/// use atmls::storage::KeyProviderError;
/// assert!(KeyProviderError::Unavailable("keychain locked".into()).is_retryable());
/// assert!(!KeyProviderError::Missing("no keychain item".into()).is_retryable());
/// ```
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum KeyProviderError {
    /// The key cannot be had now (a locked keychain, a dismissed prompt): retrying later can
    /// help.
    #[error("the store's key is unavailable: {0}")]
    Unavailable(String),
    /// There is no key for this encrypted store (its keychain item or its salt file is gone):
    /// it cannot be opened. Restore what was lost; retrying does not help.
    #[error("there is no key for this store: {0}")]
    Missing(String),
    /// The provider's own material is unusable (an empty passphrase, a malformed salt file,
    /// cost parameters out of bounds).
    #[error("unusable key material: {0}")]
    Invalid(String),
    /// Reading or writing the provider's files failed.
    #[error("key file: {0}")]
    Io(#[from] std::io::Error),
}

impl KeyProviderError {
    /// Whether retrying can help (a locked keychain; an interrupted read).
    ///
    /// ```
    /// use atmls::storage::KeyProviderError;
    /// assert!(!KeyProviderError::Invalid("empty passphrase".into()).is_retryable());
    /// ```
    pub fn is_retryable(&self) -> bool {
        match self {
            KeyProviderError::Unavailable(_) => true,
            KeyProviderError::Io(e) => matches!(
                e.kind(),
                std::io::ErrorKind::Interrupted
                    | std::io::ErrorKind::WouldBlock
                    | std::io::ErrorKind::TimedOut
            ),
            KeyProviderError::Missing(_) | KeyProviderError::Invalid(_) => false,
        }
    }
}
