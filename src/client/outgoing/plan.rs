//! Building a commit: what the intent changes ([`plan`]), staging it with openmls
//! ([`stage`]), and recording it in the outbox, in one transaction ([`build_commit`]).

use super::*;

/// Builds and stages the commit for `intent` and records it in the outbox, in one transaction.
pub(super) fn build_commit(
    cx: &crate::client::state::Ctx<'_>,
    group: &GroupId,
    intent: &Intent,
    kps: Vec<KeyPackage>,
) -> Result<Option<Outgoing>, Error> {
    let mut g = active(cx, group)?;
    let row = tables::group_get(cx.c, &group.0)?.ok_or(GroupError::UnknownGroup)?;
    if row.status == GroupStatus::Leaving {
        return Err(GroupError::NotMember.into());
    }
    if g.pending_commit().is_some() {
        g.clear_pending_commit(cx.p.storage())
            .map_err(|e| mls(format!("{e:?}")))?;
    }
    let tag = epoch_tag(&g, cx.p.crypto())?;
    let signer = cx.signer(&g)?;
    let own = g.own_leaf_index();
    // Each joiner's Welcome mailbox, KeyPackage ref and init key: it is sent only its own
    // part of the Welcome (LG-9), sealed to that key (GROUP-12).
    let mut recipients: Vec<[u8; 32]> = Vec::with_capacity(kps.len());
    let mut refs: Vec<Option<Vec<u8>>> = Vec::with_capacity(kps.len());
    let mut keys: Vec<Vec<u8>> = Vec::with_capacity(kps.len());
    for k in &kps {
        let Ok(id) = AtmlsIdentity::from_credential(k.leaf_node().credential()) else {
            continue;
        };
        recipients.push(welcome_mailbox(&id.certificate.installation_key).0);
        refs.push(
            k.hash_ref(cx.p.crypto())
                .ok()
                .map(|r| r.as_slice().to_vec()),
        );
        keys.push(k.hpke_init_key().as_slice().to_vec());
    }
    let recipient_refs: Option<Vec<Vec<u8>>> = refs.into_iter().collect();
    // Revoked devices go in whatever we commit, unless a pending proposal already removes them.
    let pending_removed: Vec<_> = g
        .pending_proposals()
        .filter_map(|p| match p.proposal() {
            openmls::prelude::Proposal::Remove(r) => Some(r.removed()),
            _ => None,
        })
        .collect();
    let roster = cx.roster(group, &g);
    let revoked: Vec<_> = revoked_leaves(cx, &roster, own)?
        .into_iter()
        .filter(|i| !pending_removed.contains(i))
        .collect();
    // Only those whose removal our role allows (GOV-5): else every commit we make would be
    // refused, by us and by everyone.
    let revoked = if revoked.is_empty() {
        revoked
    } else {
        crate::client::governance::removable(&g, &roster, &cx.dev.did, revoked)?
    };
    let Some(plan) = plan(cx, &g, &roster, own, intent, kps, revoked)? else {
        return Ok(None);
    };
    let (bundle, tree_seed) = stage(cx, &mut g, &signer, plan)?;
    // We refuse to send what every other member would refuse (GOV-4); the transaction
    // rolls back, so the staged commit is dropped.
    if !intent.is_unchecked() {
        if let Some(staged) = g.pending_commit() {
            crate::group::authorize_commit(&g, &roster, staged, own)?;
        }
    }
    // Sealed with the key of the epoch the commit ends, like every group payload (DS-2). No
    // hint (LG-14): receivers look nothing up before a commit is merged (AGREE-2).
    let commit = outer_seal(
        &g,
        cx.p.crypto(),
        &bundle.commit().tls_serialize_detached().map_err(mls)?,
    )?;
    let welcome = bundle
        .to_welcome_msg()
        .map(|w| w.tls_serialize_detached())
        .transpose()
        .map_err(mls)?;
    let out = Outgoing {
        epoch_tag: tag.0,
        idem: IdempotencyKey::random().0,
        commit,
        tree_seed: tree_seed.filter(|_| welcome.is_some()),
        welcome,
        recipients,
        recipient_refs,
        recipient_keys: Some(keys),
    };
    tables::outbox_put(cx.c, &group.0, &out)?;
    cx.keep(group, g);
    Ok(Some(out))
}

/// What one commit does (every intent comes down to one): what the openmls builder chain of
/// [`stage`] is given.
#[derive(Default)]
struct Plan {
    /// KeyPackages to add; their Welcome points to the tree out of band (LG-T-1).
    adds: Vec<KeyPackage>,
    /// Leaves to remove.
    removals: Vec<LeafNodeIndex>,
    /// New group-context extensions.
    context: Option<openmls::prelude::Extensions<openmls::prelude::GroupContext>>,
    /// A fresh leaf key for this device (a self-update).
    new_leaf: bool,
}

