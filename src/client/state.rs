//! The client's locked state and the atomic-transaction helper.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use openmls::prelude::{Ciphersuite, GroupId as MlsGroupId, MlsGroup};
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::RustCrypto;
use openmls_traits::OpenMlsProvider as _;
use rusqlite::{Connection, TransactionBehavior};

use super::history::{self, AuthorOnly, ModerationPolicy};
use super::{Error, GroupInfo, Message};
use crate::clock::Clock;
use crate::group::{GroupError, GroupId, GroupStatus, Member, Roster, RosterChange};
use crate::identity::{
    DeviceIdentity, IdentityKeyPair, InstallationCertificate, InstallationKeyPair,
};
use crate::keypackage::KeyPackagePolicy;
use crate::storage::{tables, Provider, StorageError, Store};
use crate::transport::MailboxId;
use crate::trust::AccountConsent;

pub(crate) struct Inner {
    pub(crate) store: Store,
    pub(crate) crypto: RustCrypto,
    pub(crate) device: DeviceIdentity,
    pub(crate) cs: Ciphersuite,
    pub(crate) policy: KeyPackagePolicy,
    /// Single-use KeyPackages of others we already put in a commit (KP-5).
    pub(crate) used_key_packages: std::collections::HashSet<Vec<u8>>,
    /// Unendorsed identity keys seen per contact and not accepted (TRUST-5): memory only.
    /// Syncs that failed to fetch a Welcome's tree, by the Welcome's position (AGREE-7). In
    /// memory: a restart gives a Welcome a few more tries, and a refused fetch changes nothing
    /// stored.
    /// Group items refused in a row, none processed, per group (AGREE-8): in memory.
    pub(crate) refused_runs: std::collections::HashMap<crate::group::GroupId, u32>,
    /// A Welcome waits for a second pass of this sync (AGREE-7).
    pub(crate) welcome_again: bool,
    pub(crate) welcome_tries: std::collections::HashMap<u64, u64>,
    pub(crate) unendorsed:
        std::collections::HashMap<crate::identity::Did, crate::identity::PublicKey>,
    /// Events raised outside a sync (trust lookups, messages read while committing or
    /// sending), handed out by the next sync in the order they happened.
    pub(crate) deferred_events: Vec<super::Event>,
    /// Who may delete others' messages (CONTENT-26).
    pub(crate) moderation: std::sync::Arc<dyn ModerationPolicy>,
    /// Groups as of the last committed transaction, so that an operation does not reload
    /// (and decode) a large group from SQLite (LG-3). Only ever holds committed state.
    pub(crate) groups: GroupCache,
    /// Valid leaves by content (LG-5).
    pub(crate) verdicts: crate::credential::VerdictCache,
    /// The time this client reads ([`ClientBuilder::clock`](super::ClientBuilder::clock)).
    pub(crate) clock: Arc<dyn Clock>,
    /// Certificate renewal and leaf rotation schedule (ID-7, GROUP-10).
    pub(crate) upkeep: super::upkeep::Upkeep,
}

