//! What this device receives: Welcomes and group mailboxes, processed in mailbox order, each
//! item in one transaction. A refused item changes nothing but the cursor past it, and no item
//! fails a sync or holds up another group (spec/agreement.md AGREE-7).

use openmls::prelude::{
    tls_codec::Serialize as _, KeyPackageBundle, KeyPackageRef, MlsMessageBodyIn, ProcessedWelcome,
    RatchetTreeIn,
};
use openmls_traits::storage::StorageProvider as _;
use openmls_traits::OpenMlsProvider as _;

use super::outgoing::Intent;
use super::receive::{member_from, parse_mls, process_item, Failure};
use super::state::Ctx;
use super::{Error, Event, Session};
use crate::group::{
    join_config, mailbox_for, staging_error, validate_joined_tree, GroupData, GroupError, GroupId,
    GroupKind, GroupStatus, TreeError, TreeRef,
};
use crate::storage::group_state::{self, GroupFlag};
use crate::storage::tables::{self, GroupRow};
use crate::storage::StorageError;
use crate::transport::{
    Delivered, MailboxId, TransportError, WelcomeReadProof, MAX_WELCOME_PAYLOAD,
};
use crate::wire::{Received, WelcomeEnvelope};

const PAGE: u32 = 100;

/// Most pages one sync reads from one mailbox (AGREE-7): a transport that answers `more`
/// forever cannot keep a sync going; what is left comes with the next sync.
const MAX_PAGES: usize = 50;
/// How long a used single-use KeyPackage's private keys are kept for racing inviters.
pub(crate) const KEY_PACKAGE_GRACE_SECS: u64 = 24 * 3600;
const K_WELCOME_CURSOR: &str = "welcome_cursor";
/// Syncs that may fail to fetch one Welcome's tree before the Welcome is refused.
const MAX_WELCOME_TRIES: u64 = 5;

/// Where a pass over a page stopped.
/// How a page's pass ended.
enum PageEnd {
    /// Every item was processed.
    Read,
    /// We were removed.
    Removed,
    /// The group moved to a new mailbox (GROUP-4a).
    Moved,
}

enum Stop {
    Done,
    Removed,
    /// The group moved to a new mailbox (GROUP-4a): the rest of this page is the old one's;
    /// with whether an urgent account check is queued (TRUST-23), which runs before the new
    /// mailbox is read.
    Moved(bool),
    /// An urgent account check is queued (TRUST-23); go on from this item after it.
    Verify(usize),
}

fn savepoint(cx: &Ctx<'_>, sql: &str) -> Result<(), Error> {
    // One cached statement each (LG-10): these run around every item of a pass.
    for stmt in sql.split("; ") {
        cx.c.prepare_cached(stmt)
            .and_then(|mut s| s.execute([]))
            .map_err(|e| Error::from(crate::storage::StorageError::from(e)))?;
    }
    Ok(())
}

/// Opens a Welcome envelope as received (GROUP-8, GROUP-12): version 1 is read as it is; a
/// sealed one is tried with the init keys of our KeyPackages, live ones first, then those in
/// their grace period, at most [`MAX_WELCOME_KEYS`](super::keys::MAX_WELCOME_KEYS), until
/// one opens. One that none opens is refused (`Undecryptable`) before anything reads it, and
/// changes nothing. Only reads.
pub(crate) fn open_envelope(
    cx: &Ctx<'_>,
    payload: &[u8],
) -> Result<Result<WelcomeEnvelope, GroupError>, StorageError> {
    let sealed = match WelcomeEnvelope::received(payload, cx.cs) {
        Ok(Received::Clear(env)) => return Ok(Ok(env)),
        Ok(Received::Sealed(s)) => s,
        Err(e) => return Ok(Err(e)),
    };
    for r in super::keys::welcome_key_refs(cx.c)? {
        let bundle: Option<KeyPackageBundle> = match cx.p.storage().key_package(&r) {
            Ok(b) => b,
            // One unreadable package must not hold up every later Welcome: try the others.
            Err(error) => {
                tracing::warn!(%error, "KeyPackage unreadable while opening a Welcome");
                None
            }
        };
        let Some(bundle) = bundle else { continue };
        if let Some(opened) = sealed.open(cx.p.crypto(), cx.cs, bundle.init_private_key()) {
            return Ok(opened);
        }
    }
    Ok(Err(GroupError::Undecryptable(
        "Welcome sealed to none of our KeyPackages".into(),
    )))
}

