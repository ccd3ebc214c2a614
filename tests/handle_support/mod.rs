//! The network of tests/handle_resolution.rs, on loopback and started by each test: a DNS
//! server (UDP, messages encoded and decoded by hickory-proto) answering TXT and A queries
//! from a zone, and an HTTPS host (tokio-rustls, certificate from a test authority) serving
//! `/.well-known/atproto-did` for handles and DID documents as a PLC directory.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use atmls::directory::pds::PdsConfig;
use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, TXT};
use hickory_proto::rr::{RData, Record, RecordType};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, UdpSocket};

/// Names the DNS server knows (lowercase, no trailing dot): TXT values (each a list of
/// character-strings) and IPv4 addresses.
#[derive(Default, Clone)]
pub struct Zone {
    pub txt: HashMap<String, Vec<Vec<String>>>,
    pub a: HashMap<String, Ipv4Addr>,
}

impl Zone {
    /// One TXT record of one string at `_atproto.<handle>`.
    pub fn txt(mut self, handle: &str, value: &str) -> Zone {
        self.txt
            .entry(format!("_atproto.{handle}"))
            .or_default()
            .push(vec![value.to_owned()]);
        self
    }

    /// One TXT record split into several character-strings.
    pub fn txt_chunks(mut self, handle: &str, chunks: &[&str]) -> Zone {
        self.txt
            .entry(format!("_atproto.{handle}"))
            .or_default()
            .push(chunks.iter().map(|c| c.to_string()).collect());
        self
    }

    pub fn a(mut self, name: &str, ip: Ipv4Addr) -> Zone {
        self.a.insert(name.to_owned(), ip);
        self
    }
}

fn answer(zone: &Zone, query: &Message) -> Message {
    let mut out = Message::new();
    out.set_id(query.id())
        .set_message_type(MessageType::Response)
        .set_op_code(query.op_code())
        .set_recursion_desired(query.recursion_desired())
        .set_recursion_available(true)
        .set_authoritative(true);
    let mut known = false;
    for q in query.queries() {
        out.add_query(q.clone());
        let name = q
            .name()
            .to_ascii()
            .trim_end_matches('.')
            .to_ascii_lowercase();
        let txt = zone.txt.get(&name);
        let a = zone.a.get(&name);
        known |= txt.is_some() || a.is_some();
        match q.query_type() {
            RecordType::TXT => {
                for v in txt.into_iter().flatten() {
                    let rdata = RData::TXT(TXT::new(v.clone()));
                    out.add_answer(Record::from_rdata(q.name().clone(), 60, rdata));
                }
            }
            RecordType::A => {
                if let Some(ip) = a {
                    let rdata = RData::A(A(*ip));
                    out.add_answer(Record::from_rdata(q.name().clone(), 60, rdata));
                }
            }
            _ => {}
        }
    }
    // A name the zone does not hold does not exist; one it holds has no other types.
    out.set_response_code(if known {
        ResponseCode::NoError
    } else {
        ResponseCode::NXDomain
    });
    out
}

/// A DNS server for `zone` on 127.0.0.1 (UDP), until the test's runtime ends.
pub async fn dns_server(zone: Zone) -> SocketAddr {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let Ok((n, from)) = sock.recv_from(&mut buf).await else {
                return;
            };
            let Ok(query) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let bytes = answer(&zone, &query).to_vec().unwrap();
            let _ = sock.send_to(&bytes, from).await;
        }
    });
    addr
}

/// A DNS server that receives queries and never answers them.
pub async fn silent_dns_server() -> SocketAddr {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while sock.recv_from(&mut buf).await.is_ok() {}
    });
    addr
}

/// What the HTTPS host answers on one path of one host.
#[derive(Clone)]
pub enum Reply {
    /// A status and a body (`text/plain` or JSON, by the path).
    Body(u16, Vec<u8>),
    /// A 200 announcing 1 MiB, then a byte every 200 ms.
    Trickle,
    /// Nothing at all: the connection stays open, silent.
    Silent,
    /// A redirect to this location.
    Redirect(String),
}

/// The HTTPS host: routes by `Host` (without port) and path; counts TLS connections and
/// requests per path.
pub struct WebHost {
    pub port: u16,
    pub root_pem: Vec<u8>,
    pub connections: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<(String, String)>>>,
}

impl WebHost {
    /// How many requests asked for `path` on `host`.
    pub fn hits(&self, host: &str, path: &str) -> usize {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|(h, p)| h == host && p == path)
            .count()
    }

    /// How many requests asked for a handle's well-known path, on any host.
    pub fn well_known_hits(&self) -> usize {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, p)| p == "/.well-known/atproto-did")
            .count()
    }

    pub fn plc_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }
}

