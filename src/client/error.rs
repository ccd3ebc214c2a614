//! The client's error type.

use super::HistoryError;
use crate::blob::BlobError;
use crate::content::{ContentError, StreamError};
use crate::credential::CredentialError;
use crate::directory::DirectoryError;
use crate::group::GroupError;
use crate::identity::{Did, IdentityError};
use crate::keypackage::KeyPackageError;
use crate::storage::StorageError;
use crate::transport::TransportError;
use crate::trust::TrustError;

/// Errors of the client API. [`Error::is_retryable`] says whether trying again may help.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Identity keys or records.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// Credential validation.
    #[error(transparent)]
    Credential(#[from] CredentialError),
    /// KeyPackages.
    #[error(transparent)]
    KeyPackage(#[from] KeyPackageError),
    /// The directory.
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    /// The transport.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// Local storage.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Group state or an incoming message.
    #[error(transparent)]
    Group(#[from] GroupError),
    /// Trust in a contact's identity key.
    #[error(transparent)]
    Trust(#[from] TrustError),
    /// Message content.
    #[error(transparent)]
    Content(#[from] ContentError),
    /// An edit, delete, reaction or receipt breaks a history rule; nothing was sent.
    #[error(transparent)]
    History(#[from] HistoryError),
    /// The blob store holding attachments.
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// Encrypting or decrypting a streamed attachment (CONTENT-25a to CONTENT-25f).
    #[error(transparent)]
    Stream(#[from] StreamError),
    /// An attachment is too large to send inline and the client has no blob store.
    #[error("attachment needs a blob store (ClientBuilder::blob_store)")]
    NoBlobStore,
    /// The store holds no account and none was given to the builder.
    #[error("no identity: give the builder a DeviceIdentity for a new store")]
    NoIdentity,
    /// The store belongs to another account or device than the identity given.
    #[error("the store belongs to another identity")]
    IdentityMismatch,
    /// None of the account's devices has a valid KeyPackage, and a later try may find one:
    /// it has none published (or only single-use ones this client already used), or one was
    /// refused only because the directory has not caught up (CRED-7). Nothing was changed.
    #[error("{0} has no valid KeyPackage")]
    NoKeyPackages(Did),
    /// Every KeyPackage the account published was refused for what it is, e.g. it lacks a
    /// capability every atmls group requires (CRED-9): a retry reads the same packages, so
    /// the account must publish new ones first. `reason` is one of the refusals. Devices with
    /// a package that fits are added in its place; this is only when no device of the account
    /// has one (KP-5). Nothing was changed.
    #[error("{did} has no KeyPackage that fits: {reason}")]
    KeyPackagesRefused {
        /// The account.
        did: Did,
        /// Why one of its packages was refused.
        reason: KeyPackageError,
    },
    /// Other members kept committing first; the operation was not applied.
    #[error("gave up after repeated commit conflicts")]
    Conflict,
    /// The conversation is a message request (spec/consent.md CONSENT-5): read receipts and
    /// typing are not sent until the user accepts it ([`crate::Conversation::accept`]).
    #[error("the conversation is a message request: accept it first")]
    NotAccepted,
    /// The call makes no sense (e.g. removing yourself instead of leaving).
    #[error("invalid argument: {0}")]
    InvalidArgument(&'static str),
}

impl Error {
    /// Whether retrying the call may help.
    pub fn is_retryable(&self) -> bool {
        // No catch-all: a new variant needs a decision.
        match self {
            Error::Identity(e) => e.is_retryable(),
            Error::Credential(e) => e.is_retryable(),
            Error::KeyPackage(e) => e.is_retryable(),
            Error::Directory(e) => e.is_retryable(),
            Error::Transport(e) => e.is_retryable(),
            Error::Storage(e) => e.is_retryable(),
            Error::Group(e) => e.is_retryable(),
            Error::Trust(e) => e.is_retryable(),
            Error::Content(e) => e.is_retryable(),
            Error::History(e) => e.is_retryable(),
            Error::Blob(e) => e.is_retryable(),
            Error::Stream(e) => e.is_retryable(),
            Error::NoKeyPackages(_) | Error::Conflict => true,
            Error::KeyPackagesRefused { .. }
            | Error::NoBlobStore
            | Error::NoIdentity
            | Error::IdentityMismatch
            | Error::NotAccepted
            | Error::InvalidArgument(_) => false,
        }
    }
}