/// Runs SQLite and openmls work (milliseconds to seconds at 10,000 members) so that it does not
/// hold up the other tasks of the caller's runtime: on a multi-thread runtime the worker
/// hands its other tasks to the rest of the pool for the duration (`block_in_place`). A
/// current-thread runtime has no other thread to hand them to, and no blocking pool can take
/// `f` (it borrows the client's state), so there it runs in place.
fn blocking<R>(f: impl FnOnce() -> R) -> R {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// At most this many groups stay decoded in memory.
const CACHED_GROUPS: usize = 32;

/// Loaded groups by id (LG-3), with their rosters (LG-8).
#[derive(Default)]
pub(crate) struct GroupCache {
    groups: HashMap<GroupId, MlsGroup>,
    /// Each names the tree it describes (by tree hash) and is used only for that tree, so
    /// one may outlive its group here; it is dropped with it all the same.
    rosters: HashMap<GroupId, Arc<Roster>>,
    /// Our leaf signers by public key (LG-15). Derived from stored keys, so a rollback does
    /// not touch them (one whose key was not committed is never asked for).
    signers: HashMap<Vec<u8>, Arc<crate::group::LeafSigner>>,
}

/// The cache as one transaction sees it: groups it loaded are taken out (and marked), and go
/// back only through [`Ctx::keep`] once the operation left them consistent with storage.
#[derive(Default)]
pub(crate) struct TxCache {
    cache: GroupCache,
    touched: HashSet<GroupId>,
}

impl TxCache {
    fn new(cache: GroupCache) -> Self {
        TxCache {
            cache,
            touched: HashSet::new(),
        }
    }

    /// After a commit: every kept group is committed state.
    fn committed(self) -> GroupCache {
        self.cache
    }

    /// After a rollback: groups kept in this transaction hold state that was not committed.
    fn rolled_back(mut self) -> GroupCache {
        for g in &self.touched {
            self.cache.groups.remove(g);
            self.cache.rosters.remove(g);
        }
        self.cache
    }
}

/// What a closure inside a transaction sees.
pub(crate) struct Ctx<'a> {
    pub(crate) p: Provider<'a>,
    pub(crate) c: &'a Connection,
    pub(crate) dev: &'a DeviceIdentity,
    pub(crate) cs: Ciphersuite,
    pub(crate) moderation: &'a dyn ModerationPolicy,
    pub(crate) cache: RefCell<TxCache>,
    pub(crate) verdicts: &'a crate::credential::VerdictCache,
    pub(crate) clock: &'a dyn Clock,
}

