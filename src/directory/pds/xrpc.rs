//! XRPC and plain HTTPS GETs over atrium's XRPC client (reqwest), with a timeout on every
//! call and errors sorted into retryable (network, 5xx, 429) and not.

use std::time::Duration;

use atrium_xrpc::error::{Error as XError, XrpcErrorKind};
use atrium_xrpc::http::{Method, Request};
use atrium_xrpc::types::AuthorizationToken;
use atrium_xrpc::{HttpClient, InputDataOrBytes, OutputDataOrBytes, XrpcClient, XrpcRequest};
use atrium_xrpc_client::reqwest::{ReqwestClient, ReqwestClientBuilder};
use futures_util::FutureExt;
use serde::{de::DeserializeOwned, Serialize};

use super::PdsError;

/// Largest response body we decode (a page of 100 records of at most 32 KiB, with room).
const MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;

/// No XRPC error is specific to the calls we make; every error body is read as
/// `{error, message}`. An uninhabited type makes atrium fall back to that form.
#[derive(Debug, serde::Deserialize)]
enum NoCustomError {}

/// One HTTP client (connection pool) for every host.
#[derive(Clone)]
pub(crate) struct Http {
    client: ReqwestClient,
    timeout: Duration,
}

/// One XRPC call's view of the client: which server, with which token.
struct Call<'a> {
    client: &'a ReqwestClient,
    base: &'a str,
    token: Option<&'a str>,
}

impl HttpClient for Call<'_> {
    async fn send_http(
        &self,
        request: Request<Vec<u8>>,
    ) -> Result<
        atrium_xrpc::http::Response<Vec<u8>>,
        Box<dyn std::error::Error + Send + Sync + 'static>,
    > {
        self.client.send_http(request).await
    }
}

impl XrpcClient for Call<'_> {
    fn base_uri(&self) -> String {
        self.base.trim_end_matches('/').to_owned()
    }

    async fn authorization_token(&self, _is_refresh: bool) -> Option<AuthorizationToken> {
        self.token.map(|t| AuthorizationToken::Bearer(t.to_owned()))
    }
}

