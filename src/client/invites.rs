//! Invite links and join requests (spec/governance.md INV-1 … INV-7). The link carries a
//! secret; the group state records the invite (terms, use count, revocation). A requester
//! posts a sealed, signed join request to the mailbox the secret derives; an admin's device
//! answers it on sync — automatically when the invite needs no approval — with an ordinary
//! add commit that also raises the use count, and posts a sealed outcome to the
//! requester's reply mailbox.

use std::time::Duration;

use tls_codec::{
    DeserializeBytes as _, Serialize as _, TlsDeserializeBytes, TlsSerialize, TlsSize, VLBytes,
};

use super::governance::ContextEdit;
use super::outgoing::Intent;
use super::{Client, Error, Event, Session};
use crate::group::{
    invite_id, invites_of, Action, Governance, GovernanceError, GroupError, GroupId, GroupKind,
    GroupStatus, InviteId, InviteRecord, InviteState,
};
use crate::identity::{Did, PublicKey};
use crate::storage::{group_state, tables};
use crate::transport::IdempotencyKey;
use crate::trust::SecretChannel;

const URL_INVITE: &str = "atmls://invite/";
const URL_JOIN: &str = "atmls://join/";
const LINK_VERSION: u8 = 1;
const KIND_REQUEST: u8 = 1;
const KIND_OUTCOME: u8 = 2;
const REQUEST_CONTEXT: &[u8] = b"atmls/v1/join-request";
/// Most requests read from one invite mailbox per sync.
const PAGE: u32 = 100;

/// An invite link or public join handle: `atmls://invite/<base64url>` (or
/// `atmls://join/…` for a handle), also the QR payload (INV-2). Whoever holds it can ask
/// to join; it is a secret.
#[derive(Clone, PartialEq, Eq)]
pub struct InviteLink {
    secret: [u8; 32],
    public: bool,
}

impl std::fmt::Debug for InviteLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "InviteLink({})", self.id())
    }
}

impl InviteLink {
    /// The invite's id.
    pub fn id(&self) -> InviteId {
        invite_id(&self.secret)
    }

    /// The shareable URL.
    pub fn to_url(&self) -> String {
        let mut bytes = vec![LINK_VERSION];
        bytes.extend_from_slice(&self.secret);
        let prefix = if self.public { URL_JOIN } else { URL_INVITE };
        format!("{prefix}{}", base64url(&bytes))
    }

    /// The QR payload (the URL).
    pub fn qr_payload(&self) -> String {
        self.to_url()
    }

    /// Parses a URL or QR payload.
    pub fn parse(s: &str) -> Result<Self, InviteError> {
        let s = s.trim();
        let (rest, public) = if let Some(r) = s.strip_prefix(URL_INVITE) {
            (r, false)
        } else if let Some(r) = s.strip_prefix(URL_JOIN) {
            (r, true)
        } else {
            return Err(InviteError::BadLink);
        };
        let bytes = from_base64url(rest).ok_or(InviteError::BadLink)?;
        let (v, secret) = bytes.split_first().ok_or(InviteError::BadLink)?;
        let secret: [u8; 32] = secret.try_into().map_err(|_| InviteError::BadLink)?;
        if *v != LINK_VERSION {
            return Err(InviteError::BadLink);
        }
        Ok(InviteLink { secret, public })
    }

    fn requests(&self) -> SecretChannel {
        request_channel(&self.secret)
    }
}

fn request_channel(secret: &[u8; 32]) -> SecretChannel {
    SecretChannel::derive(b"atmls/v1/invite-mailbox", b"atmls/v1/invite-key", secret)
}

