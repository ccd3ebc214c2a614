//! Content type identifiers (`authority/type:major.minor`), spec rules
//! CONTENT-1 to CONTENT-5.

use std::fmt;
use std::str::FromStr;

use super::ContentError;

/// Longest allowed authority or type name, in bytes (CONTENT-2, CONTENT-3).
pub const MAX_TYPE_ID_PART_LEN: usize = 64;

/// The authority for content types defined by this crate.
pub const ATMLS_AUTHORITY: &str = "atmls.dev";

/// The type name of plain text content (`atmls.dev/text:1.0`).
pub const TEXT_TYPE: &str = "text";

/// Identifies the type of a piece of content, such as `atmls.dev/text:1.0`.
///
/// A value of this type is always valid: the constructors check the rules in
/// `spec/content.md` (CONTENT-1 to CONTENT-4), so fields are read through
/// accessors.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContentTypeId {
    authority: String,
    type_id: String,
    version_major: u32,
    version_minor: u32,
}

impl ContentTypeId {
    /// Builds a content type id, checking the authority and type name
    /// (CONTENT-2, CONTENT-3).
    pub fn new(
        authority: impl Into<String>,
        type_id: impl Into<String>,
        version_major: u32,
        version_minor: u32,
    ) -> Result<Self, ContentError> {
        let authority = authority.into();
        let type_id = type_id.into();
        validate_authority(&authority)?;
        validate_type(&type_id)?;
        Ok(Self {
            authority,
            type_id,
            version_major,
            version_minor,
        })
    }

    /// The plain text type, `atmls.dev/text:1.0`.
    pub fn text() -> Self {
        Self {
            authority: ATMLS_AUTHORITY.to_owned(),
            type_id: TEXT_TYPE.to_owned(),
            version_major: 1,
            version_minor: 0,
        }
    }

    /// A type defined by this crate (`atmls.dev/<name>:<major>.0`). The names are
    /// constants checked by a unit test, so no validation happens here.
    pub(crate) fn atmls(name: &str, version_major: u32) -> Self {
        Self {
            authority: ATMLS_AUTHORITY.to_owned(),
            type_id: name.to_owned(),
            version_major,
            version_minor: 0,
        }
    }

    /// The authority that defines the type, e.g. `atmls.dev`.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// The type name within the authority, e.g. `text`.
    pub fn type_id(&self) -> &str {
        &self.type_id
    }

    /// The major version; a change means old decoders cannot read it.
    pub fn version_major(&self) -> u32 {
        self.version_major
    }

    /// The minor version; changes are backwards compatible.
    pub fn version_minor(&self) -> u32 {
        self.version_minor
    }

    /// True if both ids name the same authority and type, whatever the version.
    pub fn is_same_type(&self, other: &ContentTypeId) -> bool {
        self.authority == other.authority && self.type_id == other.type_id
    }

    /// True if a decoder for `self` can read content of type `other`: same
    /// authority, type and major version; minor versions may differ (CONTENT-5).
    pub fn is_compatible(&self, other: &ContentTypeId) -> bool {
        self.is_same_type(other) && self.version_major == other.version_major
    }

    /// Like [`is_compatible`](Self::is_compatible), but returns
    /// [`ContentError::TypeMismatch`] when `actual` cannot be decoded as `self`.
    pub fn require_compatible(&self, actual: &ContentTypeId) -> Result<(), ContentError> {
        if self.is_compatible(actual) {
            Ok(())
        } else {
            Err(ContentError::TypeMismatch {
                expected: self.clone(),
                actual: actual.clone(),
            })
        }
    }
}

impl fmt::Display for ContentTypeId {
    /// Formats as `authority/type:major.minor` (CONTENT-4).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}:{}.{}",
            self.authority, self.type_id, self.version_major, self.version_minor
        )
    }
}

impl FromStr for ContentTypeId {
    type Err = ContentError;

