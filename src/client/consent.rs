//! Consent (spec/consent.md): message requests, the incoming policy, blocking.
//!
//! Trust checks only (spec/agreement.md): a Welcome is always joined and every commit merged
//! as on every other member; consent decides what this device shows, and leaves with an
//! ordinary leave proposal what the user or the policy declined.

use super::state::Ctx;
use super::{Client, Error, Event, GroupInfo, Session};
use crate::content::Content;
use crate::group::{GroupId, GroupKind, GroupStatus};
use crate::identity::Did;
use crate::storage::consent::{self as store, HeldBack, HeldState};
use crate::storage::tables;
use crate::trust::consent::{judge_follows, judge_welcome, sendable_in_request, WelcomeVerdict};
use crate::trust::{AccountConsent, DeclineReason, IncomingPolicy};

/// How long one lookup of the account's follow list may take (CONSENT-4).
const FOLLOWS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A conversation another account started with this one, held back until the user accepts
/// it ([`crate::Conversation::accept`]) or declines it (CONSENT-3).
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// # use std::sync::Arc;
/// # use atmls::{Client, directory::MemoryDirectory, transport::MemoryTransport, storage::Store};
/// # use atmls::identity::DeviceIdentity;
/// # let (dir, net) = (Arc::new(MemoryDirectory::new()), Arc::new(MemoryTransport::new()));
/// # let alice = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
/// #     .identity(DeviceIdentity::new_account("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?)).build().await?;
/// # let bob = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
/// #     .identity(DeviceIdentity::new_account("did:plc:bbbbbbbbbbbbbbbbbbbbbbbb".parse()?)).build().await?;
/// let dm = alice.dm(bob.did()).await?;
/// bob.sync().await?;
/// let requests = bob.requests().await?;
/// assert_eq!(requests[0].group.id, dm);
/// assert_eq!(&requests[0].by, alice.did());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageRequest {
    /// The conversation.
    pub group: GroupInfo,
    /// The account that added this device.
    pub by: Did,
    /// When this device joined it (unix seconds).
    pub since: u64,
}

fn stored_did(s: &str) -> Result<Did, Error> {
    Did::new(s).map_err(|_| Error::InvalidArgument("stored inviter is not a DID"))
}

/// CONSENT-3: what becomes of a conversation this device just joined from a Welcome by `by`;
/// the event to raise now, if any. `context` is the joined group's context extensions.
pub(crate) fn on_join(
    cx: &Ctx<'_>,
    group: &GroupId,
    kind: GroupKind,
    by: &Did,
    context: &openmls::prelude::Extensions<openmls::prelude::GroupContext>,
) -> Result<Option<Event>, crate::storage::StorageError> {
    // The account's own-device group is never shown (CONSENT-7; only its own devices add to
    // it: checked at the Welcome).
    if kind == GroupKind::Account {
        return Ok(None);
    }
    // A group whose invites fail to decode was refused before (GOV-3): none then.
    let invites: Vec<[u8; 16]> = crate::group::invites_of(context)
        .unwrap_or_default()
        .iter()
        .map(|i| i.id().0)
        .collect();
    let wanted = *by == cx.dev.did || store::join_asked(cx.c, &invites)?;
    let consent = store::account(cx.c, by.as_str())?;
    let requests = store::requests_on(cx.c)?;
    let verdict = judge_welcome(wanted, consent, &store::policy(cx.c)?, requests);
    let hold = |state| {
        let h = HeldBack {
            state,
            inviter: by.as_str().to_owned(),
            since: cx.now(),
        };
        store::hold(cx.c, &group.0, &h)
    };
    Ok(match verdict {
        WelcomeVerdict::Accept => {
            store::release(cx.c, &group.0)?;
            Some(Event::Joined {
                group: group.clone(),
                kind,
                by: by.clone(),
            })
        }
        WelcomeVerdict::Request => {
            hold(HeldState::Request)?;
            Some(Event::MessageRequest {
                group: group.clone(),
                kind,
                by: by.clone(),
            })
        }
        WelcomeVerdict::AwaitFollows => hold(HeldState::AwaitFollows).map(|_| None)?,
        WelcomeVerdict::Decline(r) => hold(HeldState::Declined(r)).map(|_| None)?,
    })
}