impl Ctx<'_> {
    /// The client's clock (unix seconds).
    pub(crate) fn now(&self) -> u64 {
        self.clock.now()
    }

    /// The group as of this transaction: from the cache, else decoded from storage. The caller
    /// owns it; [`keep`](Self::keep) puts it back when the operation succeeded.
    pub(crate) fn load(&self, group: &GroupId) -> Result<MlsGroup, GroupError> {
        let mut cache = self.cache.borrow_mut();
        cache.touched.insert(group.clone());
        if let Some(g) = cache.cache.groups.remove(group) {
            return Ok(g);
        }
        drop(cache);
        MlsGroup::load(self.p.storage(), &MlsGroupId::from_slice(&group.0))
            .map_err(|e| GroupError::Mls(format!("loading group: {e:?}")))?
            .ok_or(GroupError::UnknownGroup)
    }

    /// Puts a group back in the cache: its in-memory state must be what this transaction
    /// wrote (openmls writes every change through the provider). Dropped again if the
    /// transaction rolls back.
    pub(crate) fn keep(&self, group: &GroupId, g: MlsGroup) {
        let mut cache = self.cache.borrow_mut();
        cache.touched.insert(group.clone());
        let c = &mut cache.cache;
        if c.groups.len() >= CACHED_GROUPS && !c.groups.contains_key(group) {
            if let Some(k) = c.groups.keys().next().cloned() {
                c.groups.remove(&k);
                c.rosters.remove(&k);
            }
        }
        c.groups.insert(group.clone(), g);
    }

    /// The roster of `g` (the group `group` as this transaction holds it): the cached one if
    /// it describes `g`'s tree, else decoded from the tree and cached (LG-8).
    pub(crate) fn roster(&self, group: &GroupId, g: &MlsGroup) -> Arc<Roster> {
        if let Some(r) = self.cache.borrow().cache.rosters.get(group) {
            if r.fits(g) {
                return r.clone();
            }
        }
        let r = Arc::new(Roster::of(g));
        self.cache
            .borrow_mut()
            .cache
            .rosters
            .insert(group.clone(), r.clone());
        r
    }

    /// The cached roster of `g`, if there is one that describes its tree (LG-8).
    pub(crate) fn cached_roster(&self, group: &GroupId, g: &MlsGroup) -> Option<Arc<Roster>> {
        self.cache
            .borrow()
            .cache
            .rosters
            .get(group)
            .filter(|r| r.fits(g))
            .cloned()
    }

    /// After `g` merged the commit whose changes are `change`: moves the roster on from
    /// `before` (the roster of the tree before the merge) in O(changes). Without a change,
    /// or when the tree is not what it predicts, the roster is dropped and rebuilt when next
    /// needed (LG-8).
    pub(crate) fn roster_merged(
        &self,
        group: &GroupId,
        before: Arc<Roster>,
        change: Option<RosterChange>,
        g: &MlsGroup,
    ) {
        let mut cache = self.cache.borrow_mut();
        cache.touched.insert(group.clone());
        cache.cache.rosters.remove(group);
        let Some(change) = change else { return };
        // The transaction's own copy is gone; cloning happens only if a caller still holds
        // one.
        let mut r = Arc::try_unwrap(before).unwrap_or_else(|a| (*a).clone());
        if r.advance(change, g) {
            cache.cache.rosters.insert(group.clone(), Arc::new(r));
        }
    }

    /// Forgets the roster of a group whose state was deleted.
    pub(crate) fn forget_roster(&self, group: &GroupId) {
        self.cache.borrow_mut().cache.rosters.remove(group);
    }

    /// Runs a read-only `f` on the group, keeping it cached.
    pub(crate) fn peek<R>(
        &self,
        group: &GroupId,
        f: impl FnOnce(&MlsGroup) -> R,
    ) -> Result<R, GroupError> {
        let g = self.load(group)?;
        let r = f(&g);
        self.keep(group, g);
        Ok(r)
    }

    /// The signer of our leaf in `group`: kept in memory once read (LG-15).
    pub(crate) fn signer(
        &self,
        group: &MlsGroup,
    ) -> Result<Arc<crate::group::LeafSigner>, GroupError> {
        let leaf = group.own_leaf_node().ok_or(GroupError::NotMember)?;
        let public = leaf.signature_key().as_slice();
        if let Some(s) = self.cache.borrow().cache.signers.get(public) {
            return Ok(s.clone());
        }
        let pair = SignatureKeyPair::read(self.p.storage(), public, self.cs.signature_algorithm())
            .ok_or(GroupError::Mls("leaf signer missing from storage".into()))?;
        let s = Arc::new(crate::group::LeafSigner::new(pair));
        let mut cache = self.cache.borrow_mut();
        let signers = &mut cache.cache.signers;
        // One per group we are in, give or take an update: bounded like the groups.
        if signers.len() >= 2 * CACHED_GROUPS {
            signers.clear();
        }
        signers.insert(public.to_vec(), s.clone());
        Ok(s)
    }
}

const K_DID: &str = "did";
const K_INSTALLATION: &str = "installation_secret";
pub(crate) const K_CERT: &str = "certificate";
pub(crate) const K_IDENTITY: &str = "identity_secret";