    /// Parses `authority/type:major.minor` (CONTENT-4).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (authority, rest) = s
            .split_once('/')
            .ok_or_else(|| invalid("missing '/' between authority and type"))?;
        let (type_id, version) = rest
            .split_once(':')
            .ok_or_else(|| invalid("missing ':' before the version"))?;
        let (major, minor) = version
            .split_once('.')
            .ok_or_else(|| invalid("version must be major.minor"))?;
        Self::new(
            authority,
            type_id,
            parse_version(major)?,
            parse_version(minor)?,
        )
    }
}

impl serde::Serialize for ContentTypeId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ContentTypeId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

fn invalid(reason: impl Into<String>) -> ContentError {
    ContentError::InvalidTypeId(reason.into())
}

/// Decimal digits only, no sign, no leading zeros, fits in a u32 (CONTENT-4).
fn parse_version(s: &str) -> Result<u32, ContentError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid("version numbers must be decimal digits"));
    }
    if s.len() > 1 && s.starts_with('0') {
        return Err(invalid("version numbers must not have leading zeros"));
    }
    s.parse()
        .map_err(|_| invalid("version number does not fit in 32 bits"))
}

fn is_name_char(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-'
}

fn is_alnum(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// Length and character set shared by authority and type (CONTENT-2, CONTENT-3).
fn check_chars(what: &str, s: &str) -> Result<(), ContentError> {
    if s.is_empty() || s.len() > MAX_TYPE_ID_PART_LEN {
        return Err(invalid(format!(
            "{what} must be 1 to {MAX_TYPE_ID_PART_LEN} characters"
        )));
    }
    if !s.bytes().all(is_name_char) {
        return Err(invalid(format!(
            "{what} may contain only a-z, 0-9, '.' and '-'"
        )));
    }
    Ok(())
}

/// CONTENT-2: a domain-like name of at least two dot-separated labels, each
/// non-empty and neither starting nor ending with '-'.
fn validate_authority(s: &str) -> Result<(), ContentError> {
    check_chars("authority", s)?;
    if !s.contains('.') {
        return Err(invalid("authority must be a domain name such as atmls.dev"));
    }
    for label in s.split('.') {
        if label.is_empty() {
            return Err(invalid("authority has an empty label"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(invalid("authority label starts or ends with '-'"));
        }
    }
    Ok(())
}

/// CONTENT-3: starts and ends with a letter or digit.
fn validate_type(s: &str) -> Result<(), ContentError> {
    check_chars("type", s)?;
    let bytes = s.as_bytes();
    let ends_ok =
        bytes.first().copied().is_some_and(is_alnum) && bytes.last().copied().is_some_and(is_alnum);
    if !ends_ok {
        return Err(invalid("type must start and end with a letter or digit"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad(s: &str) {
        let err = s.parse::<ContentTypeId>().unwrap_err();
        assert!(
            matches!(err, ContentError::InvalidTypeId(_)),
            "{s:?} gave {err:?}"
        );
    }

    #[test]
    fn content_1_text_type_id() {
        let t = ContentTypeId::text();
        assert_eq!(t.authority(), "atmls.dev");
        assert_eq!(t.type_id(), "text");
        assert_eq!(t.version_major(), 1);
        assert_eq!(t.version_minor(), 0);
        assert_eq!(t, ContentTypeId::new("atmls.dev", "text", 1, 0).unwrap());
    }

    #[test]
    fn content_2_accepts_domain_like_authorities() {
        for a in ["atmls.dev", "a.b", "xmtp.org", "my-app.example.com", "0.9"] {
            ContentTypeId::new(a, "text", 1, 0).unwrap();
        }
        let longest = format!("{}.dev", "a".repeat(60));
        assert_eq!(longest.len(), 64);
        ContentTypeId::new(longest, "text", 1, 0).unwrap();
    }

    #[test]
    fn content_2_rejects_bad_authorities() {
        let too_long = format!("{}.dev", "a".repeat(61));
        for a in [
            "",
            "atmls",
            "Atmls.dev",
            "atmls.dev.",
            ".atmls.dev",
            "atmls..dev",
            "-atmls.dev",
            "atmls-.dev",
            "atmls.-dev",
            "atmls_x.dev",
            "atmls.dév",
            "atmls dev.x",
            too_long.as_str(),
        ] {
            let err = ContentTypeId::new(a, "text", 1, 0).unwrap_err();
            assert!(matches!(err, ContentError::InvalidTypeId(_)), "{a:?}");
        }
    }

    #[test]
    fn content_3_accepts_type_names() {
        for t in [
            "text",
            "a",
            "0",
            "read-receipt",
            "v2.reaction",
            &"x".repeat(64),
        ] {
            ContentTypeId::new("atmls.dev", t, 1, 0).unwrap();
        }
    }

    #[test]
    fn content_3_rejects_bad_type_names() {
        for t in [
            "",
            "Text",
            "text_msg",
            "text/x",
            "text:1",
            "-text",
            "text-",
            ".text",
            "text.",
            "tëxt",
            "te xt",
            &"x".repeat(65),
        ] {
            let err = ContentTypeId::new("atmls.dev", t, 1, 0).unwrap_err();
            assert!(matches!(err, ContentError::InvalidTypeId(_)), "{t:?}");
        }
    }

    #[test]
    fn content_4_display_and_parse_round_trip() {
        let id = ContentTypeId::new("example.org", "re-action", 12, 4_294_967_295).unwrap();
        let s = id.to_string();
        assert_eq!(s, "example.org/re-action:12.4294967295");
        assert_eq!(s.parse::<ContentTypeId>().unwrap(), id);
        assert_eq!(ContentTypeId::text().to_string(), "atmls.dev/text:1.0");
        assert_eq!(
            "atmls.dev/text:0.0".parse::<ContentTypeId>().unwrap(),
            ContentTypeId::new("atmls.dev", "text", 0, 0).unwrap()
        );
    }

    #[test]
    fn content_4_rejects_bad_strings() {
        for s in [
            "",
            "atmls.dev",
            "atmls.dev/text",
            "atmls.dev/text:1",
            "atmls.dev/text:1.",
            "atmls.dev/text:.0",
            "atmls.dev/text:01.0",
            "atmls.dev/text:1.00",
            "atmls.dev/text:+1.0",
            "atmls.dev/text:-1.0",
            "atmls.dev/text:1.0.0",
            "atmls.dev/text:1.0 ",
            " atmls.dev/text:1.0",
            "atmls.dev/text:4294967296.0",
            "atmls.dev/text:1.99999999999999999999",
            "atmls.dev/te/xt:1.0",
            "atmls.dev/text:x:1.0",
            "/text:1.0",
            "atmls.dev/:1.0",
            "ATMLS.DEV/text:1.0",
        ] {
            bad(s);
        }
    }

    #[test]
    fn content_4_serde_uses_string_form() {
        let id = ContentTypeId::text();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"atmls.dev/text:1.0\"");
        assert_eq!(serde_json::from_str::<ContentTypeId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<ContentTypeId>("\"atmls.dev/Text:1.0\"").is_err());
    }

    #[test]
    fn content_5_minor_versions_are_compatible_major_are_not() {
        let v1_0 = ContentTypeId::text();
        let v1_7 = ContentTypeId::new("atmls.dev", "text", 1, 7).unwrap();
        let v2_0 = ContentTypeId::new("atmls.dev", "text", 2, 0).unwrap();
        let other = ContentTypeId::new("atmls.dev", "texts", 1, 0).unwrap();
        let other_auth = ContentTypeId::new("other.dev", "text", 1, 0).unwrap();
        assert!(v1_0.is_compatible(&v1_7));
        assert!(v1_7.is_compatible(&v1_0));
        assert!(v1_0.require_compatible(&v1_7).is_ok());
        assert!(v1_0.is_same_type(&v2_0));
        assert!(!v1_0.is_compatible(&v2_0));
        assert!(!v1_0.is_compatible(&other));
        assert!(!v1_0.is_compatible(&other_auth));
        assert!(matches!(
            v1_0.require_compatible(&v2_0),
            Err(ContentError::TypeMismatch { .. })
        ));
    }
}
