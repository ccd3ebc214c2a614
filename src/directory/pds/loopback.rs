//! [`LoopbackRedirect`]: where the browser comes back after signing in with OAuth, for apps
//! and the command-line tool running as the ATProto loopback client (REC-13).

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::PdsError;

/// Longest request head read from the browser.
const MAX_HEAD: usize = 16 * 1024;

/// A one-shot HTTP listener on `127.0.0.1` and a free port: its
/// [`redirect_uri`](Self::redirect_uri) goes to [`PdsDirectory::oauth_begin`], and
/// [`wait`](Self::wait) returns the URL the browser was redirected to, for
/// [`PdsDirectory::oauth_complete`].
///
/// [`PdsDirectory::oauth_begin`]: super::PdsDirectory::oauth_begin
/// [`PdsDirectory::oauth_complete`]: super::PdsDirectory::oauth_complete
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use std::time::Duration;
/// use atmls::directory::pds::LoopbackRedirect;
/// let listener = LoopbackRedirect::bind("/callback").await?;
/// assert!(listener.redirect_uri().starts_with("http://127.0.0.1:"));
/// // Nobody comes back: the wait ends with a retryable error.
/// let e = listener.wait(Duration::from_millis(10)).await.unwrap_err();
/// assert!(e.is_retryable());
/// # Ok::<(), atmls::directory::pds::PdsError>(())
/// # }).unwrap();
/// ```
#[derive(Debug)]
pub struct LoopbackRedirect {
    listener: TcpListener,
    path: String,
    uri: String,
}

impl LoopbackRedirect {
    /// Listens on `127.0.0.1` and a free port for a redirect to `path` (e.g. `/callback`).
    /// A path that does not start with `/`, or has a query or fragment, is
    /// [`PdsError::Config`].
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use atmls::directory::pds::LoopbackRedirect;
    /// assert!(LoopbackRedirect::bind("callback").await.is_err());
    /// let listener = LoopbackRedirect::bind("/callback").await?;
    /// assert!(listener.redirect_uri().ends_with("/callback"));
    /// # Ok::<(), atmls::directory::pds::PdsError>(())
    /// # }).unwrap();
    /// ```
    pub async fn bind(path: &str) -> Result<Self, PdsError> {
        if !path.starts_with('/') || path.contains(['?', '#']) {
            return Err(PdsError::Config(format!("redirect path {path:?}")));
        }
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| PdsError::Unavailable(format!("loopback listener: {e}")))?;
        let port = listener
            .local_addr()
            .map_err(|e| PdsError::Unavailable(format!("loopback listener: {e}")))?
            .port();
        Ok(LoopbackRedirect {
            listener,
            path: path.to_owned(),
            uri: format!("http://127.0.0.1:{port}{path}"),
        })
    }

    /// The redirect URI to sign in with: `http://127.0.0.1:<port><path>`.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let listener = atmls::directory::pds::LoopbackRedirect::bind("/cb").await?;
    /// let uri = listener.redirect_uri();
    /// let port: u16 = uri["http://127.0.0.1:".len()..uri.len() - 3].parse().unwrap();
    /// assert_ne!(port, 0);
    /// # Ok::<(), atmls::directory::pds::PdsError>(())
    /// # }).unwrap();
    /// ```
    pub fn redirect_uri(&self) -> &str {
        &self.uri
    }

    /// Waits up to `timeout` for the browser's request to the redirect path, answers it with
    /// a page saying the window can be closed, and returns its URL. Requests to other paths
    /// are answered 404 and the wait goes on. Timing out is [`PdsError::Unavailable`].
    ///
    /// ```no_run
    /// # async fn f(dir: atmls::directory::pds::PdsDirectory) -> Result<(), atmls::directory::pds::PdsError> {
    /// use std::time::Duration;
    /// let listener = atmls::directory::pds::LoopbackRedirect::bind("/callback").await?;
    /// let url = dir.oauth_begin("alice.example.com", listener.redirect_uri()).await?;
    /// println!("open {url} in your browser");
    /// let back = listener.wait(Duration::from_secs(300)).await?;
    /// let did = dir.oauth_complete(&back).await?;
    /// # Ok(()) }
    /// ```
    pub async fn wait(self, timeout: Duration) -> Result<String, PdsError> {
        tokio::time::timeout(timeout, self.serve())
            .await
            .map_err(|_| PdsError::Unavailable("no OAuth redirect came back".into()))?
    }

    async fn serve(&self) -> Result<String, PdsError> {
        loop {
            let (mut stream, _) = self
                .listener
                .accept()
                .await
                .map_err(|e| PdsError::Unavailable(format!("loopback listener: {e}")))?;
            let Some(target) = read_target(&mut stream).await else {
                continue;
            };
            let ours = target.split('?').next() == Some(self.path.as_str());
            let (status, body) = if ours {
                ("200 OK", "Signed in. You can close this window.")
            } else {
                ("404 Not Found", "Not found.")
            };
            let reply = format!(
                "HTTP/1.1 {status}\r\ncontent-type: text/plain; charset=utf-8\r\n\
                 content-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(reply.as_bytes()).await;
            if ours {
                return Ok(format!(
                    "{}{}",
                    self.uri.trim_end_matches(&self.path),
                    target
                ));
            }
        }
    }
}

/// The target of a `GET` request (its path and query), or `None` for anything else.
async fn read_target(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 || head.len() + n > MAX_HEAD {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = head.split(|b| *b == b'\r').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split(' ');
    match (parts.next(), parts.next()) {
        (Some("GET"), Some(target)) if target.starts_with('/') => Some(target.to_owned()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn rec_13_loopback_redirect_returns_the_url() {
        let l = LoopbackRedirect::bind("/cb").await.unwrap();
        let uri = l.redirect_uri().to_owned();
        let addr = uri
            .trim_start_matches("http://")
            .trim_end_matches("/cb")
            .to_owned();
        let browser = tokio::spawn(async move {
            for target in ["/favicon.ico", "/cb?code=c&state=s"] {
                let mut s = TcpStream::connect(&addr).await.unwrap();
                let req = format!("GET {target} HTTP/1.1\r\nhost: {addr}\r\n\r\n");
                s.write_all(req.as_bytes()).await.unwrap();
                let mut out = String::new();
                s.read_to_string(&mut out).await.unwrap();
            }
        });
        let got = l.wait(Duration::from_secs(10)).await.unwrap();
        browser.await.unwrap();
        assert_eq!(got, format!("{uri}?code=c&state=s"));
        assert!(LoopbackRedirect::bind("no-slash").await.is_err());
    }
}