/// CONSENT-6: marks declined what the blocked `did` started and the DMs with it, not yet
/// declined; `settle_consent` leaves them.
pub(crate) fn mark_blocked(
    c: &rusqlite::Connection,
    did: &Did,
    now: u64,
) -> Result<(), crate::storage::StorageError> {
    for row in tables::groups_all(c)? {
        let held = store::held(c, &row.group_id)?;
        let started = held.as_ref().is_some_and(|h| {
            h.inviter == did.as_str() && !matches!(h.state, HeldState::Declined(_))
        });
        let dm = row.dm_peer.as_ref() == Some(did) && held.is_none();
        if row.status == GroupStatus::Active && (started || dm) {
            let h = HeldBack {
                state: HeldState::Declined(DeclineReason::Blocked),
                inviter: did.as_str().to_owned(),
                since: held.map_or(now, |h| h.since),
            };
            store::hold(c, &row.group_id, &h)?;
        }
    }
    Ok(())
}

/// CONSENT-7: shows the requests `did` started, once another of the account's devices
/// allowed it.
pub(crate) fn release_from(
    c: &rusqlite::Connection,
    did: &str,
) -> Result<(), crate::storage::StorageError> {
    for (gid, h) in store::all_held(c)? {
        if h.inviter == did && matches!(h.state, HeldState::Request | HeldState::AwaitFollows) {
            store::release(c, &gid)?;
        }
    }
    Ok(())
}

/// CONSENT-5: before this device sends `content` in `group`. In a request, read receipts and
/// typing are refused; anything else is a reply, which accepts the request.
pub(crate) fn before_send(cx: &Ctx<'_>, group: &GroupId, content: &Content) -> Result<(), Error> {
    let Some(h) = store::held(cx.c, &group.0)? else {
        return Ok(());
    };
    match h.state {
        HeldState::Request | HeldState::AwaitFollows if sendable_in_request(content) => {
            store::accept(cx.c, &group.0, &h.inviter, cx.now())?;
            Ok(())
        }
        _ => Err(Error::NotAccepted),
    }
}