/// A test authority and a server configuration with its certificate for `*.example.test`,
/// `example.test` and 127.0.0.1.
fn tls() -> (Vec<u8>, Arc<tokio_rustls::rustls::ServerConfig>) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
    use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "atmls handle test root");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = ca.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let names = ["*.example.test", "example.test", "127.0.0.1"].map(String::from);
    let leaf = CertificateParams::new(names.to_vec())
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    // ring like the client; deprecated by rustls for its lack of post-quantum key exchange
    // (crates/atmls-ds/src/config.rs says more).
    #[allow(deprecated)]
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
    (ca.pem().into_bytes(), Arc::new(config))
}

/// The HTTPS host on 127.0.0.1 with `routes` ((host, path) → reply; anything else is 404),
/// until the test's runtime ends.
pub async fn web_host(routes: HashMap<(String, String), Reply>) -> WebHost {
    let (root_pem, config) = tls();
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(Mutex::new(Vec::new()));
    let (c, r) = (connections.clone(), requests.clone());
    let routes = Arc::new(routes);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            c.fetch_add(1, Ordering::SeqCst);
            let (acceptor, routes, r) = (acceptor.clone(), routes.clone(), r.clone());
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    serve(tls, &routes, &r).await;
                }
            });
        }
    });
    WebHost {
        port,
        root_pem,
        connections,
        requests,
    }
}

async fn serve<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut s: S,
    routes: &HashMap<(String, String), Reply>,
    log: &Mutex<Vec<(String, String)>>,
) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let path = head.split(' ').nth(1).unwrap_or_default().to_owned();
    let host = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("host: ")
                .or_else(|| l.strip_prefix("Host: "))
        })
        .unwrap_or_default()
        .rsplit_once(':')
        .map(|(h, _)| h.to_owned())
        .unwrap_or_default();
    log.lock().unwrap().push((host.clone(), path.clone()));
    let reply = routes
        .get(&(host, path))
        .cloned()
        .unwrap_or(Reply::Body(404, b"not found".to_vec()));
    match reply {
        Reply::Body(status, body) => {
            let head = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes()).await;
            let _ = s.write_all(&body).await;
            let _ = s.flush().await;
        }
        Reply::Redirect(to) => {
            let head = format!(
                "HTTP/1.1 302 Found\r\nlocation: {to}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
            let _ = s.write_all(head.as_bytes()).await;
            let _ = s.flush().await;
        }
        Reply::Trickle => {
            let head =
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 1048576\r\n\r\n";
            let _ = s.write_all(head.as_bytes()).await;
            loop {
                if s.write_all(b" ").await.is_err() || s.flush().await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        Reply::Silent => tokio::time::sleep(Duration::from_secs(3600)).await,
    }
}

/// A DID document for `did` claiming `handles` (JSON, as a PLC directory serves it).
pub fn did_doc(did: &str, handles: &[&str]) -> Vec<u8> {
    let aka: Vec<String> = handles.iter().map(|h| format!("at://{h}")).collect();
    serde_json::json!({
        "@context": ["https://www.w3.org/ns/did/v1"],
        "id": did,
        "alsoKnownAs": aka,
        "service": [{
            "id": "#atproto_pds",
            "type": "AtprotoPersonalDataServer",
            "serviceEndpoint": "https://pds.example.test"
        }]
    })
    .to_string()
    .into_bytes()
}

/// Routes: DID documents on 127.0.0.1 (the PLC directory) and well-known answers per handle.
#[derive(Default)]
pub struct Routes(pub HashMap<(String, String), Reply>);

impl Routes {
    pub fn doc(mut self, did: &str, handles: &[&str]) -> Routes {
        self.0.insert(
            ("127.0.0.1".into(), format!("/{did}")),
            Reply::Body(200, did_doc(did, handles)),
        );
        self
    }

    pub fn well_known(self, handle: &str, reply: Reply) -> Routes {
        self.route(handle, "/.well-known/atproto-did", reply)
    }

    pub fn route(mut self, host: &str, path: &str, reply: Reply) -> Routes {
        self.0.insert((host.into(), path.into()), reply);
        self
    }
}

/// The directory configuration for this network: its DNS server, its host's port and test
/// root, its PLC directory, short time-outs, private hosts allowed (everything is on
/// loopback) unless the test says otherwise.
pub fn config(dns: SocketAddr, web: &WebHost) -> PdsConfig {
    let mut c = PdsConfig::new();
    c.dns_servers = vec![dns];
    c.well_known_port = Some(web.port);
    c.allow_private_handle_hosts = true;
    c.plc_url = web.plc_url();
    c.timeout = Duration::from_secs(2);
    c.add_root_certificate_pem(&web.root_pem).unwrap();
    c
}