fn reply_channel(secret: &[u8; 32]) -> SecretChannel {
    SecretChannel::derive(
        b"atmls/v1/invite-reply-mailbox",
        b"atmls/v1/invite-reply-key",
        secret,
    )
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Unpadded base64url (RFC 4648 §5).
fn base64url(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

fn from_base64url(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.bytes() {
        let v = B64.iter().position(|x| *x == c)? as u32;
        bits = (bits << 6) | v;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    // Leftover bits must be zero padding of the last character.
    (bits == 0 && n < 6).then_some(out)
}

/// Errors of invite links on the requester's side.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InviteError {
    /// The text is not an atmls invite link or handle.
    #[error("not an atmls invite link")]
    BadLink,
}

impl InviteError {
    /// Always `false`.
    pub fn is_retryable(&self) -> bool {
        false
    }
}

/// Terms of a new invite link.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct InviteOptions {
    /// How long it works (`None`: until revoked).
    pub expires_in: Option<Duration>,
    /// How many accounts may join by it (0: unlimited).
    pub max_uses: u32,
    /// Whether an admin approves each request (else approval is automatic).
    pub approval: bool,
}

/// What became of a join request (INV-5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JoinOutcome {
    /// No answer yet.
    Pending,
    /// Added: the Welcome is on its way ([`Client::sync`] joins).
    Approved,
    /// An admin declined.
    Declined,
    /// The link had expired.
    Expired,
    /// The link had been used as often as allowed.
    UsedUp,
    /// The link was revoked.
    Revoked,
}

impl JoinOutcome {
    fn to_u8(self) -> u8 {
        match self {
            JoinOutcome::Pending => 0,
            JoinOutcome::Approved => 1,
            JoinOutcome::Declined => 2,
            JoinOutcome::Expired => 3,
            JoinOutcome::UsedUp => 4,
            JoinOutcome::Revoked => 5,
        }
    }

    fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => JoinOutcome::Approved,
            2 => JoinOutcome::Declined,
            3 => JoinOutcome::Expired,
            4 => JoinOutcome::UsedUp,
            5 => JoinOutcome::Revoked,
            _ => return None,
        })
    }

    fn of_state(s: InviteState) -> Self {
        match s {
            InviteState::Open => JoinOutcome::Approved,
            InviteState::Revoked => JoinOutcome::Revoked,
            InviteState::Expired => JoinOutcome::Expired,
            InviteState::UsedUp => JoinOutcome::UsedUp,
        }
    }
}

/// The requester's handle on a request sent: keep it to ask for the outcome.
#[derive(Clone, PartialEq, Eq)]
pub struct PendingJoin {
    reply_secret: [u8; 32],
    /// The invite asked through.
    pub invite: InviteId,
}

impl std::fmt::Debug for PendingJoin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PendingJoin({})", self.invite)
    }
}

/// A join request as an admin sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinRequest {
    /// Its id (for approve/decline).
    pub id: RequestId,
    /// The invite it came through.
    pub invite: InviteId,
    /// Who asks.
    pub did: Did,
    /// The device that asked.
    pub installation: PublicKey,
    /// Whether it came through the group's public handle rather than a link.
    pub via_handle: bool,
}

/// A join request's id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct RequestId(pub [u8; 16]);

#[derive(TlsSize, TlsSerialize, TlsDeserializeBytes)]
struct RequestWire {
    version: u8,
    did: VLBytes,
    installation: [u8; 32],
    reply_secret: [u8; 32],
    signature: VLBytes,
}

fn request_tbs(
    invite: &InviteId,
    did: &Did,
    installation: &PublicKey,
    reply: &[u8; 32],
) -> Vec<u8> {
    let mut t = Vec::new();
    for part in [
        REQUEST_CONTEXT,
        &invite.0[..],
        did.as_str().as_bytes(),
        installation.as_bytes(),
        reply,
    ] {
        t.extend_from_slice(&(part.len() as u32).to_be_bytes());
        t.extend_from_slice(part);
    }
    t
}

fn request_id(reply_secret: &[u8; 32]) -> RequestId {
    let h = crate::trust::SecretChannel::derive(b"atmls/v1/join-request-id", b"-", reply_secret)
        .mailbox
        .0;
    let mut id = [0u8; 16];
    id.copy_from_slice(&h[..16]);
    RequestId(id)
}

/// A request as stored on an admin's device until decided.
#[derive(serde::Serialize, serde::Deserialize, Clone)]
struct Stored {
    id: RequestId,
    invite: [u8; 16],
    did: String,
    installation: [u8; 32],
    reply_secret: [u8; 32],
    via_handle: bool,
}

impl Stored {
    fn public(&self) -> Option<JoinRequest> {
        Some(JoinRequest {
            id: self.id,
            invite: InviteId(self.invite),
            did: Did::new(&self.did).ok()?,
            installation: PublicKey(self.installation),
            via_handle: self.via_handle,
        })
    }
}