impl Session<'_> {
    /// CONSENT-3, CONSENT-4: judges conversations waiting for the follow list, and leaves
    /// declined ones. A follow list that cannot be read makes requests, so no sync fails for it.
    pub(crate) async fn settle_consent(&mut self) -> Result<(), Error> {
        let held = self.inner.read(store::all_held)?;
        let mut follows: Option<Option<Vec<Did>>> = None;
        for (gid, h) in held {
            let gid = GroupId(gid);
            let Some(row) = self.inner.read(|c| tables::group_get(c, &gid.0))? else {
                continue;
            };
            let by = stored_did(&h.inviter)?;
            match h.state {
                HeldState::Request => {}
                HeldState::AwaitFollows => {
                    if follows.is_none() {
                        follows = Some(self.own_follows().await);
                    }
                    let list = follows.as_ref().and_then(|f| f.as_ref());
                    let followed = list.map(|l| l.contains(&by));
                    self.apply_follows(&gid, row.kind, &h, &by, judge_follows(followed))
                        .await?;
                }
                HeldState::Declined(reason) if row.status == GroupStatus::Active => {
                    self.decline_now(&gid, by, reason).await?;
                }
                HeldState::Declined(_) => {}
            }
        }
        Ok(())
    }

    /// The accounts this account follows; `None` when the directory has no social graph or
    /// could not answer in time.
    async fn own_follows(&mut self) -> Option<Vec<Did>> {
        let me = self.inner.device.did.clone();
        let asked = tokio::time::timeout(FOLLOWS_TIMEOUT, self.directory.follows(&me));
        match self.inner.io(asked).await {
            Ok(Ok(list)) => list,
            Ok(Err(e)) => {
                tracing::info!(error = %e, "follow list unavailable: a message request");
                None
            }
            Err(_) => None,
        }
    }

    async fn apply_follows(
        &mut self,
        gid: &GroupId,
        kind: GroupKind,
        h: &HeldBack,
        by: &Did,
        verdict: WelcomeVerdict,
    ) -> Result<(), Error> {
        let event = match verdict {
            WelcomeVerdict::Accept => {
                self.inner
                    .atomic(|cx| store::accept(cx.c, &gid.0, by.as_str(), cx.now()))?;
                Event::Joined {
                    group: gid.clone(),
                    kind,
                    by: by.clone(),
                }
            }
            WelcomeVerdict::Request | WelcomeVerdict::AwaitFollows => {
                let held = HeldBack {
                    state: HeldState::Request,
                    ..h.clone()
                };
                self.inner.atomic(|cx| store::hold(cx.c, &gid.0, &held))?;
                Event::MessageRequest {
                    group: gid.clone(),
                    kind,
                    by: by.clone(),
                }
            }
            WelcomeVerdict::Decline(reason) => return self.decline(gid, h, reason).await,
        };
        self.inner.deferred_events.push(event);
        Ok(())
    }

    /// Marks the conversation declined, then leaves it.
    async fn decline(
        &mut self,
        gid: &GroupId,
        h: &HeldBack,
        reason: DeclineReason,
    ) -> Result<(), Error> {
        let held = HeldBack {
            state: HeldState::Declined(reason),
            ..h.clone()
        };
        self.inner.atomic(|cx| store::hold(cx.c, &gid.0, &held))?;
        self.decline_now(gid, stored_did(&h.inviter)?, reason).await
    }

    /// Leaves a declined conversation (a leave proposal, GOV-6) and says so. A transient
    /// failure is tried again at the next sync: the mark stays.
    async fn decline_now(
        &mut self,
        gid: &GroupId,
        by: Did,
        reason: DeclineReason,
    ) -> Result<(), Error> {
        match self.leave(gid).await {
            Ok(()) => {}
            Err(e) if e.is_retryable() => return Err(e),
            // E.g. made the last owner meanwhile: the conversation stays hidden.
            Err(e) => tracing::info!(error = %e, "declined conversation not left"),
        }
        self.inner.deferred_events.push(Event::Declined {
            group: gid.clone(),
            by,
            reason,
        });
        Ok(())
    }

    /// Declines the user's request `gid` (CONSENT-3).
    pub(crate) async fn decline_request(&mut self, gid: &GroupId) -> Result<(), Error> {
        let h = self
            .inner
            .read(|c| store::held(c, &gid.0))?
            .ok_or(Error::InvalidArgument("not a message request"))?;
        self.decline(gid, &h, DeclineReason::User).await
    }
}

