//! The in-process transport: the embedded default and the tests' delivery service.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::{
    CommitOutcome, Delivered, EpochTag, IdempotencyKey, Kind, Mailbox, MailboxId, Page,
    SendOutcome, Subscription, Transport, TransportError, TreeLocator, MAX_COMMIT_PAYLOAD,
    MAX_PAYLOAD, MAX_TREE_BLOB, MAX_WELCOME_PAYLOAD, TREE_TTL_SECS,
};

#[derive(Default)]
struct Slot {
    items: Vec<Delivered>,
    /// Epoch tag → indices of the commits stored for it, in order (TRANSPORT-1).
    commits: HashMap<EpochTag, Vec<usize>>,
    /// Idempotency key → position already stored.
    seen: HashMap<IdempotencyKey, u64>,
    /// Hash of the posting capability, fixed by the first post.
    capability: Option<[u8; 32]>,
}

#[derive(Default)]
struct State {
    boxes: HashMap<MailboxId, Slot>,
    subscribers: Vec<(HashSet<MailboxId>, mpsc::UnboundedSender<MailboxId>)>,
    /// Ratchet-tree blobs and when they expire (LG-T-3, LG-T-4).
    trees: HashMap<TreeLocator, (Vec<u8>, Instant)>,
}

// The example's `unwrap`s are on a runtime and a transport it creates itself.
/// One commit per epoch per mailbox, idempotent sends, cursors, subscriptions: all in memory.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use atmls::transport::*;
/// let t = MemoryTransport::new();
/// let mb = Mailbox::from_capability([2; 32]);
/// let epoch = EpochTag([3; 32]);
/// let first = t.submit_commit(&mb, &epoch, 0, b"c1", &IdempotencyKey::random()).await.unwrap();
/// assert_eq!(first, CommitOutcome::Accepted { seq: 1 });
/// let second = t.submit_commit(&mb, &epoch, 0, b"c2", &IdempotencyKey::random()).await.unwrap();
/// assert!(matches!(second, CommitOutcome::Rejected { .. }));
/// # });
/// ```
pub struct MemoryTransport {
    state: Mutex<State>,
    tree_ttl: Duration,
}

impl Default for MemoryTransport {
    fn default() -> Self {
        Self::with_tree_ttl(Duration::from_secs(TREE_TTL_SECS))
    }
}

fn capability_hash(secret: &Option<[u8; 32]>) -> Option<[u8; 32]> {
    secret.map(|s| Sha256::digest(s).into())
}

/// The stateless check of atmls-ds (spec/ds.md DS-3): a capability is accepted only for the
/// mailbox id it hashes to, even for a mailbox nothing was posted to yet (a group that moved,
/// spec/group.md GROUP-4a).
fn check_capability(mailbox: &Mailbox) -> Result<(), TransportError> {
    match &mailbox.post_secret {
        Some(cap) if MailboxId::for_capability(cap) != mailbox.id => Err(TransportError::Forbidden),
        _ => Ok(()),
    }
}

impl MemoryTransport {
    /// An empty transport.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty transport that keeps ratchet-tree blobs for `ttl` instead of
    /// [`TREE_TTL_SECS`] (tests of expiry).
    pub fn with_tree_ttl(ttl: Duration) -> Self {
        MemoryTransport {
            state: Mutex::new(State::default()),
            tree_ttl: ttl,
        }
    }

    fn with<R>(
        &self,
        f: impl FnOnce(&mut State) -> Result<R, TransportError>,
    ) -> Result<R, TransportError> {
        let mut g = self
            .state
            .lock()
            .map_err(|_| TransportError::Unavailable("transport lock poisoned".into()))?;
        f(&mut g)
    }

