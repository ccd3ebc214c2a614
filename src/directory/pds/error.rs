//! Errors of the PDS directory: about the network and the server ([`PdsError`]), and about
//! one record read from a repository ([`RecordError`]).

use crate::directory::DirectoryError;
use crate::identity::{Did, IdentityError};
use crate::keypackage::KeyPackageError;

/// Why a record read from a repository was refused (spec/records.md REC-*). A refused record
/// is skipped: its device is never added.
#[non_exhaustive]
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecordError {
    /// REC-2: the record's JSON is larger than [`super::MAX_RECORD_BYTES`].
    #[error("record of {size} bytes exceeds {max}")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// REC-2: a required field is absent (or null).
    #[error("missing field {0}")]
    MissingField(&'static str),
    /// REC-2: a field has the wrong JSON type.
    #[error("field {field} is not {expected}")]
    WrongType {
        /// The field.
        field: &'static str,
        /// What it should be.
        expected: &'static str,
    },
    /// REC-2: a `$bytes` field is not base64.
    #[error("field {0} is not valid base64")]
    BadBase64(&'static str),
    /// REC-2: a datetime field is not an RFC 3339 datetime after 1970.
    #[error("field {0} is not a datetime")]
    BadDatetime(&'static str),
    /// REC-2: `$type` names another collection.
    #[error("record type {found:?} is not {expected}")]
    WrongCollection {
        /// The collection read.
        expected: &'static str,
        /// The record's `$type`.
        found: String,
    },
    /// REC-2: a key's algorithm is not one atmls knows.
    #[error("unsupported key algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    /// REC-2: the record key is not what the record's content implies.
    #[error("record key {0:?} does not match the record")]
    BadRecordKey(String),
    /// REC-3/REC-4: a key is invalid or a signature or certificate does not verify.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// REC-5: the KeyPackage fails KP-1 … KP-5.
    #[error(transparent)]
    KeyPackage(#[from] KeyPackageError),
    /// REC-5: a KeyPackage of a device that is not among the account's valid device records.
    #[error("KeyPackage of a device that is not a valid device of the account")]
    UnknownDevice,
    /// REC-5: a KeyPackage in a ciphersuite the declaration does not list.
    #[error("ciphersuite {0:#06x} is not declared by the account")]
    UndeclaredCiphersuite(u16),
    /// REC-5: the record's `expiresAt` has passed.
    #[error("expired record")]
    Expired,
    /// REC-5: a record field disagrees with the signed content.
    #[error("{0} does not match")]
    Mismatch(&'static str),
}

/// Errors of the PDS directory.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum PdsError {
    /// The PDS, PLC directory or DID host could not be reached, timed out or failed (5xx);
    /// retrying may help.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Logging in or refreshing the session failed (wrong identifier or app password).
    #[error("authentication failed: {0}")]
    Auth(String),
    /// A write needs a logged-in session.
    #[error("not logged in")]
    NotLoggedIn,
    /// The server refused the request (4xx).
    #[error("server refused ({status}): {error} {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// XRPC error name, if any.
        error: String,
        /// Its message, if any.
        message: String,
    },
    /// The handle does not resolve, or its DID document does not claim it back.
    #[error("handle {0:?} does not resolve to a DID that claims it")]
    Handle(String),
    /// The DID document has no usable `#atproto_pds` service.
    #[error("{0} has no PDS endpoint in its DID document")]
    NoPdsEndpoint(Did),
    /// The DID document or another response is malformed.
    #[error("invalid response: {0}")]
    InvalidResponse(String),
    /// The account has no atmls declaration.
    #[error("{0} has no messaging identity")]
    NoIdentity(Did),
    /// The account's declaration record is refused.
    #[error("declaration of {did} refused: {error}")]
    Declaration {
        /// The account.
        did: Did,
        /// Why.
        error: RecordError,
    },
    /// A record to write is not valid (e.g. a device of another account).
    #[error("invalid record to write: {0}")]
    InvalidRecord(&'static str),
    /// A configuration value is not usable (a root certificate that does not parse, a
    /// redirect URI that is not a loopback URL).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The OAuth authorization server refused: the user denied access (`access_denied`), or
    /// the server refused the code, the token or its refresh (REC-16). Signing in again is
    /// needed; retrying the same request does not help.
    #[error("OAuth refused: {error} {description}")]
    OAuth {
        /// The OAuth error code (RFC 6749 §4.1.2.1, §5.2), or `refused`.
        error: String,
        /// What the server said.
        description: String,
    },
    /// The store keeping OAuth sessions failed (REC-15); retrying helps when it was busy.
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
}

impl PdsError {
    /// Whether retrying can help.
    pub fn is_retryable(&self) -> bool {
        match self {
            PdsError::Unavailable(_) => true,
            PdsError::Auth(_)
            | PdsError::NotLoggedIn
            | PdsError::Refused { .. }
            | PdsError::Handle(_)
            | PdsError::NoPdsEndpoint(_)
            | PdsError::InvalidResponse(_)
            | PdsError::NoIdentity(_)
            | PdsError::Declaration { .. }
            | PdsError::InvalidRecord(_)
            | PdsError::Config(_)
            | PdsError::OAuth { .. } => false,
            PdsError::Storage(e) => e.is_retryable(),
        }
    }
}

impl From<PdsError> for DirectoryError {
    fn from(e: PdsError) -> Self {
        match e {
            PdsError::Unavailable(m) => DirectoryError::Unavailable(m),
            PdsError::NoIdentity(d) => DirectoryError::NoIdentity(d),
            other => DirectoryError::Refused(other.to_string()),
        }
    }
}