impl Inner {
    pub(crate) fn open(
        store: Store,
        identity: Option<DeviceIdentity>,
        cs: Ciphersuite,
        policy: KeyPackagePolicy,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, Error> {
        let c = &store.conn;
        let stored = match (
            tables::account_get(c, K_INSTALLATION)?,
            tables::account_get(c, K_CERT)?,
        ) {
            (Some(secret), Some(cert)) => {
                let certificate: InstallationCertificate = serde_json::from_slice(&cert)
                    .map_err(|_| StorageError::Corrupt("certificate"))?;
                let installation = InstallationKeyPair::from_secret_bytes(&secret)?;
                let identity_key = tables::account_get(c, K_IDENTITY)?
                    .map(|s| IdentityKeyPair::from_secret_bytes(&s))
                    .transpose()?;
                Some(DeviceIdentity {
                    did: certificate.did.clone(),
                    installation,
                    certificate,
                    identity_key,
                })
            }
            _ => None,
        };
        let device = match (stored, identity) {
            (Some(s), Some(given)) if s.installation.public() != given.installation.public() => {
                return Err(Error::IdentityMismatch)
            }
            (Some(s), _) => s,
            (None, Some(given)) => {
                let cert = serde_json::to_vec(&given.certificate)
                    .map_err(|_| StorageError::Corrupt("certificate"))?;
                let tx = store
                    .conn
                    .unchecked_transaction()
                    .map_err(StorageError::from)?;
                tables::account_set(&tx, K_DID, given.did.as_str().as_bytes())?;
                tables::account_set(&tx, K_INSTALLATION, &given.installation.secret_bytes()[..])?;
                tables::account_set(&tx, K_CERT, &cert)?;
                if let Some(k) = &given.identity_key {
                    tables::account_set(&tx, K_IDENTITY, &k.secret_bytes()[..])?;
                }
                tx.commit().map_err(StorageError::from)?;
                given
            }
            (None, None) => return Err(Error::NoIdentity),
        };
        // Our own account is pinned to the key that certified us: an unendorsed declaration
        // for our DID is treated like any contact's (TRUST-9).
        crate::storage::trust::pin_first(
            &store.conn,
            &device.did,
            &device.certificate.identity_key,
            0,
            clock.now(),
        )?;
        Ok(Inner {
            store,
            crypto: RustCrypto::default(),
            device,
            cs,
            policy,
            used_key_packages: Default::default(),
            unendorsed: Default::default(),
            welcome_tries: Default::default(),
            welcome_again: false,
            refused_runs: Default::default(),
            deferred_events: Vec::new(),
            moderation: std::sync::Arc::new(AuthorOnly),
            groups: GroupCache::default(),
            verdicts: Default::default(),
            clock,
            upkeep: Default::default(),
        })
    }

    /// The client's clock (unix seconds).
    pub(crate) fn now(&self) -> u64 {
        self.clock.now()
    }

    /// Runs `f` in one SQLite transaction: committed if it returns `Ok`, rolled back otherwise
    /// (STORE-1). Groups `f` loaded are cached again only if the transaction commits (LG-3),
    /// so a rollback also discards in-memory changes.
    pub(crate) fn atomic<R, E: From<StorageError>>(
        &mut self,
        f: impl FnOnce(&Ctx<'_>) -> Result<R, E>,
    ) -> Result<R, E> {
        blocking(|| self.atomic_here(f))
    }

    fn atomic_here<R, E: From<StorageError>>(
        &mut self,
        f: impl FnOnce(&Ctx<'_>) -> Result<R, E>,
    ) -> Result<R, E> {
        let tx = self
            .store
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StorageError::from)?;
        let ctx = Ctx {
            p: Provider::new(&self.crypto, &tx),
            c: &tx,
            dev: &self.device,
            cs: self.cs,
            moderation: &*self.moderation,
            cache: RefCell::new(TxCache::new(std::mem::take(&mut self.groups))),
            verdicts: &self.verdicts,
            clock: &*self.clock,
        };
        let r = f(&ctx);
        let cache = ctx.cache.into_inner();
        match r {
            Ok(v) => match tx.commit() {
                Ok(()) => {
                    self.groups = cache.committed();
                    Ok(v)
                }
                Err(e) => {
                    self.groups = cache.rolled_back();
                    Err(StorageError::from(e).into())
                }
            },
            Err(e) => {
                // Dropping the transaction rolls it back.
                drop(tx);
                self.groups = cache.rolled_back();
                Err(e)
            }
        }
    }

    /// Read-only access.
    pub(crate) fn read<R>(
        &self,
        f: impl FnOnce(&Connection) -> Result<R, StorageError>,
    ) -> Result<R, Error> {
        Ok(blocking(|| f(&self.store.conn))?)
    }

    /// Read-only access through openmls (no transaction; groups stay cached).
    pub(crate) fn ctx_read<R>(
        &mut self,
        f: impl FnOnce(&Ctx<'_>) -> Result<R, Error>,
    ) -> Result<R, Error> {
        blocking(|| self.ctx_read_here(f))
    }

    fn ctx_read_here<R>(
        &mut self,
        f: impl FnOnce(&Ctx<'_>) -> Result<R, Error>,
    ) -> Result<R, Error> {
        let ctx = Ctx {
            p: Provider::new(&self.crypto, &self.store.conn),
            c: &self.store.conn,
            dev: &self.device,
            cs: self.cs,
            moderation: &*self.moderation,
            cache: RefCell::new(TxCache::new(std::mem::take(&mut self.groups))),
            verdicts: &self.verdicts,
            clock: &*self.clock,
        };
        let r = f(&ctx);
        // Nothing was written: whatever was loaded is committed state.
        self.groups = ctx.cache.into_inner().committed();
        r
    }

    /// The conversations the user sees: not those held back as requests or declined
    /// (CONSENT-3).
    pub(crate) fn group_infos(&mut self) -> Result<Vec<GroupInfo>, Error> {
        let held: HashSet<Vec<u8>> = self
            .read(crate::storage::consent::all_held)?
            .into_iter()
            .map(|(g, _)| g)
            .collect();
        let mut all = self.all_group_infos()?;
        // Nor the account's own-device group (CONSENT-7).
        all.retain(|i| !held.contains(&i.id.0) && i.kind != crate::group::GroupKind::Account);
        Ok(all)
    }

    /// Every conversation of this device, requests included.
    pub(crate) fn all_group_infos(&mut self) -> Result<Vec<GroupInfo>, Error> {
        let rows = self.read(tables::groups_all)?;
        self.ctx_read(|cx| {
            rows.into_iter()
                .map(|r| {
                    let id = GroupId(r.group_id);
                    let epoch = cx.peek(&id, |g| g.epoch().as_u64()).unwrap_or(0);
                    Ok(GroupInfo {
                        id,
                        kind: r.kind,
                        dm_peer: r.dm_peer,
                        status: r.status,
                        epoch,
                    })
                })
                .collect()
        })
    }

    pub(crate) fn members(&mut self, group: &GroupId) -> Result<Vec<Member>, Error> {
        self.ctx_read(|cx| Ok(cx.peek(group, |g| cx.roster(group, g).members())?))
    }

    /// The group's live timeline, oldest first, with edits applied and deleted items left
    /// out.
    pub(crate) fn messages(&self, group: &GroupId) -> Result<Vec<Message>, Error> {
        let now = self.now();
        let c = &self.store.conn;
        let mut rows = crate::storage::history::page(c, &group.0, None, u32::MAX, now)?;
        rows.reverse();
        let blocked = crate::storage::consent::accounts_in(c, AccountConsent::Blocked)?;
        let mut out = Vec::new();
        for row in rows {
            let item = history::to_item(c, row)?;
            // A blocked account's messages are hidden, not deleted (CONSENT-6).
            if blocked.iter().any(|d| *d == item.sender.did.as_str()) {
                continue;
            }
            if let Some(content) = item.content {
                out.push(Message {
                    group: item.group,
                    id: item.id,
                    seq: item.seq,
                    sender: item.sender,
                    content,
                    outgoing: item.outgoing,
                    received: item.received,
                });
            }
        }
        Ok(out)
    }

    /// The current mailbox of every group this device is in (GROUP-4a).
    pub(crate) fn group_mailboxes(&self) -> Result<Vec<MailboxId>, Error> {
        Ok(self
            .read(tables::groups_all)?
            .into_iter()
            .filter(|g| g.status != GroupStatus::Left)
            .map(|g| MailboxId(g.mailbox))
            .collect())
    }

    #[cfg(feature = "test-utils")]
    pub(crate) fn epoch_fingerprint(&mut self, group: &GroupId) -> Result<(u64, Vec<u8>), Error> {
        self.ctx_read(|cx| {
            let (epoch, secret) = cx.peek(group, |g| {
                (
                    g.epoch().as_u64(),
                    g.export_secret(cx.p.crypto(), "atmls/test/fingerprint", &[], 32),
                )
            })?;
            Ok((epoch, secret.map_err(|e| GroupError::Mls(e.to_string()))?))
        })
    }
}