    /// Appends to a mailbox after the capability and idempotency checks.
    fn append(
        st: &mut State,
        mailbox: &MailboxId,
        capability: Option<[u8; 32]>,
        kind: Kind,
        payload: &[u8],
        key: &IdempotencyKey,
    ) -> Result<(u64, bool), TransportError> {
        let limit = match kind {
            Kind::Welcome => MAX_WELCOME_PAYLOAD,
            Kind::Commit => MAX_COMMIT_PAYLOAD,
            Kind::Message => MAX_PAYLOAD,
        };
        if payload.len() > limit {
            return Err(TransportError::PayloadTooLarge {
                size: payload.len(),
                limit,
            });
        }
        let b = st.boxes.entry(*mailbox).or_default();
        match (&b.capability, capability) {
            (None, c) if b.items.is_empty() => b.capability = c,
            (Some(have), Some(given)) if *have == given => {}
            (None, None) => {}
            _ => return Err(TransportError::Forbidden),
        }
        if let Some(seq) = b.seen.get(key) {
            return Ok((*seq, false));
        }
        let seq = b.items.len() as u64 + 1;
        b.items.push(Delivered {
            seq,
            kind,
            payload: payload.to_vec(),
        });
        b.seen.insert(*key, seq);
        Ok((seq, true))
    }

    /// The index of the first commit for `epoch` stored after position `after`.
    fn commit_after(b: &Slot, epoch: &EpochTag, after: u64) -> Option<usize> {
        b.commits
            .get(epoch)?
            .iter()
            .copied()
            .find(|&i| i as u64 + 1 > after)
    }

    fn notify(st: &mut State, mailbox: &MailboxId) {
        st.subscribers
            .retain(|(set, tx)| !set.contains(mailbox) || tx.send(*mailbox).is_ok());
    }
}

#[async_trait]
impl Transport for MemoryTransport {
    async fn submit_commit(
        &self,
        mailbox: &Mailbox,
        epoch: &EpochTag,
        after: u64,
        payload: &[u8],
        key: &IdempotencyKey,
    ) -> Result<CommitOutcome, TransportError> {
        check_capability(mailbox)?;
        self.with(|st| {
            if let Some(b) = st.boxes.get(&mailbox.id) {
                if let Some(seq) = b.seen.get(key) {
                    return Ok(CommitOutcome::Accepted { seq: *seq });
                }
                if let Some(i) = Self::commit_after(b, epoch, after) {
                    if capability_hash(&mailbox.post_secret) != b.capability {
                        return Err(TransportError::Forbidden);
                    }
                    let winner = b.items.get(i).cloned().ok_or_else(|| {
                        TransportError::Unavailable("commit index out of range".into())
                    })?;
                    return Ok(CommitOutcome::Rejected { winner });
                }
            }
            let cap = capability_hash(&mailbox.post_secret);
            let (seq, new) = Self::append(st, &mailbox.id, cap, Kind::Commit, payload, key)?;
            if new {
                if let Some(b) = st.boxes.get_mut(&mailbox.id) {
                    b.commits
                        .entry(*epoch)
                        .or_default()
                        .push((seq - 1) as usize);
                }
                Self::notify(st, &mailbox.id);
            }
            Ok(CommitOutcome::Accepted { seq })
        })
    }

    async fn send_message(
        &self,
        mailbox: &Mailbox,
        epoch: &EpochTag,
        after: u64,
        payload: &[u8],
        key: &IdempotencyKey,
    ) -> Result<SendOutcome, TransportError> {
        check_capability(mailbox)?;
        self.with(|st| {
            if let Some(b) = st.boxes.get(&mailbox.id) {
                if Self::commit_after(b, epoch, after).is_some() && !b.seen.contains_key(key) {
                    return Ok(SendOutcome::StaleEpoch);
                }
            }
            let cap = capability_hash(&mailbox.post_secret);
            let (seq, new) = Self::append(st, &mailbox.id, cap, Kind::Message, payload, key)?;
            if new {
                Self::notify(st, &mailbox.id);
            }
            Ok(SendOutcome::Accepted { seq })
        })
    }

    async fn send_welcome(
        &self,
        mailbox: &MailboxId,
        payload: &[u8],
        key: &IdempotencyKey,
    ) -> Result<u64, TransportError> {
        self.with(|st| {
            let (seq, new) = Self::append(st, mailbox, None, Kind::Welcome, payload, key)?;
            if new {
                Self::notify(st, mailbox);
            }
            Ok(seq)
        })
    }