/// Opens and checks one sealed request (signature by the requesting installation).
fn open_request(link: &SecretChannel, invite: &InviteId, sealed: &[u8]) -> Option<Stored> {
    let body = link.open(KIND_REQUEST, sealed)?;
    let w = RequestWire::tls_deserialize_exact_bytes(&body).ok()?;
    if w.version != 1 {
        return None;
    }
    let did = Did::new(std::str::from_utf8(w.did.as_slice()).ok()?).ok()?;
    let installation = PublicKey(w.installation);
    let tbs = request_tbs(invite, &did, &installation, &w.reply_secret);
    installation
        .verify(Some(&tbs), w.signature.as_slice(), "join request")
        .ok()?;
    Some(Stored {
        id: request_id(&w.reply_secret),
        invite: invite.0,
        did: did.as_str().to_owned(),
        installation: w.installation,
        reply_secret: w.reply_secret,
        via_handle: false,
    })
}

impl super::state::Inner {
    /// The request mailboxes this device answers (INV-4), so that `watch` wakes up when a
    /// join request arrives.
    pub(crate) fn invite_mailboxes(
        &mut self,
    ) -> Result<Vec<crate::transport::WelcomeReadProof>, Error> {
        let me = self.device.did.clone();
        let rows = self.read(tables::groups_all)?;
        self.ctx_read(|cx| {
            let mut out = Vec::new();
            for row in rows {
                if row.status != GroupStatus::Active || row.kind != GroupKind::Group {
                    continue;
                }
                // Peeked, not taken: this runs on every sync and must not evict the group
                // from the cache (LG-3).
                let Ok((Ok(Some(gov)), invites)) = cx.peek(&GroupId(row.group_id), |g| {
                    (
                        Governance::from_extensions(g.extensions()),
                        invites_of(g.extensions()).unwrap_or_default(),
                    )
                }) else {
                    continue;
                };
                if gov.allows(&me, Action::Invite) || gov.allows(&me, Action::AddMembers) {
                    for rec in invites {
                        out.push(request_channel(&rec.secret).read_proof(cx.now()));
                    }
                }
            }
            Ok(out)
        })
    }
}

