//! The group-context extensions atmls defines (spec/group.md, spec/governance.md): group data,
//! roles, policies, metadata, invites and the disappearing timer. They come from other
//! members, in commits and Welcomes, so every member decodes them as untrusted bytes, and the
//! verdict decides whether a commit is merged (AGREE-4): a panic here would stop a member, a
//! non-deterministic verdict would fork the group.

use openmls::prelude::{Extension, Extensions, UnknownExtension};

use crate::group::{
    check_context, disappearing_secs, invites_of, invites_to_extension, metadata_of, Governance,
    GroupData, GroupMetadata, Policies, Roles, DISAPPEARING_EXTENSION, GROUP_DATA_EXTENSION,
    INVITES_EXTENSION, METADATA_EXTENSION, POLICIES_EXTENSION, ROLES_EXTENSION,
};

/// The extension types a selector byte picks from.
const TYPES: [u16; 6] = [
    GROUP_DATA_EXTENSION,
    ROLES_EXTENSION,
    POLICIES_EXTENSION,
    METADATA_EXTENSION,
    INVITES_EXTENSION,
    DISAPPEARING_EXTENSION,
];

/// The input as a list of extensions: each is a selector byte, a big-endian u16 length and
/// that many bytes (a short last one takes what is left).
fn extensions(mut data: &[u8]) -> Vec<Extension> {
    let mut out = Vec::new();
    while let [selector, rest @ ..] = data {
        let (len, rest) = match rest {
            [a, b, rest @ ..] => (usize::from(u16::from_be_bytes([*a, *b])), rest),
            _ => (rest.len(), &[][..]),
        };
        let (body, rest) = rest.split_at(len.min(rest.len()));
        let ty = TYPES[usize::from(*selector) % TYPES.len()];
        out.push(Extension::Unknown(ty, UnknownExtension(body.to_vec())));
        data = rest;
    }
    out
}

/// AGREE-4, GOV-3, GOV-7, INV-1, CONTENT-28: every reader of a group context (the Welcome
/// check and each extension's own) returns a verdict without panicking, and what decodes
/// encodes and decodes back to the same value.
pub(super) fn group_context(data: &[u8]) {
    // openmls refuses two extensions of one type: such a context never reaches atmls.
    let Ok(ext) = Extensions::from_vec(extensions(data)) else {
        return;
    };
    let _ = check_context(&ext);
    let _ = disappearing_secs(&ext);
    if let Ok(d) = GroupData::from_extensions(&ext) {
        let again = Extensions::single(d.to_extension()).ok();
        let back = again.and_then(|e| GroupData::from_extensions(&e).ok());
        assert_eq!(back.as_ref(), Some(&d), "group data round trip");
    }
    if let Ok(Some(g)) = Governance::from_extensions(&ext) {
        let roles = Roles::from_bytes(&g.roles.to_bytes()).ok();
        assert_eq!(roles.as_ref(), Some(&g.roles), "roles round trip");
        let policies = Policies::from_bytes(&g.policies.to_bytes()).ok();
        assert_eq!(policies.as_ref(), Some(&g.policies), "policies round trip");
    }
    if let Ok(m) = metadata_of(&ext) {
        let back = m.to_bytes().ok().map(|b| GroupMetadata::from_bytes(&b));
        assert_eq!(back, Some(Ok(m)), "metadata round trip");
    }
    if let Ok(invites) = invites_of(&ext) {
        let again = invites_to_extension(&invites).ok();
        let back = again
            .and_then(|e| Extensions::single(e).ok())
            .and_then(|e| invites_of(&e).ok());
        assert!(back.as_ref() == Some(&invites), "invites round trip");
    }
}

/// Seeds: a group's context as atmls writes it, and each extension alone.
pub(super) fn seeds() -> Vec<Vec<u8>> {
    use crate::group::Preset;
    let frame = |selector: u8, body: &[u8]| {
        let mut out = vec![selector];
        out.extend_from_slice(&u16::try_from(body.len()).unwrap_or(0).to_be_bytes());
        out.extend_from_slice(body);
        out
    };
    let body = |e: Extension| match e {
        Extension::Unknown(_, b) => b.0,
        _ => Vec::new(),
    };
    let gov = Governance {
        roles: Roles::with_owner(super::fixtures::did()),
        policies: Policies::preset(Preset::AllMembers),
    };
    let data = GroupData {
        kind: crate::group::GroupKind::Group,
        dm_members: Vec::new(),
    };
    let meta = GroupMetadata {
        name: "club".into(),
        description: "members".into(),
        ..Default::default()
    };
    let parts = [
        frame(0, &body(data.to_extension())),
        frame(1, &gov.roles.to_bytes()),
        frame(2, &gov.policies.to_bytes()),
        frame(3, &meta.to_bytes().unwrap_or_default()),
        frame(5, &[&[1u8][..], &3600u32.to_be_bytes()].concat()),
    ];
    let mut out: Vec<Vec<u8>> = parts.to_vec();
    out.push(parts.concat());
    out
}
