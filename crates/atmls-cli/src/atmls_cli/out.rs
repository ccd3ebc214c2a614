//! Output: lines for people, or one JSON object per line (`--json`) for scripts; events as
//! either. Progress goes to stderr so that stdout stays parseable.

use atmls::group::GroupKind;
use atmls::{Event, GroupId, Message};
use serde_json::{json, Value};

/// Where a command's results go.
#[derive(Clone, Copy, Debug)]
pub struct Out {
    pub json: bool,
}

impl Out {
    /// Prints `value` (with `--json`) or `human`.
    pub fn emit(&self, value: Value, human: impl std::fmt::Display) {
        if self.json {
            println!("{value}");
        } else {
            println!("{human}");
        }
    }

    /// A progress note for people, on stderr (nothing with `--json`).
    pub fn progress(&self, note: impl std::fmt::Display) {
        if !self.json {
            eprintln!("{note}");
        }
    }
}

/// The first characters of a group id, enough to name it on the command line.
pub fn short(g: &GroupId) -> String {
    g.to_string().chars().take(12).collect()
}

pub fn kind_name(k: GroupKind) -> &'static str {
    match k {
        GroupKind::Dm => "dm",
        GroupKind::Group => "group",
        _ => "other",
    }
}

/// A message's text (or a description of its content).
pub fn text_of(m: &Message) -> String {
    m.decoded()
        .summary()
        .unwrap_or_else(|| format!("({})", m.content.type_id))
}

pub fn message_json(m: &Message) -> Value {
    json!({
        "event": "message",
        "group": m.group.to_string(),
        "id": m.id.to_string(),
        "from": m.sender.did.as_str(),
        "outgoing": m.outgoing,
        "text": text_of(m),
        "received": m.received,
    })
}

pub fn message_line(m: &Message) -> String {
    let dir = if m.outgoing {
        "you"
    } else {
        m.sender.did.as_str()
    };
    format!("[{}] {dir}: {}", short(&m.group), text_of(m))
}

/// An event as a JSON object and as a line; `None` for events not worth showing (typing).
pub fn event(e: &Event) -> Option<(Value, String)> {
    Some(match e {
        Event::Message(m) | Event::Sent(m) => {
            if matches!(m.decoded(), atmls::content::Content::Typing(_)) {
                return None;
            }
            (message_json(m), message_line(m))
        }
        Event::Joined { group, kind, by } => (
            json!({"event": "joined", "group": group.to_string(), "kind": kind_name(*kind), "by": by.as_str()}),
            format!("[{}] {by} added you to a {}", short(group), kind_name(*kind)),
        ),
        Event::MessageRequest { group, kind, by } => (
            json!({"event": "message_request", "group": group.to_string(), "kind": kind_name(*kind), "by": by.as_str()}),
            format!(
                "[{}] message request from {by} ({}): `atmls accept {}` to read it",
                short(group),
                kind_name(*kind),
                short(group)
            ),
        ),
        Event::Declined { group, by, reason } => (
            json!({"event": "declined", "group": group.to_string(), "by": by.as_str(), "reason": format!("{reason:?}")}),
            format!("[{}] left a conversation from {by} ({reason:?})", short(group)),
        ),
        Event::MembersAdded { group, by, members } => (
            json!({"event": "members_added", "group": group.to_string(), "by": by.as_str(),
                   "members": members.iter().map(|m| m.did.as_str()).collect::<Vec<_>>()}),
            format!("[{}] {by} added {} device(s)", short(group), members.len()),
        ),
        Event::MembersRemoved { group, by, members } => (
            json!({"event": "members_removed", "group": group.to_string(), "by": by.as_str(),
                   "members": members.iter().map(|m| m.did.as_str()).collect::<Vec<_>>()}),
            format!("[{}] {by} removed {} device(s)", short(group), members.len()),
        ),
        Event::Removed { group, by } => (
            json!({"event": "removed", "group": group.to_string(), "by": by.as_str()}),
            format!("[{}] {by} removed you", short(group)),
        ),
        Event::GovernanceChanged { group, by, change } => (
            json!({"event": "group_changed", "group": group.to_string(), "by": by.as_str(), "change": change.description()}),
            format!("[{}] {by} {}", short(group), change.description()),
        ),
        Event::TrustWarning { did, verified, .. } => (
            json!({"event": "trust_warning", "did": did.as_str(), "verified": verified}),
            format!(
                "WARNING: {did}'s identity key changed without endorsement; check with `atmls verify {did}`"
            ),
        ),
        other => (
            json!({"event": "other", "debug": format!("{other:?}")}),
            format!("{other:?}"),
        ),
    })
}

/// Prints an event, if it is worth showing.
pub fn print_event(out: &Out, e: &Event) {
    if let Some((v, line)) = event(e) {
        out.emit(v, line);
    }
}
