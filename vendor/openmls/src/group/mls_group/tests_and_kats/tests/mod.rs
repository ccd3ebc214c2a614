//! Test and Known Answer Test (KAT) modules for the MLS group.

mod commit_builder_leaf_node_validation;
mod decryption_ratchet_updates;
mod external_init;
mod mls_group;
mod past_secrets;
// Pulls in `openmls_sqlite_storage` and `openmls_libcrux_crypto`
// directly, so it is only compiled when both providers are enabled.
#[cfg(all(feature = "sqlite-provider", feature = "libcrux-provider"))]
mod past_secrets_storage_compatibility;
mod proposals;
mod secret_tree_persistence;
