//! Consent (spec/consent.md): who may start a conversation with the account, message requests,
//! and blocked accounts.
//!
//! Every decision here is a trust check in the sense of spec/agreement.md: it reads only this
//! device's knowledge (its own policy, the accounts it allowed or blocked, whom the account
//! follows) and never changes what the device merges. A Welcome is always joined, so MLS stays
//! correct for everyone; consent then shows the conversation, holds it back as a request, or
//! leaves it with an ordinary leave proposal.

use crate::content::Content;

/// Who may start a conversation with the account (`incomingPolicy` of the declaration record,
/// an open set of values; CONSENT-2).
///
/// ```
/// use atmls::trust::IncomingPolicy;
/// assert_eq!(IncomingPolicy::from_lexicon("following"), IncomingPolicy::Following);
/// // A value from a later version of the lexicon is kept, not refused.
/// assert_eq!(IncomingPolicy::from_lexicon("mutuals"), IncomingPolicy::Other("mutuals".into()));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IncomingPolicy {
    /// Nobody: conversations started by accounts this one does not know are declined.
    None,
    /// Accounts the owner follows start conversations; others are declined.
    Following,
    /// Anyone: conversations from unknown accounts become message requests.
    Everyone,
    /// A value this version does not know (kept as read; judged as [`Everyone`](Self::Everyone)
    /// so that nothing is lost: its conversations become requests, never shown unasked).
    Other(String),
}

impl IncomingPolicy {
    /// The lexicon value.
    ///
    /// ```
    /// use atmls::trust::IncomingPolicy;
    /// assert_eq!(IncomingPolicy::Following.as_str(), "following");
    /// assert_eq!(IncomingPolicy::Other("mutuals".into()).as_str(), "mutuals");
    /// ```
    pub fn as_str(&self) -> &str {
        match self {
            IncomingPolicy::None => "none",
            IncomingPolicy::Following => "following",
            IncomingPolicy::Everyone => "everyone",
            IncomingPolicy::Other(s) => s,
        }
    }

    /// The policy a lexicon value names.
    ///
    /// ```
    /// use atmls::trust::IncomingPolicy;
    /// assert_eq!(IncomingPolicy::from_lexicon("none"), IncomingPolicy::None);
    /// ```
    pub fn from_lexicon(s: &str) -> Self {
        match s {
            "none" => IncomingPolicy::None,
            "following" => IncomingPolicy::Following,
            "everyone" => IncomingPolicy::Everyone,
            other => IncomingPolicy::Other(other.to_owned()),
        }
    }
}

/// What the user decided about an account (CONSENT-1).
///
/// ```
/// use atmls::trust::AccountConsent;
/// assert_eq!(AccountConsent::default(), AccountConsent::Unknown);
/// ```
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AccountConsent {
    /// Never decided: a conversation it starts is judged by the incoming policy.
    #[default]
    Unknown,
    /// Allowed: the user started a conversation with it, invited it, replied to it or
    /// accepted its request.
    Allowed,
    /// Blocked: its Welcomes are declined, its messages hidden, DMs with it left.
    Blocked,
}

impl AccountConsent {
    pub(crate) fn to_i64(self) -> i64 {
        match self {
            AccountConsent::Unknown => 0,
            AccountConsent::Allowed => 1,
            AccountConsent::Blocked => 2,
        }
    }

    pub(crate) fn from_i64(v: i64) -> Self {
        match v {
            1 => AccountConsent::Allowed,
            2 => AccountConsent::Blocked,
            _ => AccountConsent::Unknown,
        }
    }
}

/// Why this device left a conversation it was added to (CONSENT-3).
///
/// ```
/// use atmls::trust::DeclineReason;
/// assert_ne!(DeclineReason::Blocked, DeclineReason::Policy);
/// ```
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeclineReason {
    /// The account that added us is blocked.
    Blocked,
    /// The account's incoming policy does not let that account start a conversation.
    Policy,
    /// The user declined the message request.
    User,
}

impl DeclineReason {
    pub(crate) fn to_i64(self) -> i64 {
        match self {
            DeclineReason::Blocked => 1,
            DeclineReason::Policy => 2,
            DeclineReason::User => 3,
        }
    }

    pub(crate) fn from_i64(v: i64) -> Self {
        match v {
            1 => DeclineReason::Blocked,
            2 => DeclineReason::Policy,
            _ => DeclineReason::User,
        }
    }
}