/// The reference to a Welcome's out-of-band tree, if it has one (LG-T-5): `None` for a Welcome
/// that carries its tree inline (or none at all: joining then refuses it).
fn peek_tree_ref(cx: &Ctx<'_>, env: &WelcomeEnvelope) -> Result<Option<TreeRef>, GroupError> {
    let MlsMessageBodyIn::Welcome(welcome) =
        parse_mls(&env.welcome, MAX_WELCOME_PAYLOAD)?.extract()
    else {
        return Err(GroupError::Malformed("not a Welcome".into()));
    };
    let pw = ProcessedWelcome::new_from_welcome(&cx.p, &join_config(), welcome)
        .map_err(|e| GroupError::Welcome(e.to_string()))?;
    let ext = pw.unverified_group_info().extensions();
    if ext.ratchet_tree().is_some() {
        return Ok(None);
    }
    TreeRef::from_group_info(ext).map_err(GroupError::WelcomeTree)
}

/// Ends a transaction that must change nothing (see [`Session::open_welcome`]).
enum Rollback {
    Peeked(Result<Option<TreeRef>, GroupError>),
    Storage(StorageError),
}

impl From<StorageError> for Rollback {
    fn from(e: StorageError) -> Self {
        Rollback::Storage(e)
    }
}

/// Joins from one opened Welcome envelope inside a transaction, with its out-of-band `tree`
/// if it has one.
fn process_welcome(
    cx: &Ctx<'_>,
    env: &WelcomeEnvelope,
    seq: u64,
    tree: Option<&RatchetTreeIn>,
) -> Result<Vec<Event>, Failure> {
    let MlsMessageBodyIn::Welcome(welcome) =
        parse_mls(&env.welcome, MAX_WELCOME_PAYLOAD)?.extract()
    else {
        return Err(GroupError::Malformed("not a Welcome".into()).into());
    };
    let werr = |e: &dyn std::fmt::Display| GroupError::Welcome(e.to_string());
    // openmls deletes a single-use package as soon as it reads the Welcome; keep a copy so it
    // can be kept for a grace period: a second inviter who raced for the same package can
    // still be joined (KP-6). Reading it must come first.
    let mut stored: Vec<(KeyPackageRef, KeyPackageBundle)> = Vec::new();
    for s in welcome.secrets() {
        let r = s.new_member();
        if let Some(b) = cx.p.storage().key_package(&r).map_err(|e| werr(&e))? {
            stored.push((r, b));
        }
    }
    let pw =
        ProcessedWelcome::new_from_welcome(&cx.p, &join_config(), welcome).map_err(|e| werr(&e))?;
    let used = pw
        .own_key_package()
        .map(|kp| kp.hash_ref(cx.p.crypto()).map(|r| (r, kp.last_resort())))
        .transpose()
        .map_err(|e| werr(&e))?;
    let bundle: Option<KeyPackageBundle> = match &used {
        Some((r, false)) => stored.into_iter().find(|(s, _)| s == r).map(|(_, b)| b),
        _ => None,
    };
    // A device that asked to be re-added takes the Welcome in place of its state (AGREE-8):
    // the old state goes first, openmls will not stage over it. A failure below rolls this
    // back with the rest of the transaction.
    let claimed = GroupId(pw.unverified_group_info().group_id().as_slice().to_vec());
    let mut resynced_from = None;
    if let Some(row) = tables::group_get(cx.c, &claimed.0)? {
        if row.status == GroupStatus::Left {
            // A fresh start, below.
        } else if !super::resync::takes_resync_welcome(cx.c, &claimed, cx.now())? {
            return Err(GroupError::AlreadyMember.into());
        } else {
            let mls_id = openmls::prelude::GroupId::from_slice(&claimed.0);
            if let Ok(Some(mut old)) = openmls::prelude::MlsGroup::load(cx.p.storage(), &mls_id) {
                old.delete(cx.p.storage()).map_err(|e| werr(&e))?;
            }
            cx.forget_roster(&claimed);
            resynced_from = Some(row.cursor);
        }
    }
    // openmls checks the tree against the GroupInfo's tree hash (LG-T-5).
    let out_of_band = tree.is_some();
    // Leaf lifetimes are not checked against this device's clock (AGREE-3: the adders
    // checked them; a joiner whose clock is off by a day must still join).
    let mut join = openmls::group::JoinBuilder::new(&cx.p, pw).skip_lifetime_validation();
    if let Some(t) = tree {
        join = join.with_ratchet_tree(t.clone());
    }
    let staged = join.build().map_err(|e| staging_error(&e, out_of_band))?;
    let by = member_from(staged.welcome_sender().map_err(|e| werr(&e))?.credential())?
        .0
        .did;
    let gid = GroupId(staged.group_context().group_id().as_slice().to_vec());
    match tables::group_get(cx.c, &gid.0)? {
        // Re-added after leaving or being removed (e.g. by an invite link): a fresh start.
        Some(row) if row.status == GroupStatus::Left => {
            let mls_id = openmls::prelude::GroupId::from_slice(&gid.0);
            if let Ok(Some(mut old)) = openmls::prelude::MlsGroup::load(cx.p.storage(), &mls_id) {
                old.delete(cx.p.storage()).map_err(|e| werr(&e))?;
            }
        }
        // Its state was replaced above (AGREE-8).
        Some(_) if resynced_from.is_some() && claimed == gid => {}
        Some(_) => return Err(GroupError::AlreadyMember.into()),
        None => {}
    }
    let g = staged.into_group(&cx.p).map_err(|e| werr(&e))?;
    // The agreement checks on every leaf (AGREE-6); the bindings to accounts are checked
    // after the join, in the background (TRUST-20, TRUST-23).
    let leaves = validate_joined_tree(&g, cx.verdicts)?;
    let data = GroupData::from_extensions(g.extensions())?;
    // Roles, policies, metadata and invites must decode (GOV-3).
    crate::group::check_context(g.extensions())?;
    // A malformed disappearing timer would make every later message unreadable (CONTENT-28).
    crate::group::disappearing_secs(g.extensions())?;
    let me = &cx.dev.did;
    let dm_peer = match data.kind {
        GroupKind::Dm => {
            if !data.dm_members.contains(me) {
                return Err(GroupError::Welcome("DM does not name us".into()).into());
            }
            data.dm_members.iter().find(|d| *d != me).cloned()
        }
        GroupKind::Group => None,
        // Only the account's own devices make its own-device group (CONSENT-7).
        GroupKind::Account => {
            if by != *me || data.dm_members != [me.clone()] {
                return Err(
                    GroupError::Welcome("another account's own-device group".into()).into(),
                );
            }
            None
        }
    };
    tables::group_put(
        cx.c,
        &GroupRow {
            group_id: gid.0.clone(),
            // The mailbox the group is in now, named in the sealed envelope (GROUP-4a).
            mailbox: match env.capability {
                Some(cap) => crate::transport::MailboxId::for_capability(&cap).0,
                None => mailbox_for(&gid.0).id.0,
            },
            capability: env.capability,
            cursor: env.commit_seq,
            kind: data.kind,
            dm_peer,
            status: GroupStatus::Active,
            created: cx.now(),
        },
    )?;
    if let (Some((r, _)), Some(b)) = (&used, &bundle) {
        cx.p.storage()
            .write_key_package(r, b)
            .map_err(|e| werr(&e))?;
        let key = r.tls_serialize_detached().map_err(|e| werr(&e))?;
        tables::kp_grace_add(cx.c, &key, cx.now() + KEY_PACKAGE_GRACE_SECS)?;
    }
    if let Some((kp_ref, last_resort)) = used {
        if last_resort {
            // A last-resort leaf key may be shared with other groups: rotate it here, and
            // replace the package itself; its private keys stay for the grace period so other
            // inviters who already picked it can still be joined (KP-8).
            group_state::set_flag(cx.c, &gid.0, GroupFlag::NeedsUpdate, 1)?;
            let key = kp_ref.tls_serialize_detached().map_err(|e| werr(&e))?;
            tables::kp_grace_add(cx.c, &key, cx.now() + KEY_PACKAGE_GRACE_SECS)?;
        }
        tables::kp_retire(cx.c, kp_ref.as_slice())?;
    }
    tables::account_set_u64(cx.c, K_WELCOME_CURSOR, seq)?;
    let judged: Vec<_> = leaves.into_iter().map(|l| (l, true)).collect();
    let trust = super::verify::judge_leaves(cx, &gid, &judged)?;
    let mut events = match resynced_from {
        Some(from) => {
            group_state::set_flag(cx.c, &gid.0, GroupFlag::ResyncAsked, 0)?;
            vec![Event::Resynced {
                group: gid.clone(),
                by,
                from,
                to: env.commit_seq,
            }]
        }
        // Shown, held back as a request, or to be left (CONSENT-3).
        None => super::consent::on_join(cx, &gid, data.kind, &by, g.extensions())?
            .into_iter()
            .collect(),
    };
    events.extend(trust);
    cx.keep(&gid, g);
    Ok(events)
}

