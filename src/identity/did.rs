//! Decentralized identifiers (the account names of ATProto).

use std::fmt;
use std::str::FromStr;

use super::IdentityError;

/// Longest DID we accept (ATProto caps DIDs at 2 KiB).
pub const MAX_DID_LEN: usize = 2048;

/// A syntactically valid `did:plc:` or `did:web:` identifier.
///
/// ```
/// use atmls::identity::Did;
/// let did: Did = "did:plc:ewvi7nxzyoun6zhxrhs64oiz".parse()?;
/// assert_eq!(did.method(), "plc");
/// assert!("did:example:x".parse::<Did>().is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Did(String);

impl Did {
    /// Parses and validates a DID (spec/identity.md ID-1).
    pub fn new(s: &str) -> Result<Self, IdentityError> {
        let bad = || IdentityError::InvalidDid(s.chars().take(64).collect());
        if s.is_empty() || s.len() > MAX_DID_LEN {
            return Err(bad());
        }
        let rest = s.strip_prefix("did:").ok_or_else(bad)?;
        let (method, id) = rest.split_once(':').ok_or_else(bad)?;
        if !matches!(method, "plc" | "web") || id.is_empty() || id.ends_with(':') {
            return Err(bad());
        }
        let ok = id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '%' | '-'));
        if !ok {
            return Err(bad());
        }
        if method == "plc"
            && (id.len() != 24 || !id.chars().all(|c| matches!(c, 'a'..='z' | '2'..='7')))
        {
            return Err(bad());
        }
        Ok(Did(s.to_owned()))
    }

    /// The DID as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The DID method (`plc` or `web`).
    pub fn method(&self) -> &str {
        // A `Did` is validated on construction (ID-1): it always has a method part.
        self.0.split(':').nth(1).unwrap_or_default()
    }
}

impl FromStr for Did {
    type Err = IdentityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Did::new(s)
    }
}

impl TryFrom<String> for Did {
    type Error = IdentityError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Did::new(&s)
    }
}

impl From<Did> for String {
    fn from(d: Did) -> String {
        d.0
    }
}

impl fmt::Display for Did {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Did {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Did({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_1_accepts_plc_and_web() {
        assert!(Did::new("did:plc:ewvi7nxzyoun6zhxrhs64oiz").is_ok());
        assert!(Did::new("did:web:example.com").is_ok());
        assert!(Did::new("did:web:localhost%3A2583").is_ok());
    }

    #[test]
    fn id_1_rejects_malformed() {
        for bad in [
            "",
            "did:",
            "did:plc:",
            "did:plc:short",
            "did:plc:EWVI7NXZYOUN6ZHXRHS64OIZ",
            "did:key:z6Mk",
            "did:web:exa mple.com",
            "did:web:example.com:",
            "plc:ewvi7nxzyoun6zhxrhs64oiz",
        ] {
            assert!(Did::new(bad).is_err(), "{bad}");
        }
        assert!(Did::new(&format!("did:web:{}", "a".repeat(MAX_DID_LEN))).is_err());
    }
}
