//! The PDS directory: identity, device and KeyPackage records in each account's own ATProto
//! repository (spec/records.md), read from anyone's PDS without logging in and written to
//! one's own after logging in with an app password.

mod error;
mod fields;
pub mod records;

pub use error::{PdsError, RecordError};
pub use records::MAX_RECORD_BYTES;