impl Session<'_> {
    async fn reply(&mut self, reply_secret: &[u8; 32], outcome: JoinOutcome) -> Result<(), Error> {
        let ch = reply_channel(reply_secret);
        let sealed = ch.seal(KIND_OUTCOME, &[1, outcome.to_u8()])?;
        self.inner
            .io(self
                .transport
                .send_welcome(&ch.mailbox, &sealed, &IdempotencyKey::random()))
            .await?;
        Ok(())
    }

    fn stored(&self, group: &GroupId) -> Result<Vec<Stored>, Error> {
        let raw = self
            .inner
            .read(|c| group_state::join_requests(c, &group.0))?;
        Ok(raw
            .and_then(|r| serde_json::from_slice(&r).ok())
            .unwrap_or_default())
    }

    fn store_requests(&mut self, group: &GroupId, v: &[Stored]) -> Result<(), Error> {
        let bytes = serde_json::to_vec(v)
            .map_err(|_| crate::storage::StorageError::Corrupt("join requests"))?;
        self.inner
            .atomic(|cx| group_state::set_join_requests(cx.c, &group.0, &bytes))?;
        Ok(())
    }

    /// The group's invite `id` and this device's governance view.
    fn invite(
        &mut self,
        group: &GroupId,
        id: &InviteId,
    ) -> Result<(InviteRecord, Option<Governance>), Error> {
        self.inner.atomic(|cx| {
            let (gov, invites) = cx.peek(group, |g| {
                (
                    Governance::from_extensions(g.extensions()),
                    invites_of(g.extensions()),
                )
            })?;
            let gov = gov.map_err(GroupError::from)?;
            let rec = invites
                .map_err(GroupError::from)?
                .into_iter()
                .find(|i| i.id() == *id)
                .ok_or(GroupError::from(GovernanceError::UnknownInvite))?;
            Ok::<_, Error>((rec, gov))
        })
    }

    /// Admits one request: checks the invite's state now, then adds the account with the
    /// use count raised (INV-3), and tells the requester.
    async fn admit(&mut self, group: &GroupId, req: &Stored) -> Result<JoinOutcome, Error> {
        let invite = InviteId(req.invite);
        let (rec, _) = self.invite(group, &invite)?;
        let did = Did::new(&req.did).map_err(|_| Error::InvalidArgument("requester DID"))?;
        let member = self.inner.members(group)?.iter().any(|m| m.did == did);
        let outcome = if member {
            JoinOutcome::Approved
        } else {
            match rec.state(self.inner.now()) {
                InviteState::Open => {
                    // INV-4: the request must come from a current device of that account.
                    let account = self.verified_account(&did).await?;
                    if !account.devices.contains(&PublicKey(req.installation)) {
                        JoinOutcome::Declined
                    } else {
                        match self
                            .run_commit(group, Intent::AddViaInvite(vec![did], invite))
                            .await
                        {
                            Ok(()) => JoinOutcome::Approved,
                            // Another admin used the last place first.
                            Err(Error::Group(GroupError::Governance(_))) => JoinOutcome::of_state(
                                self.invite(group, &invite)?.0.state(self.inner.now()),
                            ),
                            Err(e) => return Err(e),
                        }
                    }
                }
                s => JoinOutcome::of_state(s),
            }
        };
        self.reply(&req.reply_secret, outcome).await?;
        Ok(outcome)
    }

    /// Reads every invite mailbox of the groups where this account may let people in
    /// (INV-4): admits requests whose invite needs no approval, keeps the others for an
    /// admin and reports them, and answers requests for unusable invites.
    pub(crate) async fn serve_invites(&mut self) -> Result<Vec<Event>, Error> {
        let mut events = Vec::new();
        let me = self.inner.device.did.clone();
        for row in self.inner.read(tables::groups_all)? {
            if row.status != GroupStatus::Active || row.kind != GroupKind::Group {
                continue;
            }
            let gid = GroupId(row.group_id.clone());
            let (gov, invites) = self.inner.atomic(|cx| {
                let (gov, inv) = cx.peek(&gid, |g| {
                    (
                        Governance::from_extensions(g.extensions()),
                        invites_of(g.extensions()),
                    )
                })?;
                Ok::<_, Error>((
                    gov.map_err(GroupError::from)?,
                    inv.map_err(GroupError::from)?,
                ))
            })?;
            let Some(gov) = gov else { continue };
            if !(gov.allows(&me, Action::Invite) || gov.allows(&me, Action::AddMembers)) {
                continue;
            }
            for rec in invites {
                let ch = request_channel(&rec.secret);
                let invite = rec.id().0;
                let cursor = self
                    .inner
                    .read(|c| group_state::invite_cursor(c, &gid.0, &invite))?;
                let proof = ch.read_proof(self.inner.now());
                let page = self
                    .inner
                    .io(self.transport.fetch_welcomes(&proof, cursor, PAGE))
                    .await?;
                for item in page.items {
                    if let Some(mut req) = open_request(&ch, &rec.id(), &item.payload) {
                        req.via_handle = rec.public;
                        let open = rec.state(self.inner.now()) == InviteState::Open;
                        if open && rec.approval {
                            let mut all = self.stored(&gid)?;
                            if !all.iter().any(|s| s.id == req.id) {
                                all.push(req.clone());
                                self.store_requests(&gid, &all)?;
                                if let Some(request) = req.public() {
                                    events.push(Event::JoinRequested {
                                        group: gid.clone(),
                                        request,
                                    });
                                }
                            }
                        } else if let Err(e) = self.admit(&gid, &req).await {
                            tracing::debug!(error = %e, "join request not admitted");
                        }
                    }
                    self.inner.atomic(|cx| {
                        group_state::set_invite_cursor(cx.c, &gid.0, &invite, item.seq)
                    })?;
                }
            }
        }
        Ok(events)
    }

    async fn decide(
        &mut self,
        group: &GroupId,
        id: &RequestId,
        approve: bool,
    ) -> Result<JoinOutcome, Error> {
        let entered = self.enter_group(group).await;
        let r = self.decide_in_group(group, id, approve).await;
        self.leave_group(entered, group);
        r
    }

    /// [`decide`](Self::decide) with the group's ordering lock held.
    async fn decide_in_group(
        &mut self,
        group: &GroupId,
        id: &RequestId,
        approve: bool,
    ) -> Result<JoinOutcome, Error> {
        let all = self.stored(group)?;
        let req = all
            .iter()
            .find(|s| s.id == *id)
            .cloned()
            .ok_or(Error::InvalidArgument("no such join request"))?;
        let outcome = if approve {
            let (_, gov) = self.invite(group, &InviteId(req.invite))?;
            let me = self.inner.device.did.clone();
            if let Some(gv) = gov {
                if !gv.allows(&me, Action::Invite) {
                    gv.require(&me, Action::AddMembers)
                        .map_err(GroupError::from)?;
                }
            }
            self.admit(group, &req).await?
        } else {
            self.reply(&req.reply_secret, JoinOutcome::Declined).await?;
            JoinOutcome::Declined
        };
        let rest: Vec<Stored> = all.into_iter().filter(|s| s.id != *id).collect();
        self.store_requests(group, &rest)?;
        Ok(outcome)
    }
}

