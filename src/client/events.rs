//! What [`Client::sync`](super::Client::sync) reports.

use super::HistoryError;
use crate::content::{Content, EncodedContent, MessageId};
use crate::group::{GovernanceChange, GovernanceError, GroupError, GroupId, GroupKind, Member};
use crate::identity::{Did, PublicKey};

/// An application message, received or sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The conversation.
    pub group: GroupId,
    /// Its id, the same on every member's device (CONTENT-18).
    pub id: MessageId,
    /// Its position in the group's mailbox. Positions start again when the group moves to a
    /// new mailbox at a removal (spec/group.md GROUP-4a): order by the history, not by this.
    pub seq: u64,
    /// Who sent it.
    pub sender: Member,
    /// The typed content.
    pub content: EncodedContent,
    /// Whether this device sent it.
    pub outgoing: bool,
    /// When this device stored it (unix seconds).
    pub received: u64,
}

impl Message {
    /// The content decoded by the codecs atmls knows; unknown types give their fallback text.
    pub fn decoded(&self) -> Content {
        Content::decode(&self.content)
    }
}

/// Something that happened in this device's conversations.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// This device joined a group from a Welcome.
    Joined {
        /// The group.
        group: GroupId,
        /// DM or group.
        kind: GroupKind,
        /// Who added us.
        by: Did,
    },
    /// This device joined a conversation another account started, and holds it back as a
    /// message request until the user accepts or declines it (spec/consent.md CONSENT-3):
    /// see [`crate::Client::requests`]. Its messages raise no [`Event::Message`] meanwhile.
    MessageRequest {
        /// The conversation.
        group: GroupId,
        /// DM or group.
        kind: GroupKind,
        /// Who added us.
        by: Did,
    },
    /// This device left a conversation it was added to without the user's consent: the
    /// account that added it is blocked, the incoming policy does not let it start one, or
    /// the user declined the request (CONSENT-3).
    Declined {
        /// The conversation.
        group: GroupId,
        /// Who added us.
        by: Did,
        /// Why.
        reason: crate::trust::DeclineReason,
    },
    /// Devices were added to a group.
    MembersAdded {
        /// The group.
        group: GroupId,
        /// Who committed the change.
        by: Did,
        /// The new member devices.
        members: Vec<Member>,
    },
    /// Devices were removed from a group (or left it).
    MembersRemoved {
        /// The group.
        group: GroupId,
        /// Who committed the change.
        by: Did,
        /// The removed devices.
        members: Vec<Member>,
    },
    /// This device is no longer a member of the group.
    Removed {
        /// The group.
        group: GroupId,
        /// Who committed the removal.
        by: Did,
    },
    /// A member asked to leave; the next commit removes it.
    LeaveRequested {
        /// The group.
        group: GroupId,
        /// The account leaving.
        did: Did,
    },
    /// A new application message (any content type; typing indicators too, which are
    /// not stored).
    Message(Message),
    /// A message queued by an earlier [`crate::Conversation::send`] that failed (the transport was
    /// unreachable, the client stopped) was accepted by the transport: delivered once
    /// (spec/group.md GROUP-11).
    Sent(Message),
    /// A contact's identity key changed along endorsements by the pinned key (TRUST-1):
    /// informational, the new key is now pinned.
    IdentityKeyRotated {
        /// The contact.
        did: Did,
        /// The key pinned before.
        old: PublicKey,
        /// The key pinned now.
        new: PublicKey,
    },
    /// A contact's identity key changed WITHOUT endorsement (TRUST-3): possibly a stolen PDS
    /// password. Nothing of the new key is used until
    /// [`crate::Client::accept_identity_change`] is called with it.
    TrustWarning {
        /// The contact.
        did: Did,
        /// The pinned key (fingerprint: [`PublicKey::fingerprint`]).
        old: PublicKey,
        /// The unendorsed key.
        new: PublicKey,
        /// Whether the contact had been verified: show the strongest warning.
        verified: bool,
    },
    /// Our own account's records show something this device did not publish (TRUST-10).
    SelfCheckAlert(crate::trust::SelfCheckFinding),
    /// A message was decrypted but its content breaks a history rule (an edit of someone
    /// else's message, a reaction to an unknown message, a forged group update...): the
    /// history is unchanged (CONTENT-29).
    ContentRejected {
        /// The message.
        message: Message,
        /// Why.
        error: HistoryError,
    },
    /// A verified commit changed the group's disappearing-messages timer (CONTENT-28).
    DisappearingChanged {
        /// The group.
        group: GroupId,
        /// Who committed the change.
        by: Did,
        /// The new timer in seconds; `None`: messages no longer disappear.
        secs: Option<u32>,
    },
    /// A verified commit changed a role, a policy, the metadata or an invite
    /// (spec/governance.md GOV-10): derived from the commit, never from a message.
    GovernanceChanged {
        /// The group.
        group: GroupId,
        /// Who committed the change.
        by: Did,
        /// What changed.
        change: GovernanceChange,
    },
    /// A trust check on a member device (spec/trust.md TRUST-20 … TRUST-22) found it not
    /// [`Verified`](crate::trust::MemberStatus::Verified) when it entered or changed in a
    /// group, or when its account's background lookup ended. The device stays in the group:
    /// every member merged the same commit (spec/agreement.md AGREE-1).
    MemberTrust {
        /// The group.
        group: GroupId,
        /// The member device.
        member: Member,
        /// The identity key that certified it.
        identity_key: crate::identity::PublicKey,
        /// This device's verdict.
        status: crate::trust::MemberStatus,
    },
    /// A member device that fell out of the group asked to be re-added (spec/agreement.md
    /// AGREE-8); this device's next sync answers with a commit re-adding it, if no other
    /// member did first.
    ResyncRequested {
        /// The group.
        group: GroupId,
        /// The device.
        member: Member,
    },
    /// This device had fallen out of the group and was re-added (AGREE-8). The messages of
    /// the epochs in between are lost to it: those between mailbox positions `from` and
    /// `to` were not read.
    Resynced {
        /// The group.
        group: GroupId,
        /// Who re-added us.
        by: Did,
        /// The last position read before.
        from: u64,
        /// The position reading resumes after.
        to: u64,
    },
    /// A message from an account the group's policies do not let post (GOV-8): decrypted,
    /// then dropped; nothing is stored.
    PostDropped {
        /// The message.
        message: Message,
        /// Why.
        error: GovernanceError,
    },
    /// Someone asked to join by an invite link or the group's public handle and an admin
    /// must decide (INV-4): [`crate::Conversation::approve_join`] or
    /// [`crate::Conversation::decline_join`].
    JoinRequested {
        /// The group.
        group: GroupId,
        /// The request.
        request: crate::client::JoinRequest,
    },
    /// An incoming message or Welcome was refused; the group state is unchanged.
    Refused {
        /// The group, if it was a group message.
        group: Option<GroupId>,
        /// Its position in the mailbox.
        seq: u64,
        /// Why.
        error: GroupError,
    },
}