/// The plan for `intent`, or `None` when there is nothing to commit. `revoked` leaves go in
/// every commit (TRUST-12).
fn plan(
    cx: &crate::client::state::Ctx<'_>,
    g: &MlsGroup,
    roster: &Roster,
    own: LeafNodeIndex,
    intent: &Intent,
    kps: Vec<KeyPackage>,
    revoked: Vec<LeafNodeIndex>,
) -> Result<Option<Plan>, Error> {
    let with_revoked = |mut removals: Vec<LeafNodeIndex>| {
        removals.extend(
            revoked
                .iter()
                .filter(|i| !removals.contains(i))
                .copied()
                .collect::<Vec<_>>(),
        );
        removals
    };
    let context_only = |ext| Plan {
        context: Some(ext),
        removals: revoked.clone(),
        ..Default::default()
    };
    let plan = match intent {
        Intent::Add(_) | Intent::AddViaInvite(..) | Intent::Readd(..) if kps.is_empty() => {
            return Ok(None)
        }
        Intent::Add(dids) => Plan {
            removals: with_revoked(stale_leaves(cx, roster, own, dids)?),
            adds: kps,
            ..Default::default()
        },
        Intent::AddViaInvite(dids, invite) => {
            let joining = kps
                .iter()
                .filter_map(|k| AtmlsIdentity::from_credential(k.leaf_node().credential()).ok())
                .map(|id| id.certificate.did)
                .filter(|d| dids.contains(d))
                .collect::<std::collections::BTreeSet<_>>();
            Plan {
                context: Some(crate::client::governance::bump_invite(
                    g.extensions(),
                    invite,
                    joining.len(),
                )?),
                removals: revoked,
                adds: kps,
                ..Default::default()
            }
        }
        Intent::Readd(_, installation, stale_key) => {
            let stale = roster.leaves().find_map(|(i, l)| {
                let key = g.public_group().leaf(i)?.signature_key().as_slice();
                (l.member.installation == *installation && key == stale_key.as_slice()).then_some(i)
            });
            let Some(stale) = stale else { return Ok(None) };
            Plan {
                removals: with_revoked(vec![stale]),
                adds: kps,
                ..Default::default()
            }
        }
        Intent::Remove(dids) => {
            let leaves: std::collections::BTreeSet<_> = dids
                .iter()
                .flat_map(|d| roster.leaves_of(d))
                .filter(|i| *i != own)
                .chain(revoked.iter().copied())
                .collect();
            if leaves.is_empty() {
                return Ok(None);
            }
            // Roles of removed accounts go with them (GOV-5), so a re-added account starts
            // as a member.
            Plan {
                context: crate::client::governance::drop_roles(g.extensions(), dids)?,
                removals: leaves.into_iter().collect(),
                ..Default::default()
            }
        }
        Intent::Update => Plan {
            removals: revoked,
            new_leaf: true,
            ..Default::default()
        },
        Intent::SetDisappearing(secs) => {
            if crate::group::disappearing_secs(g.extensions())?.unwrap_or(0) == *secs {
                return Ok(None);
            }
            context_only(crate::group::with_disappearing(g.extensions(), *secs)?)
        }
        Intent::Context(edit) => {
            match crate::client::governance::apply_edit(
                g.extensions(),
                edit,
                &cx.dev.did,
                cx.now(),
            )? {
                Some(ext) => context_only(ext),
                None => return Ok(None),
            }
        }
        #[cfg(feature = "test-utils")]
        Intent::RawContextExtension(ty, bytes) => {
            use openmls::prelude::{Extension, ExtensionType, UnknownExtension};
            let mut ext: Vec<Extension> = g
                .extensions()
                .iter()
                .filter(|e| e.extension_type() != ExtensionType::Unknown(*ty))
                .cloned()
                .collect();
            ext.push(Extension::Unknown(*ty, UnknownExtension(bytes.clone())));
            context_only(openmls::prelude::Extensions::from_vec(ext).map_err(mls)?)
        }
        Intent::Pending => {
            let removes_me = g.pending_proposals().any(|p| {
                matches!(p.proposal(), openmls::prelude::Proposal::Remove(r) if r.removed() == own)
            });
            if (!g.has_pending_proposals() && revoked.is_empty()) || removes_me {
                return Ok(None);
            }
            Plan {
                removals: revoked,
                ..Default::default()
            }
        }
    };
    Ok(Some(plan))
}

/// Builds and stages the commit a plan describes: the one openmls builder chain of every
/// commit this device makes. Pending proposals are always committed with it. Returns the seed
/// of the out-of-band tree when the commit adds anyone (LG-T-1, LG-T-2).
fn stage(
    cx: &crate::client::state::Ctx<'_>,
    g: &mut MlsGroup,
    signer: &crate::group::LeafSigner,
    plan: Plan,
) -> Result<(openmls::prelude::CommitMessageBundle, Option<[u8; 32]>), Error> {
    let seed: Option<[u8; 32]> = (!plan.adds.is_empty()).then(rand::random);
    let new_leaf = if plan.new_leaf {
        Some(new_leaf_key(&cx.p, cx.dev, cx.cs)?)
    } else {
        None
    };
    let mut b = g
        .commit_builder()
        .propose_adds(plan.adds)
        .propose_removals(plan.removals)
        .consume_proposal_store(true);
    if let Some(ext) = plan.context {
        b = b.propose_group_context_extensions(ext).map_err(mls)?;
    }
    if let Some((_, cwk, ext)) = &new_leaf {
        let params = LeafNodeParameters::builder()
            .with_credential_with_key(cwk.clone())
            .with_extensions(ext.clone())
            .build();
        b = b.leaf_node_parameters(params).force_self_update(true);
    }
    let mut b = b.load_psks(cx.p.storage()).map_err(mls)?;
    if let Some(seed) = &seed {
        // The Welcome carries no tree, only where to fetch it and the key to open it, inside
        // its encrypted and signed GroupInfo.
        b = b
            .create_group_info_with_extensions([TreeRef::from_seed(seed).extension()])
            .map_err(mls)?;
    }
    let built = match new_leaf {
        Some((new_signer, cwk, _)) => b.build_with_new_signer(
            cx.p.rand(),
            cx.p.crypto(),
            signer,
            NewSignerBundle {
                signer: &new_signer,
                credential_with_key: cwk,
            },
            |_| true,
        ),
        None => b.build(cx.p.rand(), cx.p.crypto(), signer, |_| true),
    }
    .map_err(mls)?;
    Ok((built.stage_commit(&cx.p).map_err(mls)?, seed))
}
