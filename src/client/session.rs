//! What one call of a [`Client`](super::Client) runs on: the state lock it holds only between
//! network requests, and the ordering locks that keep calls on the same thing in sequence
//! (spec/storage.md STORE-5).

use std::sync::Arc;

use tokio::sync::Mutex;

use super::state::Inner;
use crate::directory::Directory;
use crate::group::GroupId;
use crate::transport::Transport;

/// What one call of a [`Client`](super::Client) runs on: the client's state, locked while the call works on
/// it and released while it waits on the network ([`Held::io`]), and the ordering locks it
/// took ([`Locks`]).
pub(crate) struct Session<'a> {
    pub(crate) inner: Held<'a>,
    pub(crate) directory: &'a dyn Directory,
    pub(crate) transport: &'a dyn Transport,
    /// Directory lookups of members made by this call (TRUST-23's budget).
    pub(crate) lookups: usize,
    pub(super) locks: &'a Locks,
    /// The groups this call works on, each locked once however deep the calls nest.
    pub(super) groups: Vec<(GroupId, tokio::sync::OwnedMutexGuard<()>)>,
    pub(super) account: Option<tokio::sync::MutexGuard<'a, ()>>,
}

/// The client's state behind its lock. A call holds it only while it reads or changes state:
/// [`io`](Self::io) releases it for each network request, so other calls (a message sent in
/// one group while a sync waits on the delivery service or processes another group) go on
/// meanwhile.
pub(crate) struct Held<'a> {
    lock: &'a Mutex<Inner>,
    /// `None` only inside `io`, which holds `&mut self` throughout: nothing else observes it.
    guard: Option<tokio::sync::MutexGuard<'a, Inner>>,
}

impl<'a> Held<'a> {
    pub(super) async fn lock(lock: &'a Mutex<Inner>) -> Held<'a> {
        Held {
            lock,
            guard: Some(lock.lock().await),
        }
    }

    /// Awaits `request` (a network request, or a wait for an ordering lock) with the state
    /// unlocked, and locks it again. State read before may have changed when it returns, except
    /// what the caller's ordering locks ([`Locks`]) protect.
    pub(crate) async fn io<F: std::future::Future>(&mut self, request: F) -> F::Output {
        self.guard = None;
        let out = request.await;
        self.guard = Some(self.lock.lock().await);
        out
    }
}

impl std::ops::Deref for Held<'_> {
    type Target = Inner;

    #[allow(clippy::expect_used)]
    fn deref(&self) -> &Inner {
        // `io` empties the guard and fills it again before it returns, with `&mut self`
        // borrowed throughout: no caller can observe it empty.
        self.guard
            .as_deref()
            .expect("state locked outside Held::io")
    }
}

impl std::ops::DerefMut for Held<'_> {
    #[allow(clippy::expect_used)]
    fn deref_mut(&mut self) -> &mut Inner {
        // As in `deref`.
        self.guard
            .as_deref_mut()
            .expect("state locked outside Held::io")
    }
}

/// Ordering locks, held across network requests (unlike the state's lock), so that the calls
/// that change one thing happen one after another:
/// - one per group: a call that reads a group, talks to the network and then changes the
///   group (fetching its mailbox, a commit, a send) holds it, so two such calls on one group
///   never interleave;
/// - `account`: account-wide work (syncs, joins from Welcomes, KeyPackages, identity and
///   trust changes, creating groups), one call at a time;
/// - `welcomes_out`: sending the queued Welcomes.
///
/// Order, so that no two calls wait on each other: `account` before any group lock; at most
/// one group lock at a time (nested calls on the same group reuse it); `welcomes_out` last,
/// with nothing taken after it. The state's lock is never held while waiting for these.
#[derive(Default)]
pub(crate) struct Locks {
    pub(super) account: Mutex<()>,
    welcomes_out: Arc<Mutex<()>>,
    groups: std::sync::Mutex<std::collections::HashMap<GroupId, Arc<Mutex<()>>>>,
}

impl Locks {
    fn group(&self, group: &GroupId) -> Arc<Mutex<()>> {
        // A poisoned map only means a thread panicked while inserting: the map is still
        // whole.
        let mut map = self.groups.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(group.clone()).or_default().clone()
    }
}

impl Session<'_> {
    /// Takes `group`'s ordering lock unless this call already holds it; returns whether it
    /// took it (pass that to [`leave_group`](Self::leave_group)). The state is unlocked
    /// while waiting, so read the group only after this.
    pub(crate) async fn enter_group(&mut self, group: &GroupId) -> bool {
        if self.groups.iter().any(|(g, _)| g == group) {
            return false;
        }
        // Two calls each holding one group and waiting for the other's would wait forever.
        debug_assert!(
            self.groups.is_empty(),
            "a call holds one group's lock at a time"
        );
        let lock = self.locks.group(group);
        let guard = self.inner.io(lock.lock_owned()).await;
        self.groups.push((group.clone(), guard));
        true
    }

    /// Releases `group`'s ordering lock if [`enter_group`](Self::enter_group) took it.
    pub(crate) fn leave_group(&mut self, entered: bool, group: &GroupId) {
        if entered {
            self.groups.retain(|(g, _)| g != group);
        }
    }

    /// Sends the queued Welcomes one call at a time (see [`Locks`]).
    pub(crate) async fn welcomes_out_lock(&mut self) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = self.locks.welcomes_out.clone();
        self.inner.io(lock.lock_owned()).await
    }
}
