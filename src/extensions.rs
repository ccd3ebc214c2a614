//! atmls's MLS extension types (private-use range 0xF0A0–0xF0A7) and the capabilities built
//! from them: what every atmls leaf advertises and every atmls group requires (spec/group.md
//! GROUP-1, spec/credential.md CRED-9). The registry sits below the modules that use it
//! (credential, keypackage, group), so that none of them depends on a later one for a number.

use openmls::prelude::{
    Capabilities, Ciphersuite, CredentialType, ExtensionType, RequiredCapabilitiesExtension,
};

/// Group-context extension type of `group::GroupData` (GROUP-2).
pub const GROUP_DATA_EXTENSION: u16 = 0xF0A0;
/// Leaf-node extension type carrying the `credential::LeafProof` (CRED-5).
pub const LEAF_PROOF_EXTENSION: u16 = 0xF0A1;
/// Group-context extension type of the disappearing-messages timer.
pub const DISAPPEARING_EXTENSION: u16 = 0xF0A2;
/// Group-context extension type of the roles (GOV-1).
pub const ROLES_EXTENSION: u16 = 0xF0A3;
/// Group-context extension type of the policies (GOV-2).
pub const POLICIES_EXTENSION: u16 = 0xF0A4;
/// Group-context extension type of the metadata.
pub const METADATA_EXTENSION: u16 = 0xF0A5;
/// Group-context extension type of the invites.
pub const INVITES_EXTENSION: u16 = 0xF0A6;
/// GroupInfo extension type carrying the tree reference (LG-T-2).
pub const WELCOME_TREE_EXTENSION: u16 = 0xF0A7;

/// The extensions every group requires and every leaf must support, in this order.
const REQUIRED: [u16; 7] = [
    GROUP_DATA_EXTENSION,
    LEAF_PROOF_EXTENSION,
    DISAPPEARING_EXTENSION,
    ROLES_EXTENSION,
    POLICIES_EXTENSION,
    METADATA_EXTENSION,
    INVITES_EXTENSION,
];

/// Required capabilities of every atmls group (GROUP-1): our extensions and Basic credentials.
/// The one list: groups require it, and KeyPackages that do not support it are refused before
/// they are added (CRED-9, `keypackage::validate_record`).
pub(crate) fn required_capabilities() -> RequiredCapabilitiesExtension {
    let types = REQUIRED.map(ExtensionType::Unknown);
    RequiredCapabilitiesExtension::new(&types, &[], &[CredentialType::Basic])
}

/// The capabilities every atmls leaf advertises: the required extensions, `last_resort`, the
/// group's ciphersuite and Basic credentials.
pub(crate) fn leaf_capabilities(cs: Ciphersuite) -> Capabilities {
    let mut types = REQUIRED.map(ExtensionType::Unknown).to_vec();
    types.push(ExtensionType::LastResort);
    Capabilities::new(
        None,
        Some(&[cs]),
        Some(&types),
        None,
        Some(&[CredentialType::Basic]),
    )
}