impl Client {
    /// Behind [`Conversation::create_invite`](super::Conversation::create_invite).
    pub(crate) async fn create_invite(
        &self,
        group: &GroupId,
        options: InviteOptions,
    ) -> Result<InviteLink, Error> {
        self.new_invite(group, options, false).await
    }

    /// Behind [`Conversation::create_join_handle`](super::Conversation::create_join_handle).
    pub(crate) async fn create_join_handle(&self, group: &GroupId) -> Result<InviteLink, Error> {
        self.new_invite(
            group,
            InviteOptions {
                expires_in: None,
                max_uses: 0,
                approval: true,
            },
            true,
        )
        .await
    }

    async fn new_invite(
        &self,
        group: &GroupId,
        o: InviteOptions,
        public: bool,
    ) -> Result<InviteLink, Error> {
        let secret: [u8; 32] = rand::random();
        let expires = match o.expires_in {
            None => 0,
            Some(d) => self.now().saturating_add(d.as_secs().max(1)),
        };
        let rec = InviteRecord {
            secret,
            expires,
            max_uses: o.max_uses,
            uses: 0,
            approval: o.approval,
            revoked: false,
            public,
            created_by: self.did().clone(),
        };
        self.edit_invites(group, ContextEdit::CreateInvite(Box::new(rec)))
            .await?;
        Ok(InviteLink { secret, public })
    }

    /// Behind [`Conversation::revoke_invite`](super::Conversation::revoke_invite).
    pub(crate) async fn revoke_invite(&self, group: &GroupId, id: &InviteId) -> Result<(), Error> {
        self.edit_invites(group, ContextEdit::RevokeInvite(*id))
            .await
    }

    /// Behind [`Conversation::invites`](super::Conversation::invites).
    pub(crate) async fn invites(&self, group: &GroupId) -> Result<Vec<InviteRecord>, Error> {
        let mut s = self.session().await;
        s.inner.atomic(|cx| {
            Ok::<_, Error>(
                cx.peek(group, |g| invites_of(g.extensions()))?
                    .map_err(GroupError::from)?,
            )
        })
    }

    /// Behind [`Conversation::invite_link`](super::Conversation::invite_link).
    pub(crate) async fn invite_link(
        &self,
        group: &GroupId,
        id: &InviteId,
    ) -> Result<Option<InviteLink>, Error> {
        Ok(self
            .invites(group)
            .await?
            .into_iter()
            .find(|i| i.id() == *id)
            .map(|i| InviteLink {
                secret: i.secret,
                public: i.public,
            }))
    }