impl Session<'_> {
    /// Opens a Welcome envelope (GROUP-12), then fetches and opens the out-of-band tree its
    /// Welcome points to (LG-T-5). `Err` for a transient failure (the Welcome stays
    /// unprocessed, to be retried by the next sync); `Ok(Err)` for a refusal. Changes nothing:
    /// openmls deletes a used KeyPackage while it decrypts a Welcome, so reading the reference
    /// runs in a transaction rolled back.
    async fn open_welcome(
        &mut self,
        payload: &[u8],
    ) -> Result<Result<(WelcomeEnvelope, Option<RatchetTreeIn>), GroupError>, Error> {
        let env = match self.inner.ctx_read(|cx| Ok(open_envelope(cx, payload)?))? {
            Ok(env) => env,
            Err(e) => return Ok(Err(e)),
        };
        let peeked = match self
            .inner
            .atomic(|cx| Err::<(), _>(Rollback::Peeked(peek_tree_ref(cx, &env))))
        {
            Err(Rollback::Peeked(p)) => p,
            Err(Rollback::Storage(e)) => return Err(e.into()),
            Ok(()) => Ok(None),
        };
        let r = match peeked {
            Ok(Some(r)) => r,
            Ok(None) => return Ok(Ok((env, None))),
            Err(e) => return Ok(Err(e)),
        };
        let blob = match self.inner.io(self.transport.fetch_tree(&r.locator)).await {
            Ok(b) => b,
            Err(e) if e.is_retryable() => return Err(e.into()),
            Err(TransportError::NotFound) => {
                return Ok(Err(GroupError::WelcomeTree(TreeError::Missing)))
            }
            Err(TransportError::PayloadTooLarge { size, limit }) => {
                return Ok(Err(GroupError::WelcomeTree(TreeError::TooLarge {
                    size,
                    limit,
                })))
            }
            Err(e) => {
                return Ok(Err(GroupError::WelcomeTree(TreeError::Fetch(
                    e.to_string(),
                ))))
            }
        };
        Ok(r.open(&blob)
            .map(|tree| (env, Some(tree)))
            .map_err(GroupError::WelcomeTree))
    }

    /// Runs `step` atomically: a refusal is the item's answer, anything else an error.
    fn settle(
        &mut self,
        step: impl Fn(&Ctx<'_>) -> Result<Vec<Event>, Failure>,
    ) -> Result<Result<Vec<Event>, GroupError>, Error> {
        match self.inner.atomic(|cx| step(cx)) {
            Ok(ev) => Ok(Ok(ev)),
            Err(Failure::Refused(e)) => Ok(Err(e)),
            Err(Failure::Fatal(e)) => Err(e),
        }
    }

    /// Processes one fetched page of a group's mailbox in one transaction (LG-4): one durable
    /// write per pass however many messages it holds. Each item runs inside a savepoint, so a
    /// refused item is undone alone and only the cursor moves past it (STORE-1). A crash or
    /// a failed commit undoes the whole pass: nothing is lost (the cursor did not move either)
    /// and nothing is processed twice. A merged commit that brought a leaf whose key differs
    /// from the pin ends the pass: that account is looked up before later messages are read
    /// (TRUST-23), and so does a commit that moves the group (GROUP-4a). Returns how the page
    /// ended.
    async fn process_page(
        &mut self,
        group: &GroupId,
        items: &[&Delivered],
    ) -> Result<PageEnd, Error> {
        let mut start = 0;
        while start < items.len() {
            let (stop, mut ev) = self.inner.atomic(|cx| {
                let mut ev = Vec::new();
                for (k, item) in items.iter().enumerate().skip(start) {
                    let seq = item.seq;
                    if tables::own_post_take(cx.c, &group.0, seq)? {
                        tables::group_set_cursor(cx.c, &group.0, seq)?;
                        continue;
                    }
                    savepoint(cx, "SAVEPOINT atmls_item")?;
                    let error = match process_item(cx, group, seq, &item.payload) {
                        Ok(p) => {
                            savepoint(cx, "RELEASE atmls_item")?;
                            let removed =
                                p.events.iter().any(|e| matches!(e, Event::Removed { .. }));
                            ev.extend(p.events);
                            if removed {
                                return Ok((Stop::Removed, ev));
                            }
                            let urgent = crate::storage::trust::verify_urgent(cx.c)?;
                            if p.moved {
                                return Ok((Stop::Moved(urgent), ev));
                            }
                            if urgent {
                                return Ok((Stop::Verify(k + 1), ev));
                            }
                            continue;
                        }
                        Err(Failure::Fatal(e)) => return Err(e),
                        Err(Failure::Refused(e)) => e,
                    };
                    tracing::debug!(%error, seq, "refused group message");
                    savepoint(cx, "ROLLBACK TO atmls_item; RELEASE atmls_item")?;
                    tables::group_set_cursor(cx.c, &group.0, seq)?;
                    ev.push(Event::Refused {
                        group: Some(group.clone()),
                        seq,
                        error,
                    });
                }
                Ok::<_, Error>((Stop::Done, ev))
            })?;
            // What the pass tells about falling out of the group (AGREE-8).
            let processed = ev.iter().any(|e| !matches!(e, Event::Refused { .. }));
            let refused = ev
                .iter()
                .rev()
                .take_while(|e| matches!(e, Event::Refused { .. }))
                .count();
            self.note_run(group, processed, refused as u32);
            // Committed: queued at once, so a later failure in this pass loses none.
            self.inner.deferred_events.append(&mut ev);
            match stop {
                Stop::Done => break,
                Stop::Removed => return Ok(PageEnd::Removed),
                Stop::Moved(urgent) => {
                    if urgent {
                        self.verify_urgent_now().await?;
                    }
                    return Ok(PageEnd::Moved);
                }
                Stop::Verify(next) => {
                    self.verify_urgent_now().await?;
                    start = next;
                }
            }
        }
        Ok(PageEnd::Read)
    }

    /// Looks up the accounts a merged commit brought in with a key that differs from the pin
    /// (TRUST-23), before later messages are read. Network calls never run inside a
    /// transaction; a lookup that fails or is over budget leaves the mismatch standing (its
    /// event is raised).
    async fn verify_urgent_now(&mut self) -> Result<(), Error> {
        self.verify_members(true).await?;
        if self.inner.read(crate::storage::trust::verify_urgent)? {
            self.inner
                .atomic(|cx| crate::storage::trust::verify_defer_urgent(cx.c, cx.now()))?;
        }
        Ok(())
    }

    /// Processes raw bytes for a group without touching the cursor; errors change nothing.
    pub(crate) async fn process_raw(
        &mut self,
        group: &GroupId,
        payload: &[u8],
    ) -> Result<Vec<Event>, Error> {
        let cursor = self
            .inner
            .read(|c| tables::group_get(c, &group.0))?
            .ok_or(GroupError::UnknownGroup)?
            .cursor;
        // process_item rewrites the cursor with its current value: it does not move.
        let r = self.settle(|cx| process_item(cx, group, cursor, payload).map(|p| p.events))?;
        Ok(r?)
    }

    /// Fetches and processes a group's mailbox after settling any outgoing commit.
    /// Settles any outgoing commit, then processes the group's mailbox. Events go to the
    /// queue the next `sync` hands out: none is lost if a later step fails.
    pub(crate) async fn sync_group(&mut self, group: &GroupId) -> Result<(), Error> {
        let entered = self.enter_group(group).await;
        let r = self.sync_group_in_group(group).await;
        self.leave_group(entered, group);
        r
    }

    /// [`sync_group`](Self::sync_group) with the group's ordering lock held.
    async fn sync_group_in_group(&mut self, group: &GroupId) -> Result<(), Error> {
        self.resolve_outbox(group).await?;
        self.sync_group_until(group, u64::MAX).await
    }

    /// Processes the group's mailbox up to position `until` (events queued as in
    /// `sync_group`). A commit that moves the group (GROUP-4a) ends a bounded read (`until`
    /// was a position in the old mailbox); an unbounded one goes on in the new mailbox.
    pub(crate) async fn sync_group_until(
        &mut self,
        group: &GroupId,
        until: u64,
    ) -> Result<(), Error> {
        let entered = self.enter_group(group).await;
        let r = self.sync_group_until_in_group(group, until).await;
        self.leave_group(entered, group);
        r
    }

    /// [`sync_group_until`](Self::sync_group_until) with the group's ordering lock held.
    async fn sync_group_until_in_group(
        &mut self,
        group: &GroupId,
        until: u64,
    ) -> Result<(), Error> {
        for _ in 0..MAX_PAGES {
            let row = self
                .inner
                .read(|c| tables::group_get(c, &group.0))?
                .ok_or(GroupError::UnknownGroup)?;
            if row.status == GroupStatus::Left || row.cursor >= until {
                return Ok(());
            }
            let mailbox = MailboxId(row.mailbox);
            let page = self
                .inner
                .io(self.transport.fetch(&mailbox, row.cursor, PAGE))
                .await?;
            let items = in_order(&page.items, row.cursor, until);
            match self.process_page(group, &items).await? {
                // Nothing after our removal is for us.
                PageEnd::Removed => return Ok(()),
                PageEnd::Moved if until == u64::MAX => continue,
                PageEnd::Moved => return Ok(()),
                PageEnd::Read => {}
            }
            if !page.more || items.last().is_none_or(|i| i.seq >= until) {
                return Ok(());
            }
        }
        // The rest comes with the next sync (AGREE-7).
        Ok(())
    }

    /// Joins from the Welcomes in this device's mailbox. A Welcome that fails is refused alone
    /// with its event; one whose tree cannot be fetched right now is tried again by the next
    /// syncs, [`MAX_WELCOME_TRIES`] times, then refused (AGREE-7).
    ///
    /// A Welcome for a group this device is still a member of is left in place on the first
    /// pass (`last` false: its removal may wait in the group's mailbox, read next) and refused
    /// on the last.
    async fn sync_welcomes(&mut self, last: bool) -> Result<(), Error> {
        // Only this device may read its Welcome mailbox: a fresh proof per sync (DS-W-1).
        let proof = WelcomeReadProof::sign(
            &self.inner.device.installation.secret_bytes(),
            self.inner.now(),
        );
        for _ in 0..MAX_PAGES {
            let cursor = self
                .inner
                .read(|c| tables::account_u64(c, K_WELCOME_CURSOR))?;
            let page = self
                .inner
                .io(self.transport.fetch_welcomes(&proof, cursor, PAGE))
                .await?;
            let items = in_order(&page.items, cursor, u64::MAX);
            for item in &items {
                let joined = match self.open_welcome(&item.payload).await {
                    Ok(Ok((env, tree))) => {
                        self.settle(|cx| process_welcome(cx, &env, item.seq, tree.as_ref()))?
                    }
                    Ok(Err(e)) => Err(e),
                    Err(e) => match self.welcome_retry(item.seq)? {
                        // Later Welcomes wait behind this one: the cursor cannot skip it.
                        true => return Err(e),
                        false => Err(GroupError::WelcomeTree(TreeError::Fetch(e.to_string()))),
                    },
                };
                match joined {
                    Ok(ev) => self.inner.deferred_events.extend(ev),
                    Err(GroupError::AlreadyMember) if !last => {
                        self.inner.welcome_again = true;
                        return Ok(());
                    }
                    Err(error) => {
                        // A Welcome we cannot process keeps its KeyPackage (KP-6).
                        self.inner.atomic(|cx| {
                            tables::account_set_u64(cx.c, K_WELCOME_CURSOR, item.seq)
                        })?;
                        self.inner.deferred_events.push(Event::Refused {
                            group: None,
                            seq: item.seq,
                            error,
                        });
                    }
                }
            }
            if !page.more || items.is_empty() {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Counts a transient failure of the Welcome at `seq`; whether it may be tried again.
    fn welcome_retry(&mut self, seq: u64) -> Result<bool, Error> {
        let tries = self.inner.welcome_tries.entry(seq).or_insert(0);
        *tries += 1;
        Ok(*tries < MAX_WELCOME_TRIES)
    }

    /// Welcomes, then every group; then commits leave requests, re-proposes our own leave if it
    /// was dropped, rotates last-resort leaves, and maintains KeyPackages.
    pub(crate) async fn sync_all(&mut self) -> Result<Vec<Event>, Error> {
        // Every step queues its events as it goes, so that an error part-way (a transport
        // failure) loses none: they come with the next sync.
        // No group waits for another (AGREE-7): each one's failure is noted, the others go
        // on, and the first failure is returned once all had their turn.
        let mut first: Option<Error> = None;
        let mut note = |r: Result<(), Error>, what: &str| {
            if let Err(e) = r {
                tracing::warn!(error = %e, what, "sync step failed");
                first.get_or_insert(e);
            }
        };
        self.inner.welcome_again = false;
        note(self.sync_welcomes(false).await, "welcomes");
        // Requests, the follow list and declined conversations (CONSENT-3, CONSENT-4).
        note(self.settle_consent().await, "consent");
        // Leaves of joined Welcomes whose key differs from the pin are looked up before any
        // group is read (TRUST-23), so their first messages are judged on the answer.
        if self.inner.read(crate::storage::trust::verify_urgent)? {
            note(self.verify_members(true).await, "member verification");
        }
        let groups = self.inner.read(tables::groups_all)?;
        for row in groups.iter().filter(|r| r.status != GroupStatus::Left) {
            let gid = GroupId(row.group_id.clone());
            note(self.sync_group(&gid).await, "group");
            note(self.ask_resync_if_stale(&gid).await, "re-add request");
        }
        // Welcomes left for after the groups were read (a re-add behind an unread removal).
        if self.inner.welcome_again {
            let before = self.inner.deferred_events.len();
            note(self.sync_welcomes(true).await, "welcomes, again");
            let joined: Vec<GroupId> = self.inner.deferred_events[before..]
                .iter()
                .filter_map(|e| match e {
                    Event::Joined { group, .. } | Event::MessageRequest { group, .. } => {
                        Some(group.clone())
                    }
                    _ => None,
                })
                .collect();
            for gid in joined {
                note(self.sync_group(&gid).await, "group joined again");
            }
        }
        // Consent: what the groups' own-device tables changed, and a table not yet shared
        // (CONSENT-7).
        note(self.settle_consent().await, "consent");
        note(self.share_consent_if_unshared().await, "consent sharing");
        // Members met in commits and Welcomes, checked against the directory (TRUST-23).
        note(self.verify_members(false).await, "member verification");
        for row in self.inner.read(tables::groups_all)? {
            let gid = GroupId(row.group_id.clone());
            note(self.group_chores(&gid, row.status).await, "group chores");
        }
        // Queued messages, certificate renewal, leaf rotation (GROUP-11, ID-7, GROUP-10).
        note(self.upkeep().await, "upkeep");
        // Join requests through invite links and handles (INV-4).
        match self.serve_invites().await {
            Ok(ev) => self.inner.deferred_events.extend(ev),
            Err(e) => note(Err(e), "invites"),
        }
        note(self.maintain_key_packages().await, "key packages");
        note(self.flush_welcomes().await, "welcomes out");
        if let Some(e) = first {
            return Err(e);
        }
        // With the events raised while committing above and trust events from directory
        // lookups (TRUST-1, TRUST-3). The own-device group is never shown (CONSENT-7): its
        // joins, member changes and refusals are the library's business, not the app's.
        let hidden: Vec<Vec<u8>> = self
            .inner
            .read(tables::groups_all)?
            .into_iter()
            .filter(|r| r.kind == crate::group::GroupKind::Account)
            .map(|r| r.group_id)
            .collect();
        let mut events = std::mem::take(&mut self.inner.deferred_events);
        events.retain(|e| e.group().is_none_or(|g| !hidden.contains(&g.0)));
        Ok(events)
    }

    /// What a sync does for one group after reading it: commits pending leave requests,
    /// rotates a last-resort leaf, re-proposes a dropped leave.
    async fn group_chores(&mut self, gid: &GroupId, status: GroupStatus) -> Result<(), Error> {
        let entered = self.enter_group(gid).await;
        let r = self.group_chores_in_group(gid, status).await;
        self.leave_group(entered, gid);
        r
    }

    /// [`group_chores`](Self::group_chores) with the group's ordering lock held.
    async fn group_chores_in_group(
        &mut self,
        gid: &GroupId,
        status: GroupStatus,
    ) -> Result<(), Error> {
        let gid = gid.clone();
        {
            match status {
                GroupStatus::Active => {
                    // What remains waits for a member who may commit it.
                    self.commit_pending(&gid).await?;
                    self.answer_resyncs(&gid).await?;
                    let flag = |c: &_| group_state::flag(c, &gid.0, GroupFlag::NeedsUpdate);
                    if self.inner.read(flag)? == 1 {
                        self.run_commit(&gid, Intent::Update).await?;
                        self.inner.atomic(|cx| {
                            group_state::set_flag(cx.c, &gid.0, GroupFlag::NeedsUpdate, 0)
                        })?;
                    }
                }
                GroupStatus::Leaving => {
                    let asked = self
                        .inner
                        .read(|c| group_state::flag(c, &gid.0, GroupFlag::LeaveEpoch))?;
                    let epoch = self
                        .inner
                        .ctx_read(|cx| Ok(cx.peek(&gid, |g| g.epoch().as_u64())?))?;
                    if epoch > asked {
                        self.inner.atomic(|cx| {
                            tables::group_set_status(cx.c, &gid.0, GroupStatus::Active)
                        })?;
                        match self.leave(&gid).await {
                            // Meanwhile made the last owner (GOV-6): the group stays active
                            // and the user must name a successor; no sync fails for it.
                            Err(Error::Group(GroupError::Governance(e))) => {
                                tracing::info!(error = %e, "leave request not renewed");
                            }
                            r => r?,
                        }
                    }
                }
                GroupStatus::Left => {}
            }
        }
        Ok(())
    }
}

/// The items of a page that follow `cursor`, up to `until`, in strictly increasing order: a
/// transport that repeats or reorders items cannot move a cursor back (AGREE-7).
fn in_order(items: &[Delivered], cursor: u64, until: u64) -> Vec<&Delivered> {
    let mut last = cursor;
    let mut out = Vec::with_capacity(items.len());
    for i in items {
        if i.seq > last && i.seq <= until {
            last = i.seq;
            out.push(i);
        }
    }
    out
}
