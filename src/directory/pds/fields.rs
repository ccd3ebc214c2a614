//! Reading and writing the fields of ATProto JSON records: `{"$bytes": ...}` for binary data
//! (atrium's generic record type does not write it), datetimes as whole seconds, and typed
//! errors naming the field for everything a hostile record can get wrong.

use base64::engine::{general_purpose::GeneralPurpose, DecodePaddingMode, GeneralPurposeConfig};
use base64::Engine as _;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};

use super::RecordError;

/// ATProto writes `$bytes` as standard base64 without padding; readers accept either.
const B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// `{"$bytes": "<base64>"}`.
pub(crate) fn bytes_value(b: &[u8]) -> Value {
    serde_json::json!({ "$bytes": B64.encode(b) })
}

/// RFC 3339 UTC with whole seconds, e.g. `2026-11-22T04:24:00Z`.
pub(crate) fn datetime_value(secs: u64) -> Value {
    let s = i64::try_from(secs)
        .ok()
        .and_then(|s| DateTime::<Utc>::from_timestamp(s, 0))
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
    Value::String(s.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// A JSON object being decoded; errors name the field.
pub(crate) struct Obj<'a>(pub(crate) &'a Map<String, Value>);

impl<'a> Obj<'a> {
    pub(crate) fn of(v: &'a Value, what: &'static str) -> Result<Self, RecordError> {
        v.as_object().map(Obj).ok_or(RecordError::WrongType {
            field: what,
            expected: "object",
        })
    }

    fn req(&self, f: &'static str) -> Result<&'a Value, RecordError> {
        match self.0.get(f) {
            None | Some(Value::Null) => Err(RecordError::MissingField(f)),
            Some(v) => Ok(v),
        }
    }

    fn wrong(f: &'static str, expected: &'static str) -> RecordError {
        RecordError::WrongType { field: f, expected }
    }

    pub(crate) fn obj(&self, f: &'static str) -> Result<Obj<'a>, RecordError> {
        self.req(f)?
            .as_object()
            .map(Obj)
            .ok_or(Self::wrong(f, "object"))
    }

    pub(crate) fn str(&self, f: &'static str) -> Result<&'a str, RecordError> {
        self.req(f)?.as_str().ok_or(Self::wrong(f, "string"))
    }

    pub(crate) fn opt_str(&self, f: &'static str) -> Result<Option<&'a str>, RecordError> {
        match self.0.get(f) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v.as_str().map(Some).ok_or(Self::wrong(f, "string")),
        }
    }

    pub(crate) fn bool(&self, f: &'static str) -> Result<bool, RecordError> {
        self.req(f)?.as_bool().ok_or(Self::wrong(f, "boolean"))
    }

    pub(crate) fn u16(&self, f: &'static str) -> Result<u16, RecordError> {
        int_u16(self.req(f)?, f)
    }

    pub(crate) fn array(&self, f: &'static str) -> Result<&'a Vec<Value>, RecordError> {
        self.req(f)?.as_array().ok_or(Self::wrong(f, "array"))
    }

    pub(crate) fn opt_array(&self, f: &'static str) -> Result<&'a [Value], RecordError> {
        match self.0.get(f) {
            None | Some(Value::Null) => Ok(&[]),
            Some(v) => v
                .as_array()
                .map(Vec::as_slice)
                .ok_or(Self::wrong(f, "array")),
        }
    }

    /// A `{"$bytes": "..."}` field.
    pub(crate) fn bytes(&self, f: &'static str) -> Result<Vec<u8>, RecordError> {
        let inner = self
            .req(f)?
            .as_object()
            .filter(|o| o.len() == 1)
            .and_then(|o| o.get("$bytes"))
            .and_then(Value::as_str)
            .ok_or(Self::wrong(f, "bytes ({\"$bytes\": base64})"))?;
        B64.decode(inner).map_err(|_| RecordError::BadBase64(f))
    }

    /// A datetime field, as unix seconds (fractions are dropped: signed times are whole seconds).
    pub(crate) fn datetime(&self, f: &'static str) -> Result<u64, RecordError> {
        let s = self.str(f)?;
        let t = DateTime::parse_from_rfc3339(s).map_err(|_| RecordError::BadDatetime(f))?;
        u64::try_from(t.timestamp()).map_err(|_| RecordError::BadDatetime(f))
    }
}

pub(crate) fn int_u16(v: &Value, f: &'static str) -> Result<u16, RecordError> {
    v.as_u64()
        .and_then(|n| u16::try_from(n).ok())
        .ok_or(RecordError::WrongType {
            field: f,
            expected: "integer 0..=65535",
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bytes_round_trip_without_padding_and_reject_bad_base64() {
        let v = json!({ "b": bytes_value(b"hello") });
        assert_eq!(v["b"]["$bytes"], "aGVsbG8");
        let o = Obj::of(&v, "t").unwrap();
        assert_eq!(o.bytes("b").unwrap(), b"hello");
        let padded = json!({ "b": { "$bytes": "aGVsbG8=" } });
        assert_eq!(Obj::of(&padded, "t").unwrap().bytes("b").unwrap(), b"hello");
        let bad = json!({ "b": { "$bytes": "a$b!" } });
        assert_eq!(
            Obj::of(&bad, "t").unwrap().bytes("b"),
            Err(RecordError::BadBase64("b"))
        );
        let plain = json!({ "b": "aGVsbG8" });
        assert!(matches!(
            Obj::of(&plain, "t").unwrap().bytes("b"),
            Err(RecordError::WrongType { field: "b", .. })
        ));
        let extra = json!({ "b": { "$bytes": "aGVsbG8", "x": 1 } });
        assert!(Obj::of(&extra, "t").unwrap().bytes("b").is_err());
    }

    #[test]
    fn datetimes_are_whole_seconds() {
        let v = json!({ "t": datetime_value(1_795_000_000) });
        assert_eq!(v["t"], "2026-11-18T11:06:40Z");
        assert_eq!(
            Obj::of(&v, "x").unwrap().datetime("t").unwrap(),
            1_795_000_000
        );
        let frac = json!({ "t": "2026-11-18T12:06:40.999+01:00" });
        assert_eq!(
            Obj::of(&frac, "x").unwrap().datetime("t").unwrap(),
            1_795_000_000
        );
        for bad in [
            json!({ "t": "yesterday" }),
            json!({ "t": "1960-01-01T00:00:00Z" }),
        ] {
            assert_eq!(
                Obj::of(&bad, "x").unwrap().datetime("t"),
                Err(RecordError::BadDatetime("t"))
            );
        }
    }

    #[test]
    fn missing_and_wrong_types_name_the_field() {
        let v = json!({ "n": "1", "s": 3, "z": null });
        let o = Obj::of(&v, "t").unwrap();
        assert_eq!(o.str("absent"), Err(RecordError::MissingField("absent")));
        assert_eq!(o.str("z"), Err(RecordError::MissingField("z")));
        assert!(matches!(
            o.u16("n"),
            Err(RecordError::WrongType { field: "n", .. })
        ));
        assert!(matches!(
            o.str("s"),
            Err(RecordError::WrongType { field: "s", .. })
        ));
        assert!(matches!(
            int_u16(&json!(70_000), "c"),
            Err(RecordError::WrongType { .. })
        ));
        assert_eq!(o.opt_str("absent"), Ok(None));
    }
}
