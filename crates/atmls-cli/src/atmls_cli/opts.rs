//! The options every command takes, and the delivery-service transport they describe.

use std::path::PathBuf;
use std::sync::Arc;

use atmls::transport::Transport;
use clap::Args;

/// A command's result; errors are printed as `error: …` and exit 1.
pub type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// Options every command takes (before or after the command's name).
#[derive(Args, Clone, Debug)]
#[command(next_help_heading = "Global options")]
pub struct Global {
    /// This device's SQLite store (identity, conversations, the saved login).
    #[arg(long, global = true, env = "ATMLS_STORE", default_value = "atmls.db")]
    pub store: PathBuf,
    /// The atmls-ds delivery service, e.g. https://ds.example.com or http://127.0.0.1:8080.
    #[arg(long, global = true, env = "ATMLS_DS_URL")]
    pub ds: Option<String>,
    /// Also trust this root certificate (PEM) for the DS's TLS certificate.
    #[arg(long, global = true)]
    pub ds_root_cert: Option<PathBuf>,
    /// Accept a plain http:// DS URL to a host that is not loopback: the posting
    /// capabilities then travel in clear. Only on a network you trust entirely.
    #[arg(long, global = true)]
    pub ds_allow_plain_http_to_remote_hosts: bool,
    /// XRPC service trusted to resolve handles (com.atproto.identity.resolveHandle) instead
    /// of DNS and HTTPS (the default, as the ATProto handle spec says); e.g. a local PDS.
    #[arg(long, global = true, env = "ATMLS_HANDLE_RESOLVER")]
    pub handle_resolver: Option<String>,
    /// PLC directory for did:plc documents.
    #[arg(
        long,
        global = true,
        env = "ATMLS_PLC_URL",
        default_value = "https://plc.directory"
    )]
    pub plc_url: String,
    /// Fetch did:web documents over plain http (local testing only).
    #[arg(long, global = true, env = "ATMLS_DID_WEB_HTTP")]
    pub did_web_http: bool,
    /// One JSON object per line on stdout, for scripts.
    #[arg(long, global = true)]
    pub json: bool,
}

impl Global {
    /// The PDS directory these options describe (not logged in).
    #[cfg(feature = "pds")]
    pub fn directory(&self) -> atmls::directory::pds::PdsDirectory {
        let mut c = atmls::directory::pds::PdsConfig::new();
        c.handle_resolver = self.handle_resolver.clone();
        c.plc_url = self.plc_url.clone();
        if self.did_web_http {
            // Development against local hosts.
            c.did_web_scheme = "http".into();
            c.allow_private_did_web = true;
        }
        atmls::directory::pds::PdsDirectory::new(c)
    }

    /// The atmls-ds transport (`--ds`), or an error saying how to give one.
    pub fn transport(&self) -> Res<Arc<dyn Transport>> {
        let Some(url) = self.ds.as_deref() else {
            return Err(
                "no delivery service: pass `--ds <url>` or set ATMLS_DS_URL \
                        (an atmls-ds, e.g. http://127.0.0.1:8080)"
                    .into(),
            );
        };
        http_transport(self, url)
    }

    /// Where results go (`--json` or lines for people).
    #[cfg(feature = "pds")]
    pub fn out(&self) -> crate::out::Out {
        crate::out::Out { json: self.json }
    }
}

#[cfg(feature = "ds-client")]
fn http_transport(g: &Global, url: &str) -> Res<Arc<dyn Transport>> {
    let mut b = atmls::transport::HttpTransport::builder(url)
        .allow_plain_http_to_remote_hosts(g.ds_allow_plain_http_to_remote_hosts);
    if let Some(p) = &g.ds_root_cert {
        b = b.add_root_certificate_pem(&std::fs::read(p)?);
    }
    Ok(Arc::new(b.build()?))
}

#[cfg(not(feature = "ds-client"))]
fn http_transport(_: &Global, _: &str) -> Res<Arc<dyn Transport>> {
    Err("--ds needs atmls built with the ds-client feature".into())
}