    /// Asks to join through an invite link or a public handle (INV-4): a request signed by
    /// this device, sealed under a key only link holders know, posted to the link's
    /// mailbox. See the example on
    /// [`Conversation::create_invite`](super::Conversation::create_invite).
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
    /// use atmls::client::{InviteLink, InviteOptions, JoinOutcome};
    /// let g = alice.create_group(&[]).await?;
    /// let link = alice.conversation(&g).create_invite(InviteOptions::default()).await?;
    /// let pending = bob.request_join(&InviteLink::parse(&link.to_url())?).await?;
    /// alice.sync().await?; // alice's device answers the request
    /// assert_ne!(bob.join_outcome(&pending).await?, JoinOutcome::Pending);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn request_join(&self, link: &InviteLink) -> Result<PendingJoin, Error> {
        let mut s = self.session().await;
        let reply_secret: [u8; 32] = rand::random();
        let dev = &s.inner.device;
        let installation = dev.installation.public();
        let tbs = request_tbs(&link.id(), &dev.did, &installation, &reply_secret);
        let wire = RequestWire {
            version: 1,
            did: dev.did.as_str().as_bytes().to_vec().into(),
            installation: installation.0,
            reply_secret,
            signature: dev.installation.sign_raw(Some(&tbs)).into(),
        };
        let body = wire
            .tls_serialize_detached()
            .map_err(|_| Error::InvalidArgument("join request does not encode"))?;
        let ch = link.requests();
        // Its Welcome is wanted, whoever sends it (CONSENT-3).
        s.inner
            .atomic(|cx| crate::storage::consent::note_join_asked(cx.c, &link.id().0, cx.now()))?;
        s.inner
            .io(s.transport.send_welcome(
                &ch.mailbox,
                &ch.seal(KIND_REQUEST, &body)?,
                &IdempotencyKey::random(),
            ))
            .await?;
        Ok(PendingJoin {
            reply_secret,
            invite: link.id(),
        })
    }

    /// The answer to a join request so far (the latest one an admin's device posted).
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
    /// use atmls::client::{InviteLink, InviteOptions, JoinOutcome};
    /// let g = alice.create_group(&[]).await?;
    /// let link = alice.conversation(&g).create_invite(InviteOptions::default()).await?;
    /// let pending = bob.request_join(&InviteLink::parse(&link.to_url())?).await?;
    /// alice.sync().await?; // alice's device answers the request
    /// assert_ne!(bob.join_outcome(&pending).await?, JoinOutcome::Pending);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn join_outcome(&self, pending: &PendingJoin) -> Result<JoinOutcome, Error> {
        let ch = reply_channel(&pending.reply_secret);
        let now = self.session().await.inner.now();
        let page = self
            .transport
            .fetch_welcomes(&ch.read_proof(now), 0, PAGE)
            .await?;
        Ok(page
            .items
            .iter()
            .filter_map(|i| ch.open(KIND_OUTCOME, &i.payload))
            .filter_map(|b| match b.as_slice() {
                [1, o] => JoinOutcome::from_u8(*o),
                _ => None,
            })
            .next_back()
            .unwrap_or(JoinOutcome::Pending))
    }

    /// Behind [`Conversation::join_requests`](super::Conversation::join_requests).
    pub(crate) async fn join_requests(&self, group: &GroupId) -> Result<Vec<JoinRequest>, Error> {
        let s = self.session().await;
        Ok(s.stored(group)?.iter().filter_map(Stored::public).collect())
    }

    /// Behind [`Conversation::approve_join`](super::Conversation::approve_join).
    pub(crate) async fn approve_join(
        &self,
        group: &GroupId,
        request: &RequestId,
    ) -> Result<JoinOutcome, Error> {
        self.session().await.decide(group, request, true).await
    }

    /// Behind [`Conversation::decline_join`](super::Conversation::decline_join).
    pub(crate) async fn decline_join(
        &self,
        group: &GroupId,
        request: &RequestId,
    ) -> Result<(), Error> {
        self.session()
            .await
            .decide(group, request, false)
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inv_2_link_round_trips_and_rejects_garbage() {
        for public in [false, true] {
            let l = InviteLink {
                secret: rand::random(),
                public,
            };
            let url = l.to_url();
            assert!(url.starts_with(if public { URL_JOIN } else { URL_INVITE }));
            assert_eq!(InviteLink::parse(&url), Ok(l.clone()));
            assert_eq!(InviteLink::parse(&format!(" {url}\n")), Ok(l));
        }
        for bad in [
            "",
            "https://x",
            "atmls://invite/",
            "atmls://invite/AAAA",
            "atmls://invite/!!!!",
        ] {
            assert_eq!(InviteLink::parse(bad), Err(InviteError::BadLink), "{bad}");
        }
        for n in 0..40 {
            let v: Vec<u8> = (0..n).map(|i| (i as u8).wrapping_mul(37)).collect();
            assert_eq!(from_base64url(&base64url(&v)), Some(v));
        }
    }
}