impl Client {
    /// Sets who may start a conversation with this account (CONSENT-2), and publishes it in
    /// the directory where it keeps one. Conversations already joined keep their state.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # use std::sync::Arc;
    /// # use atmls::{Client, directory::MemoryDirectory, transport::MemoryTransport, storage::Store};
    /// # use atmls::identity::DeviceIdentity;
    /// # let (dir, net) = (Arc::new(MemoryDirectory::new()), Arc::new(MemoryTransport::new()));
    /// # let alice = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    /// #     .identity(DeviceIdentity::new_account("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?)).build().await?;
    /// # let bob = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    /// #     .identity(DeviceIdentity::new_account("did:plc:bbbbbbbbbbbbbbbbbbbbbbbb".parse()?)).build().await?;
    /// use atmls::{trust::{DeclineReason, IncomingPolicy}, Event};
    /// bob.set_incoming_policy(IncomingPolicy::None).await?;
    /// let dm = alice.dm(bob.did()).await?;
    /// let events = bob.sync().await?;
    /// assert!(events.iter().any(|e| matches!(e,
    ///     Event::Declined { group, reason: DeclineReason::Policy, .. } if *group == dm)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn set_incoming_policy(&self, policy: IncomingPolicy) -> Result<(), Error> {
        let mut s = self.account_session().await;
        s.inner
            .atomic(|cx| store::set_policy(cx.c, &policy, cx.now()))?;
        s.share_consent_or_later().await;
        let me = s.inner.device.did.clone();
        s.inner
            .io(s.directory.publish_incoming_policy(&me, &policy))
            .await?;
        Ok(())
    }

    /// Who may start a conversation with this account (`everyone` until set).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # use std::sync::Arc;
    /// # use atmls::{Client, directory::MemoryDirectory, transport::MemoryTransport, storage::Store};
    /// # use atmls::identity::DeviceIdentity;
    /// # let (dir, net) = (Arc::new(MemoryDirectory::new()), Arc::new(MemoryTransport::new()));
    /// # let alice = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    /// #     .identity(DeviceIdentity::new_account("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?)).build().await?;
    /// use atmls::trust::IncomingPolicy;
    /// assert_eq!(alice.incoming_policy().await?, IncomingPolicy::Everyone);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn incoming_policy(&self) -> Result<IncomingPolicy, Error> {
        self.session().await.inner.read(store::policy)
    }

    /// What the user decided about `did` (CONSENT-1).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # use std::sync::Arc;
    /// # use atmls::{Client, directory::MemoryDirectory, transport::MemoryTransport, storage::Store};
    /// # use atmls::identity::DeviceIdentity;
    /// # let (dir, net) = (Arc::new(MemoryDirectory::new()), Arc::new(MemoryTransport::new()));
    /// # let alice = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    /// #     .identity(DeviceIdentity::new_account("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?)).build().await?;
    /// # let bob = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    /// #     .identity(DeviceIdentity::new_account("did:plc:bbbbbbbbbbbbbbbbbbbbbbbb".parse()?)).build().await?;
    /// use atmls::trust::AccountConsent;
    /// assert_eq!(alice.consent(bob.did()).await?, AccountConsent::Unknown);
    /// alice.dm(bob.did()).await?; // starting a conversation allows the account
    /// assert_eq!(alice.consent(bob.did()).await?, AccountConsent::Allowed);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn consent(&self, did: &Did) -> Result<AccountConsent, Error> {
        self.session()
            .await
            .inner
            .read(|c| store::account(c, did.as_str()))
    }

    /// Blocks `did` (CONSENT-6): its Welcomes are declined, its messages hidden, requests and
    /// DMs with it left. Group conversations with it stay; its messages there are hidden.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # use std::sync::Arc;
    /// # use atmls::{Client, directory::MemoryDirectory, transport::MemoryTransport, storage::Store};
    /// # use atmls::identity::DeviceIdentity;
    /// # let (dir, net) = (Arc::new(MemoryDirectory::new()), Arc::new(MemoryTransport::new()));
    /// # let alice = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    /// #     .identity(DeviceIdentity::new_account("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?)).build().await?;
    /// # let bob = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    /// #     .identity(DeviceIdentity::new_account("did:plc:bbbbbbbbbbbbbbbbbbbbbbbb".parse()?)).build().await?;
    /// let dm = alice.dm(bob.did()).await?;
    /// bob.block(alice.did()).await?;
    /// assert!(bob.requests().await?.is_empty());
    /// assert_eq!(bob.blocked().await?, [alice.did().clone()]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn block(&self, did: &Did) -> Result<(), Error> {
        let mut s = self.account_session().await;
        if *did == s.inner.device.did {
            return Err(Error::InvalidArgument("an account cannot block itself"));
        }
        s.inner.atomic(|cx| {
            store::set_account(cx.c, did.as_str(), AccountConsent::Blocked, cx.now())?;
            mark_blocked(cx.c, did, cx.now())
        })?;
        s.share_consent_or_later().await;
        s.settle_consent().await
    }

    /// Lifts a block: `did` is unknown again (conversations left stay left).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # use std::sync::Arc;
    /// # use atmls::{Client, directory::MemoryDirectory, transport::MemoryTransport, storage::Store};
    /// # use atmls::identity::DeviceIdentity;
    /// # let (dir, net) = (Arc::new(MemoryDirectory::new()), Arc::new(MemoryTransport::new()));
    /// # let alice = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    /// #     .identity(DeviceIdentity::new_account("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?)).build().await?;
    /// let spammer = "did:plc:cccccccccccccccccccccccc".parse()?;
    /// alice.block(&spammer).await?;
    /// alice.unblock(&spammer).await?;
    /// assert!(alice.blocked().await?.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn unblock(&self, did: &Did) -> Result<(), Error> {
        let mut s = self.account_session().await;
        let lifted = s
            .inner
            .atomic(|cx| match store::account(cx.c, did.as_str())? {
                AccountConsent::Blocked => {
                    store::set_account(cx.c, did.as_str(), AccountConsent::Unknown, cx.now())
                        .map(|_| true)
                }
                _ => Ok(false),
            })?;
        if lifted {
            s.share_consent_or_later().await;
        }
        Ok(())
    }

    /// The accounts this one blocked, sorted.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # use std::sync::Arc;
    /// # use atmls::{Client, directory::MemoryDirectory, transport::MemoryTransport, storage::Store};
    /// # use atmls::identity::DeviceIdentity;
    /// # let (dir, net) = (Arc::new(MemoryDirectory::new()), Arc::new(MemoryTransport::new()));
    /// # let alice = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    /// #     .identity(DeviceIdentity::new_account("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?)).build().await?;
    /// assert!(alice.blocked().await?.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn blocked(&self) -> Result<Vec<Did>, Error> {
        let s = self.session().await;
        let dids = s
            .inner
            .read(|c| store::accounts_in(c, AccountConsent::Blocked))?;
        dids.iter().map(|d| stored_did(d)).collect()
    }

    /// The message requests waiting for the user, oldest first (CONSENT-3). Their messages
    /// are stored and readable ([`crate::Conversation::messages`]) but raise no
    /// [`Event::Message`].
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # use std::sync::Arc;
    /// # use atmls::{Client, directory::MemoryDirectory, transport::MemoryTransport, storage::Store};
    /// # use atmls::identity::DeviceIdentity;
    /// # let (dir, net) = (Arc::new(MemoryDirectory::new()), Arc::new(MemoryTransport::new()));
    /// # let alice = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    /// #     .identity(DeviceIdentity::new_account("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?)).build().await?;
    /// # let bob = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    /// #     .identity(DeviceIdentity::new_account("did:plc:bbbbbbbbbbbbbbbbbbbbbbbb".parse()?)).build().await?;
    /// let dm = alice.dm(bob.did()).await?;
    /// alice.conversation(&dm).send_text("hello, we met at the conference").await?;
    /// bob.sync().await?;
    /// assert_eq!(bob.requests().await?.len(), 1);
    /// assert!(bob.groups().await?.is_empty()); // not in the inbox until accepted
    /// bob.conversation(&dm).accept().await?;
    /// assert_eq!(bob.groups().await?[0].id, dm);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn requests(&self) -> Result<Vec<MessageRequest>, Error> {
        let mut s = self.session().await;
        let held = s.inner.read(store::all_held)?;
        let infos = s.inner.all_group_infos()?;
        let mut out = Vec::new();
        for (gid, h) in held {
            let request = matches!(h.state, HeldState::Request | HeldState::AwaitFollows);
            let Some(info) = infos.iter().find(|i| i.id.0 == gid) else {
                continue;
            };
            if request && info.status == GroupStatus::Active {
                out.push(MessageRequest {
                    group: info.clone(),
                    by: stored_did(&h.inviter)?,
                    since: h.since,
                });
            }
        }
        Ok(out)
    }

    /// Behind [`crate::Conversation::accept`].
    pub(crate) async fn accept_request(&self, group: &GroupId) -> Result<(), Error> {
        let mut s = self.account_session().await;
        let accepted = s.inner.atomic(|cx| {
            let Some(h) = store::held(cx.c, &group.0)? else {
                // Accepted already (here, or on another of the account's devices, whose
                // decision arrived after the request was shown): nothing to do.
                return match tables::group_get(cx.c, &group.0)? {
                    Some(_) => Ok(false),
                    None => Err(Error::InvalidArgument("not a message request")),
                };
            };
            if matches!(h.state, HeldState::Declined(_)) {
                return Err(Error::InvalidArgument("the conversation was declined"));
            }
            store::accept(cx.c, &group.0, &h.inviter, cx.now())?;
            Ok::<_, Error>(true)
        })?;
        if accepted {
            s.share_consent_or_later().await;
        }
        Ok(())
    }

    /// Behind [`crate::Conversation::decline`].
    pub(crate) async fn decline_request(&self, group: &GroupId) -> Result<(), Error> {
        let mut s = self.account_session().await;
        s.decline_request(group).await?;
        // The account's other devices decline it too (CONSENT-7).
        s.share_consent_or_later().await;
        Ok(())
    }
}
