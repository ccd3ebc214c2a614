//! Raw HTTP to atmls-ds, to send what the client transport never would.

use atmls::transport::Mailbox;
use atmls_ds_wire::api::ErrorBody;

use super::Ds;

/// A plain HTTP client of one service.
pub struct Raw {
    http: reqwest::Client,
    url: String,
}

impl Raw {
    pub fn new(ds: &Ds) -> Self {
        Raw {
            http: reqwest::Client::new(),
            url: ds.url.clone(),
        }
    }

    pub async fn post(
        &self,
        path: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> (u16, Option<ErrorBody>) {
        let mut r = self.http.post(format!("{}{path}", self.url)).body(body);
        for (k, v) in headers {
            r = r.header(*k, v);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        let body = resp.bytes().await.unwrap();
        (status, serde_json::from_slice(&body).ok())
    }

    pub async fn get(&self, path: &str) -> (u16, Option<ErrorBody>) {
        let resp = self
            .http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let body = resp.bytes().await.unwrap();
        (status, serde_json::from_slice(&body).ok())
    }
}

pub fn group_headers(mb: &Mailbox, epoch: [u8; 32], idem: [u8; 16]) -> Vec<(&'static str, String)> {
    vec![
        (
            "authorization",
            format!("Bearer {}", hex::encode(mb.post_secret.unwrap())),
        ),
        ("atmls-epoch", hex::encode(epoch)),
        ("idempotency-key", hex::encode(idem)),
    ]
}

#[track_caller]
pub fn assert_error(got: (u16, Option<ErrorBody>), status: u16, code: &str) {
    assert_eq!(got.0, status, "{got:?}");
    let body = got
        .1
        .unwrap_or_else(|| panic!("no JSON error body for {code}"));
    assert_eq!(body.error, code);
    assert!(!body.message.is_empty());
}
