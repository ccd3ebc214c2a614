//! The PDS directory: identity, device and KeyPackage records in each account's own ATProto
//! repository (lexicons in `lexicons/dev/atmls/`, formats and checks in spec/records.md),
//! read from anyone's PDS without logging in and written to one's own after logging in with
//! an app password. Behind the `pds` feature.

mod checks;
mod directory;
mod error;
mod fields;
mod handle;
pub mod records;
mod repo;
mod resolve;
mod session;
mod xrpc;

pub use checks::{check_declaration, check_devices, check_key_packages, Rejected};
pub use directory::{Lookup, PdsConfig, PdsDirectory};
pub use error::{PdsError, RecordError};
pub use records::{DeclarationRecord, IncomingPolicy, Profile, MAX_RECORD_BYTES};
pub use session::PdsSession;