/// What becomes of a conversation this device was just added to (CONSENT-3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WelcomeVerdict {
    /// Shown like any conversation.
    Accept,
    /// Joined but held back until the user accepts it.
    Request,
    /// The policy is `following` and the inviter is not known: the follow list decides.
    AwaitFollows,
    /// Joined, then left.
    Decline(DeclineReason),
}

/// CONSENT-3: the verdict on a Welcome from `inviter_consent`'s account, from local knowledge
/// alone. `wanted` is a Welcome from one of the account's own devices, or into a group the
/// user asked to join by an invite; `requests`, whether message requests are on.
pub(crate) fn judge_welcome(
    wanted: bool,
    inviter_consent: AccountConsent,
    policy: &IncomingPolicy,
    requests: bool,
) -> WelcomeVerdict {
    if wanted {
        return WelcomeVerdict::Accept;
    }
    match inviter_consent {
        AccountConsent::Allowed => WelcomeVerdict::Accept,
        AccountConsent::Blocked => WelcomeVerdict::Decline(DeclineReason::Blocked),
        AccountConsent::Unknown => match policy {
            IncomingPolicy::None => WelcomeVerdict::Decline(DeclineReason::Policy),
            IncomingPolicy::Following => WelcomeVerdict::AwaitFollows,
            IncomingPolicy::Everyone | IncomingPolicy::Other(_) if requests => {
                WelcomeVerdict::Request
            }
            IncomingPolicy::Everyone | IncomingPolicy::Other(_) => WelcomeVerdict::Accept,
        },
    }
}

/// CONSENT-4: the verdict once the follow list was asked; `None` when it could not be read
/// (the directory failed): a request, so that nothing is lost and nothing shown unasked.
pub(crate) fn judge_follows(followed: Option<bool>) -> WelcomeVerdict {
    match followed {
        Some(true) => WelcomeVerdict::Accept,
        Some(false) => WelcomeVerdict::Decline(DeclineReason::Policy),
        None => WelcomeVerdict::Request,
    }
}

/// CONSENT-5: whether this device may send `content` in a conversation that is still a
/// request. Read receipts and typing would tell the sender the request was seen.
pub(crate) fn sendable_in_request(content: &Content) -> bool {
    !matches!(content, Content::ReadReceipt(_) | Content::Typing(_))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consent_3_verdicts() {
        use AccountConsent::*;
        use WelcomeVerdict as V;
        let every = IncomingPolicy::Everyone;
        assert_eq!(
            judge_welcome(true, Blocked, &IncomingPolicy::None, true),
            V::Accept
        );
        assert_eq!(
            judge_welcome(false, Allowed, &IncomingPolicy::None, true),
            V::Accept
        );
        assert_eq!(
            judge_welcome(false, Blocked, &every, true),
            V::Decline(DeclineReason::Blocked)
        );
        assert_eq!(judge_welcome(false, Unknown, &every, true), V::Request);
        assert_eq!(judge_welcome(false, Unknown, &every, false), V::Accept);
        assert_eq!(
            judge_welcome(
                false,
                Unknown,
                &IncomingPolicy::Other("mutuals".into()),
                true
            ),
            V::Request
        );
        assert_eq!(
            judge_welcome(false, Unknown, &IncomingPolicy::None, true),
            V::Decline(DeclineReason::Policy)
        );
        assert_eq!(
            judge_welcome(false, Unknown, &IncomingPolicy::Following, true),
            V::AwaitFollows
        );
    }

    #[test]
    fn consent_4_follow_list() {
        assert_eq!(judge_follows(Some(true)), WelcomeVerdict::Accept);
        assert_eq!(
            judge_follows(Some(false)),
            WelcomeVerdict::Decline(DeclineReason::Policy)
        );
        assert_eq!(judge_follows(None), WelcomeVerdict::Request);
    }

    #[test]
    fn consent_values_round_trip() {
        for c in [
            AccountConsent::Unknown,
            AccountConsent::Allowed,
            AccountConsent::Blocked,
        ] {
            assert_eq!(AccountConsent::from_i64(c.to_i64()), c);
        }
        for r in [
            DeclineReason::Blocked,
            DeclineReason::Policy,
            DeclineReason::User,
        ] {
            assert_eq!(DeclineReason::from_i64(r.to_i64()), r);
        }
        for p in ["none", "following", "everyone", "mutuals"] {
            assert_eq!(IncomingPolicy::from_lexicon(p).as_str(), p);
        }
    }
}