/// Who a write is made as: an app-password session's bearer token, or an OAuth session
/// (DPoP-bound tokens, refreshed by the session itself; REC-13).
#[derive(Clone, Copy)]
pub(crate) enum Auth<'a> {
    /// `Authorization: Bearer` with an app-password session's access token.
    Bearer(&'a str),
    /// An OAuth session's XRPC client.
    OAuth(&'a super::oauth::OAuthXrpc),
}

/// The directory's HTTP client for atrium-oauth (metadata, PAR, token requests), with the
/// directory's timeout on each request.
impl HttpClient for Http {
    async fn send_http(
        &self,
        request: Request<Vec<u8>>,
    ) -> Result<
        atrium_xrpc::http::Response<Vec<u8>>,
        Box<dyn std::error::Error + Send + Sync + 'static>,
    > {
        let uri = request.uri().to_string();
        match tokio::time::timeout(self.timeout, self.client.send_http(request)).await {
            Ok(r) => r,
            Err(_) => Err(Box::new(unavailable(&uri, "timed out"))),
        }
    }
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> PdsError {
    PdsError::Unavailable(format!("{what}: {e}"))
}

fn map_error(nsid: &str, e: XError<NoCustomError>) -> PdsError {
    match e {
        XError::XrpcResponse(r) => {
            let status = r.status.as_u16();
            let (error, message) = match r.error {
                Some(XrpcErrorKind::Undefined(b)) => {
                    (b.error.unwrap_or_default(), b.message.unwrap_or_default())
                }
                _ => (String::new(), String::new()),
            };
            if status >= 500 || status == 429 {
                unavailable(nsid, format!("{status} {error} {message}"))
            } else {
                PdsError::Refused {
                    status,
                    error,
                    message,
                }
            }
        }
        XError::Authentication(h) => PdsError::Auth(format!("{nsid}: {h:?}")),
        XError::HttpClient(e) => unavailable(nsid, e),
        other => PdsError::InvalidResponse(format!("{nsid}: {other:?}")),
    }
}

/// A reqwest client on rustls with the built-in (webpki) roots and `roots` besides.
pub(crate) fn client_builder(roots: &[reqwest::Certificate]) -> reqwest::ClientBuilder {
    let mut b = reqwest::Client::builder().use_rustls_tls();
    for r in roots {
        b = b.add_root_certificate(r.clone());
    }
    b
}

impl Http {
    pub(crate) fn new(timeout: Duration, roots: &[reqwest::Certificate]) -> Self {
        // Roots are checked when they are configured (`PdsConfig::add_root_certificate_pem`),
        // so building fails only if TLS cannot start at all; then without the extra roots
        // (their hosts fail with a TLS error) rather than a panic.
        let client = client_builder(roots).build().unwrap_or_else(|e| {
            tracing::error!(error = %e, "HTTP client without the configured roots");
            reqwest::Client::new()
        });
        // The base URI is supplied per call, so one client (and its pool) serves every host.
        Http {
            client: ReqwestClientBuilder::new("").client(client).build(),
            timeout,
        }
    }

    async fn xrpc<P, I, O>(
        &self,
        base: &str,
        token: Option<&str>,
        request: XrpcRequest<P, I>,
    ) -> Result<O, PdsError>
    where
        P: Serialize + Send + Sync,
        I: Serialize + Send + Sync,
        O: DeserializeOwned + Send + Sync,
    {
        let call = Call {
            client: &self.client,
            base,
            token,
        };
        let nsid = request.nsid.clone();
        let out = tokio::time::timeout(
            self.timeout,
            call.send_xrpc::<P, I, O, NoCustomError>(&request),
        )
        .await
        .map_err(|_| unavailable(&nsid, "timed out"))?
        .map_err(|e| map_error(&nsid, e))?;
        match out {
            OutputDataOrBytes::Data(o) => Ok(o),
            OutputDataOrBytes::Bytes(_) => {
                Err(PdsError::InvalidResponse(format!("{nsid}: not JSON")))
            }
        }
    }

    /// An XRPC query (GET).
    pub(crate) async fn query<P, O>(
        &self,
        base: &str,
        nsid: &str,
        params: P,
        token: Option<&str>,
    ) -> Result<O, PdsError>
    where
        P: Serialize + Send + Sync,
        O: DeserializeOwned + Send + Sync,
    {
        let request = XrpcRequest::<P, ()> {
            method: Method::GET,
            nsid: nsid.to_owned(),
            parameters: Some(params),
            input: None,
            encoding: None,
        };
        self.xrpc(base, token, request).await
    }

    /// An XRPC procedure (POST with a JSON body, or none).
    pub(crate) async fn procedure<I, O>(
        &self,
        base: &str,
        nsid: &str,
        input: Option<I>,
        token: Option<&str>,
    ) -> Result<O, PdsError>
    where
        I: Serialize + Send + Sync,
        O: DeserializeOwned + Send + Sync,
    {
        let encoding = input.as_ref().map(|_| "application/json".to_owned());
        let request = XrpcRequest::<(), I> {
            method: Method::POST,
            nsid: nsid.to_owned(),
            parameters: None,
            input: input.map(InputDataOrBytes::Data),
            encoding,
        };
        self.xrpc(base, token, request).await
    }

    /// An XRPC procedure made as `auth`: an OAuth session's goes to its own PDS (`base` is
    /// the same, from the DID document) through its DPoP client; a 401 after its refresh
    /// means the PDS no longer accepts the session (REC-16).
    pub(crate) async fn procedure_as<I, O>(
        &self,
        base: &str,
        nsid: &str,
        input: Option<I>,
        auth: Auth<'_>,
    ) -> Result<O, PdsError>
    where
        I: Serialize + Send + Sync,
        O: DeserializeOwned + Send + Sync,
    {
        let session = match auth {
            Auth::Bearer(token) => return self.procedure(base, nsid, input, Some(token)).await,
            Auth::OAuth(session) => session,
        };
        let encoding = input.as_ref().map(|_| "application/json".to_owned());
        let request = XrpcRequest::<(), I> {
            method: Method::POST,
            nsid: nsid.to_owned(),
            parameters: None,
            input: input.map(InputDataOrBytes::Data),
            encoding,
        };
        let sent = tokio::time::timeout(
            self.timeout,
            std::panic::AssertUnwindSafe(session.send_xrpc::<(), I, O, NoCustomError>(&request))
                .catch_unwind(),
        )
        .await
        .map_err(|_| unavailable(nsid, "timed out"))?
        .map_err(|_| PdsError::InvalidResponse(format!("{nsid}: the OAuth client failed")))?;
        match sent.map_err(|e| map_error(nsid, e)) {
            Ok(OutputDataOrBytes::Data(o)) => Ok(o),
            Ok(OutputDataOrBytes::Bytes(_)) => {
                Err(PdsError::InvalidResponse(format!("{nsid}: not JSON")))
            }
            Err(PdsError::Refused {
                status: 401,
                error,
                message,
            }) => Err(PdsError::Auth(format!("{nsid}: {error} {message}"))),
            Err(e) => Err(e),
        }
    }

    /// A plain GET of a JSON document (DID documents).
    pub(crate) async fn get_json<O: DeserializeOwned>(&self, url: &str) -> Result<O, PdsError> {
        let req = Request::builder()
            .method(Method::GET)
            .uri(url)
            .header("accept", "application/json")
            .body(Vec::new())
            .map_err(|e| PdsError::InvalidResponse(format!("{url}: {e}")))?;
        let resp = tokio::time::timeout(self.timeout, self.client.send_http(req))
            .await
            .map_err(|_| unavailable(url, "timed out"))?
            .map_err(|e| unavailable(url, e))?;
        let status = resp.status().as_u16();
        if status >= 500 || status == 429 {
            return Err(unavailable(url, status));
        }
        if status == 404 || status == 410 {
            return Err(PdsError::Refused {
                status,
                error: "NotFound".into(),
                message: url.to_owned(),
            });
        }
        if !(200..300).contains(&status) || resp.body().len() > MAX_RESPONSE_BYTES {
            return Err(PdsError::InvalidResponse(format!("{url}: status {status}")));
        }
        serde_json::from_slice(resp.body())
            .map_err(|e| PdsError::InvalidResponse(format!("{url}: {e}")))
    }
}
