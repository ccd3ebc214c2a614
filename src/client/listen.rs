//! The subscriptions behind [`Client::watch`](super::Client::watch) (spec/ds.md DS-W-3): the
//! device's Welcome mailbox and each invite request mailbox on a subscription of its own, with
//! the proof that it may read it (DS-W-1), and every group mailbox on another, so that no
//! request to the transport names two of the device's mailboxes. Subscriptions stay open across syncs; one that ends is opened again
//! at the next refresh.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::transport::{MailboxId, Subscription, Transport, WelcomeReadProof};

/// Open subscriptions, each forwarding its notifications into one channel.
pub(crate) struct Listener {
    tx: mpsc::UnboundedSender<()>,
    rx: mpsc::UnboundedReceiver<()>,
    groups: HashMap<MailboxId, JoinHandle<()>>,
    proven: HashMap<MailboxId, JoinHandle<()>>,
}

impl Listener {
    pub(crate) fn new() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Listener {
            tx,
            rx,
            groups: HashMap::new(),
            proven: HashMap::new(),
        }
    }

    fn forward(&self, mut sub: Subscription) -> JoinHandle<()> {
        let tx = self.tx.clone();
        tokio::spawn(async move {
            while sub.next().await.is_some() {
                if tx.send(()).is_err() {
                    return;
                }
            }
        })
    }

    /// Subscribes to what is not yet listened to: each mailbox of `proofs` (the device's
    /// Welcome mailbox, invite request mailboxes) with its proof, and each of `mailboxes`
    /// alone; closes subscriptions of mailboxes no longer listed. A subscription that fails is
    /// tried again at the next refresh (the caller also polls).
    pub(crate) async fn refresh(
        &mut self,
        transport: &Arc<dyn Transport>,
        proofs: &[WelcomeReadProof],
        mailboxes: &[MailboxId],
    ) {
        let proven: Vec<MailboxId> = proofs.iter().map(|p| p.mailbox).collect();
        close_unlisted(&mut self.proven, &proven);
        close_unlisted(&mut self.groups, mailboxes);
        for p in proofs {
            if self.proven.contains_key(&p.mailbox) {
                continue;
            }
            if let Ok(sub) = transport.subscribe_welcomes(p).await {
                let h = self.forward(sub);
                self.proven.insert(p.mailbox, h);
            }
        }
        for m in mailboxes {
            if self.groups.contains_key(m) {
                continue;
            }
            if let Ok(sub) = transport.subscribe(std::slice::from_ref(m)).await {
                let h = self.forward(sub);
                self.groups.insert(*m, h);
            }
        }
    }

    /// Waits for a notification from any subscription, then drains the others already
    /// queued (one sync serves them all).
    pub(crate) async fn next(&mut self) {
        if self.rx.recv().await.is_some() {
            while self.rx.try_recv().is_ok() {}
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        for h in self.groups.values().chain(self.proven.values()) {
            h.abort();
        }
    }
}

/// Ends the subscriptions of mailboxes not in `listed`, and forgets those that ended.
fn close_unlisted(map: &mut HashMap<MailboxId, JoinHandle<()>>, listed: &[MailboxId]) {
    map.retain(|m, h| {
        let keep = listed.contains(m) && !h.is_finished();
        if !keep {
            h.abort();
        }
        keep
    });
}