impl Event {
    /// The conversation the event is about, if it is about one (identity and trust events
    /// about an account are not).
    ///
    /// ```
    /// # use atmls::{Event, GroupId};
    /// let id = GroupId::from_hex(&"01".repeat(32)).ok_or("not a group id")?;
    /// let e = Event::Refused { group: Some(id.clone()), seq: 7,
    ///     error: atmls::group::GroupError::Malformed("junk".into()) };
    /// assert_eq!(e.group(), Some(&id));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn group(&self) -> Option<&GroupId> {
        match self {
            Event::Joined { group, .. }
            | Event::MessageRequest { group, .. }
            | Event::Declined { group, .. }
            | Event::MembersAdded { group, .. }
            | Event::MembersRemoved { group, .. }
            | Event::Removed { group, .. }
            | Event::LeaveRequested { group, .. }
            | Event::DisappearingChanged { group, .. }
            | Event::GovernanceChanged { group, .. }
            | Event::MemberTrust { group, .. }
            | Event::ResyncRequested { group, .. }
            | Event::Resynced { group, .. }
            | Event::JoinRequested { group, .. } => Some(group),
            Event::Message(m) | Event::Sent(m) => Some(&m.group),
            Event::ContentRejected { message, .. } | Event::PostDropped { message, .. } => {
                Some(&message.group)
            }
            Event::Refused { group, .. } => group.as_ref(),
            Event::IdentityKeyRotated { .. }
            | Event::TrustWarning { .. }
            | Event::SelfCheckAlert(_) => None,
        }
    }
}
