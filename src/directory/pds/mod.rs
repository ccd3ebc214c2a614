//! The PDS directory: identity, device and KeyPackage records in each account's own ATProto
//! repository (lexicons in `lexicons/dev/atmls/`, formats and checks in spec/records.md),
//! read from anyone's PDS without logging in and written to one's own after signing in with
//! OAuth (the default: [`PdsDirectory::oauth_begin`], [`LoopbackRedirect`]) or, as the
//! fallback, logging in with an app password ([`PdsDirectory::login`]). Behind the `pds`
//! feature.

mod checks;
mod directory;
mod error;
mod fields;
mod handle;
mod loopback;
mod oauth;
mod oauth_parts;
pub mod records;
mod repo;
mod resolve;
mod session;
mod xrpc;

pub use checks::{check_declaration, check_devices, check_key_packages, Rejected};
pub use directory::{Lookup, PdsConfig, PdsDirectory};
pub use error::{PdsError, RecordError};
pub use loopback::LoopbackRedirect;
pub use records::{DeclarationRecord, IncomingPolicy, Profile, MAX_RECORD_BYTES};
pub use session::PdsSession;