    async fn fetch(
        &self,
        mailbox: &MailboxId,
        after: u64,
        limit: u32,
    ) -> Result<Page, TransportError> {
        self.with(|st| {
            let Some(b) = st.boxes.get(mailbox) else {
                return Ok(Page::default());
            };
            let start = usize::try_from(after)
                .unwrap_or(usize::MAX)
                .min(b.items.len());
            let limit = (limit.max(1)) as usize;
            let items: Vec<Delivered> = b.items.iter().skip(start).take(limit).cloned().collect();
            let more = start + items.len() < b.items.len();
            Ok(Page { items, more })
        })
    }

    async fn subscribe(&self, mailboxes: &[MailboxId]) -> Result<Subscription, TransportError> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.with(|st| {
            st.subscribers
                .push((mailboxes.iter().copied().collect(), tx));
            Ok(())
        })?;
        Ok(Subscription::new(rx))
    }

    async fn put_tree(&self, locator: &TreeLocator, blob: &[u8]) -> Result<(), TransportError> {
        if blob.len() > MAX_TREE_BLOB {
            return Err(TransportError::PayloadTooLarge {
                size: blob.len(),
                limit: MAX_TREE_BLOB,
            });
        }
        if blob.is_empty() {
            return Err(TransportError::Refused("empty tree blob".into()));
        }
        let now = Instant::now();
        self.with(|st| {
            st.trees.retain(|_, (_, until)| *until > now);
            match st.trees.get(locator) {
                Some((have, _)) if have.as_slice() == blob => Ok(()),
                Some(_) => Err(TransportError::Refused(
                    "another tree is stored under this locator".into(),
                )),
                None => {
                    st.trees
                        .insert(*locator, (blob.to_vec(), now + self.tree_ttl));
                    Ok(())
                }
            }
        })
    }

    async fn fetch_tree(&self, locator: &TreeLocator) -> Result<Vec<u8>, TransportError> {
        let now = Instant::now();
        self.with(|st| match st.trees.get(locator) {
            Some((blob, until)) if *until > now => Ok(blob.clone()),
            _ => Err(TransportError::NotFound),
        })
    }
}

// Test code: `unwrap` only on values the tests build themselves.
#[cfg(test)]
mod tests {
    use super::*;

    /// The mailbox of capability 1, posted to with capability `cap`.
    fn mb(cap: u8) -> Mailbox {
        Mailbox {
            id: MailboxId::for_capability(&[1; 32]),
            post_secret: Some([cap; 32]),
        }
    }

    #[tokio::test]
    async fn transport_1_one_commit_per_epoch() {
        let t = MemoryTransport::new();
        let e = EpochTag([1; 32]);
        assert_eq!(
            t.submit_commit(&mb(1), &e, 0, b"a", &IdempotencyKey([1; 16]))
                .await
                .unwrap(),
            CommitOutcome::Accepted { seq: 1 }
        );
        let CommitOutcome::Rejected { winner } = t
            .submit_commit(&mb(1), &e, 0, b"b", &IdempotencyKey([2; 16]))
            .await
            .unwrap()
        else {
            panic!("second commit accepted")
        };
        assert_eq!(winner.payload, b"a");
        assert_eq!(t.fetch(&mb(1).id, 0, 10).await.unwrap().items.len(), 1);
    }

