//! Record operations on a repository (`com.atproto.repo.*`): paginated reads from anyone's
//! PDS without logging in, and writes to one's own.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::xrpc::{Auth, Http};
use super::PdsError;
use crate::identity::Did;

/// Records per page (the most listRecords returns).
const PAGE: u8 = 100;
/// Most pages read per collection: bounds the work a hostile repository can cause.
const MAX_PAGES: usize = 50;

#[derive(Deserialize)]
struct ListOut {
    cursor: Option<String>,
    records: Vec<ListedRecord>,
}

#[derive(Deserialize)]
struct ListedRecord {
    uri: String,
    value: Value,
}

#[derive(Deserialize)]
struct GetOut {
    value: Value,
}

#[derive(Deserialize)]
struct WriteOut {
    uri: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WriteIn<'a> {
    repo: &'a str,
    collection: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    rkey: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    record: Option<&'a Value>,
}

/// The record key at the end of an `at://did/collection/rkey` URI.
fn rkey_of(uri: &str) -> Result<String, PdsError> {
    uri.rsplit_once('/')
        .map(|(_, k)| k.to_owned())
        .filter(|k| !k.is_empty())
        .ok_or_else(|| PdsError::InvalidResponse(format!("record URI {uri:?}")))
}

/// Every record of a collection, as (record key, value), following cursors.
pub(crate) async fn list(
    http: &Http,
    pds: &str,
    did: &Did,
    collection: &str,
) -> Result<Vec<(String, Value)>, PdsError> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let limit = PAGE.to_string();
        let mut params = vec![
            ("repo", did.as_str()),
            ("collection", collection),
            ("limit", limit.as_str()),
        ];
        if let Some(c) = &cursor {
            params.push(("cursor", c.as_str()));
        }
        let page: ListOut = http
            .query(pds, "com.atproto.repo.listRecords", params, None)
            .await?;
        let n = page.records.len();
        for r in page.records {
            out.push((rkey_of(&r.uri)?, r.value));
        }
        match page.cursor {
            Some(c) if n > 0 && Some(&c) != cursor.as_ref() => cursor = Some(c),
            _ => return Ok(out),
        }
    }
    Ok(out)
}

/// One record, or `None` if absent.
pub(crate) async fn get(
    http: &Http,
    pds: &str,
    did: &Did,
    collection: &str,
    rkey: &str,
) -> Result<Option<Value>, PdsError> {
    let params = [
        ("repo", did.as_str()),
        ("collection", collection),
        ("rkey", rkey),
    ];
    match http
        .query::<_, GetOut>(pds, "com.atproto.repo.getRecord", params, None)
        .await
    {
        Ok(r) => Ok(Some(r.value)),
        Err(PdsError::Refused { error, .. }) if error == "RecordNotFound" => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes a record under `rkey` (putRecord), or under a new TID chosen by the PDS
/// (createRecord). Returns the record key.
pub(crate) async fn write(
    http: &Http,
    pds: &str,
    auth: Auth<'_>,
    did: &Did,
    collection: &str,
    rkey: Option<&str>,
    record: &Value,
) -> Result<String, PdsError> {
    let input = WriteIn {
        repo: did.as_str(),
        collection,
        rkey,
        record: Some(record),
    };
    let nsid = if rkey.is_some() {
        "com.atproto.repo.putRecord"
    } else {
        "com.atproto.repo.createRecord"
    };
    let out: WriteOut = http.procedure_as(pds, nsid, Some(input), auth).await?;
    rkey_of(&out.uri)
}

/// Deletes a record; deleting a missing one succeeds.
pub(crate) async fn delete(
    http: &Http,
    pds: &str,
    auth: Auth<'_>,
    did: &Did,
    collection: &str,
    rkey: &str,
) -> Result<(), PdsError> {
    let input = WriteIn {
        repo: did.as_str(),
        collection,
        rkey: Some(rkey),
        record: None,
    };
    let _: Value = http
        .procedure_as(pds, "com.atproto.repo.deleteRecord", Some(input), auth)
        .await?;
    Ok(())
}