    /// TRANSPORT-1, TRANSPORT-3: a commit stored under a tag holds it only for posters whose
    /// cursor is before it; a poster that processed it (and is still in the epoch, so found
    /// it invalid) gets its commit or message stored after it.
    #[tokio::test]
    async fn transport_1_3_commits_ordered_after_the_posters_cursor() {
        let t = MemoryTransport::new();
        let e = EpochTag([1; 32]);
        let post = |after: u64, p: &'static [u8]| {
            let t = &t;
            async move {
                t.submit_commit(&mb(1), &e, after, p, &IdempotencyKey::random())
                    .await
                    .unwrap()
            }
        };
        assert_eq!(post(0, b"junk").await, CommitOutcome::Accepted { seq: 1 });
        // Not yet processed by this poster: the junk is what it must read first.
        let CommitOutcome::Rejected { winner } = post(0, b"c").await else {
            panic!("commit before the cursor accepted")
        };
        assert_eq!((winner.seq, winner.payload.as_slice()), (1, &b"junk"[..]));
        // Processed (and refused) by the poster: it holds nothing.
        assert_eq!(post(1, b"c").await, CommitOutcome::Accepted { seq: 2 });
        // The first commit after the cursor is the one reported.
        let CommitOutcome::Rejected { winner } = post(1, b"d").await else {
            panic!("second commit accepted")
        };
        assert_eq!(winner.seq, 2);
        let msg = |after: u64| {
            let t = &t;
            async move {
                t.send_message(&mb(1), &e, after, b"m", &IdempotencyKey::random())
                    .await
                    .unwrap()
            }
        };
        assert_eq!(msg(1).await, SendOutcome::StaleEpoch);
        assert_eq!(msg(2).await, SendOutcome::Accepted { seq: 3 });
        // Another epoch is not held by this one's commits.
        assert_eq!(
            t.submit_commit(
                &mb(1),
                &EpochTag([2; 32]),
                0,
                b"x",
                &IdempotencyKey::random()
            )
            .await
            .unwrap(),
            CommitOutcome::Accepted { seq: 4 }
        );
    }

    #[tokio::test]
    async fn transport_2_idempotent_retry_stored_once() {
        let t = MemoryTransport::new();
        let e = EpochTag([1; 32]);
        let k = IdempotencyKey([5; 16]);
        for _ in 0..3 {
            assert_eq!(
                t.send_message(&mb(1), &e, 0, b"m", &k).await.unwrap(),
                SendOutcome::Accepted { seq: 1 }
            );
        }
        assert_eq!(
            t.submit_commit(&mb(1), &e, 0, b"c", &IdempotencyKey([6; 16]))
                .await
                .unwrap(),
            CommitOutcome::Accepted { seq: 2 }
        );
        assert_eq!(
            t.submit_commit(&mb(1), &e, 0, b"c", &IdempotencyKey([6; 16]))
                .await
                .unwrap(),
            CommitOutcome::Accepted { seq: 2 }
        );
        assert_eq!(t.fetch(&mb(1).id, 0, 10).await.unwrap().items.len(), 2);
    }

    #[tokio::test]
    async fn transport_3_stale_epoch_message_refused() {
        let t = MemoryTransport::new();
        let e = EpochTag([1; 32]);
        t.submit_commit(&mb(1), &e, 0, b"c", &IdempotencyKey::random())
            .await
            .unwrap();
        assert_eq!(
            t.send_message(&mb(1), &e, 0, b"m", &IdempotencyKey::random())
                .await
                .unwrap(),
            SendOutcome::StaleEpoch
        );
    }

    #[tokio::test]
    async fn transport_4_capability_and_size_enforced() {
        let t = MemoryTransport::new();
        let e = EpochTag([1; 32]);
        t.send_message(&mb(1), &e, 0, b"m", &IdempotencyKey::random())
            .await
            .unwrap();
        assert_eq!(
            t.send_message(&mb(2), &e, 0, b"x", &IdempotencyKey::random())
                .await,
            Err(TransportError::Forbidden)
        );
        let big = vec![0u8; MAX_PAYLOAD + 1];
        assert!(matches!(
            t.send_message(&mb(1), &e, 0, &big, &IdempotencyKey::random())
                .await,
            Err(TransportError::PayloadTooLarge { .. })
        ));
        assert_eq!(t.fetch(&mb(1).id, 0, 10).await.unwrap().items.len(), 1);
        // Commits carry update paths that grow with the group: a larger limit (LG-13).
        // As at atmls-ds (DS-3): a capability counts only for the id it hashes to, even where
        // nothing was posted yet, so a removed member cannot start the mailbox its group moved
        // to (GROUP-4a).
        let fresh = Mailbox {
            id: MailboxId::for_capability(&[8; 32]),
            post_secret: Some([7; 32]),
        };
        assert_eq!(
            t.send_message(&fresh, &e, 0, b"m", &IdempotencyKey::random())
                .await,
            Err(TransportError::Forbidden)
        );
        assert_eq!(
            t.submit_commit(&fresh, &e, 0, b"c", &IdempotencyKey::random())
                .await,
            Err(TransportError::Forbidden)
        );
        assert!(t.fetch(&fresh.id, 0, 10).await.unwrap().items.is_empty());
        let m = Mailbox::from_capability([9; 32]);
        let c = m.id;
        t.submit_commit(&m, &e, 0, &big, &IdempotencyKey::random())
            .await
            .unwrap();
        let huge_commit = vec![0u8; MAX_COMMIT_PAYLOAD + 1];
        assert!(matches!(
            t.submit_commit(
                &m,
                &EpochTag([2; 32]),
                0,
                &huge_commit,
                &IdempotencyKey::random()
            )
            .await,
            Err(TransportError::PayloadTooLarge { .. })
        ));
        assert_eq!(t.fetch(&c, 0, 10).await.unwrap().items.len(), 1);
        // Welcomes carry the ratchet tree: a larger limit, still enforced.
        let w = MailboxId([0xEE; 32]);
        t.send_welcome(&w, &big, &IdempotencyKey::random())
            .await
            .unwrap();
        let huge = vec![0u8; MAX_WELCOME_PAYLOAD + 1];
        assert!(matches!(
            t.send_welcome(&w, &huge, &IdempotencyKey::random()).await,
            Err(TransportError::PayloadTooLarge { .. })
        ));
        assert_eq!(t.fetch(&w, 0, 10).await.unwrap().items.len(), 1);
    }

    #[tokio::test]
    async fn transport_5_fetch_pages_in_order() {
        let t = MemoryTransport::new();
        for i in 0..25u8 {
            t.send_message(
                &mb(1),
                &EpochTag([0; 32]),
                0,
                &[i],
                &IdempotencyKey::random(),
            )
            .await
            .unwrap();
        }
        let mut after = 0;
        let mut got = Vec::new();
        loop {
            let p = t.fetch(&mb(1).id, after, 10).await.unwrap();
            after = p.items.last().map(|d| d.seq).unwrap_or(after);
            got.extend(p.items.into_iter().map(|d| d.payload[0]));
            if !p.more {
                break;
            }
        }
        assert_eq!(got, (0..25).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn lg_t_3_tree_blobs_are_idempotent_bounded_and_expire() {
        let t = MemoryTransport::with_tree_ttl(Duration::from_millis(200));
        let l = TreeLocator([4; 32]);
        assert_eq!(t.fetch_tree(&l).await, Err(TransportError::NotFound));
        t.put_tree(&l, b"tree").await.unwrap();
        t.put_tree(&l, b"tree").await.unwrap();
        assert!(matches!(
            t.put_tree(&l, b"other").await,
            Err(TransportError::Refused(_))
        ));
        assert_eq!(t.fetch_tree(&l).await.unwrap(), b"tree");
        let big = vec![0u8; MAX_TREE_BLOB + 1];
        let e = t.put_tree(&TreeLocator([5; 32]), &big).await.unwrap_err();
        assert!(matches!(e, TransportError::PayloadTooLarge { .. }));
        assert!(!e.is_retryable());
        assert_eq!(
            t.fetch_tree(&TreeLocator([5; 32])).await,
            Err(TransportError::NotFound)
        );
        // LG-T-4: gone after its time to live.
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(t.fetch_tree(&l).await, Err(TransportError::NotFound));
        assert!(!TransportError::NotFound.is_retryable());
    }

    #[tokio::test]
    async fn transport_6_subscription_notifies() {
        let t = MemoryTransport::new();
        let mut s = t.subscribe(&[mb(1).id]).await.unwrap();
        t.send_message(
            &mb(1),
            &EpochTag([0; 32]),
            0,
            b"m",
            &IdempotencyKey::random(),
        )
        .await
        .unwrap();
        assert_eq!(s.next().await, Some(mb(1).id));
    }
}
