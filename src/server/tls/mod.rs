//! HTTPS (`--tls`): the certificate, given or made once and kept; the handshake on each
//! connection; and a plain answer to plain HTTP sent to the TLS port.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tracing::info;

#[cfg(feature = "commands")]
mod kept;

#[cfg(feature = "commands")]
pub use kept::local_names;
#[cfg(feature = "commands")]
use kept::{KeyKind, keep_certificate};

/// Where the certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertSource {
    /// PEM files the user gave (`--cert`, `--key`).
    Files {
        /// The certificate chain, leaf first.
        cert: PathBuf,
        /// Its private key.
        key: PathBuf,
    },
    /// A self-signed certificate kept in this directory, made the first time.
    Kept {
        /// Where it is kept.
        dir: PathBuf,
        /// Also an RSA one beside it (`--tls-rsa`), for clients without ECDSA.
        rsa: bool,
    },
}

#[cfg(feature = "commands")]
impl CertSource {
    /// The certificate file.
    pub fn cert_path(&self) -> PathBuf {
        match self {
            CertSource::Files { cert, .. } => cert.clone(),
            CertSource::Kept { dir, .. } => KeyKind::Ecdsa.paths(dir).0,
        }
    }

    /// The SHA-256 fingerprint of the certificate file's first certificate, if it can be
    /// read (for a daemon's parent, which did not load it).
    pub fn fingerprint(&self) -> Option<String> {
        read_fingerprint(&self.cert_path())
    }
}

fn read_fingerprint(path: &Path) -> Option<String> {
    let leaf = CertificateDer::pem_file_iter(path).ok()?.next()?.ok()?;
    Some(fingerprint(&leaf))
}

/// TLS, ready to accept connections.
#[derive(Clone)]
pub struct Tls {
    acceptor: TlsAcceptor,
    #[cfg_attr(not(unix), allow(dead_code))] // for the Python workers (Unix only)
    keys: Keys,
    /// The certificate file: what a client pins or passes to `curl --cacert`.
    pub cert_path: PathBuf,
    /// SHA-256 of the certificate, as `AB:CD:...` (as `openssl x509 -fingerprint` shows it).
    pub fingerprint: String,
    /// With `--tls-rsa`, the RSA certificate's file and fingerprint: what clients
    /// without ECDSA get.
    pub rsa: Option<(PathBuf, String)>,
    /// Set when the certificate was made (or remade) by this start: why.
    pub made: Option<String>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("cert_path", &self.cert_path)
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

/// A certificate chain and its key as PEM text: what the server loads, and what a
/// Python worker gets from its supervisor (which read or made the files).
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Pem {
    cert: Vec<u8>,
    key: Vec<u8>,
}

/// What HTTPS serves with, as PEM text: the certificate, and the RSA one for clients
/// without ECDSA (`--tls-rsa`).
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Keys {
    main: Pem,
    rsa: Option<Pem>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.write_str("Keys(..)")
    }
}

/// A certificate and its key, loaded.
#[cfg(feature = "commands")]
struct Loaded {
    key: Arc<rustls::sign::CertifiedKey>,
    pem: Pem,
    cert_path: PathBuf,
    fingerprint: String,
}

/// Reads a certificate chain and its key, and checks that they belong together.
#[cfg(feature = "commands")]
fn load(cert_path: &Path, key_path: &Path) -> Result<Loaded, String> {
    let read = |path: &Path, what: &str| {
        std::fs::read(path).map_err(|e| format!("cannot read the {what} {}: {e}", path.display()))
    };
    let pem = Pem {
        cert: read(cert_path, "certificate")?,
        key: read(key_path, "key")?,
    };
    let (key, fingerprint) = certify(
        &pem,
        &cert_path.display().to_string(),
        &key_path.display().to_string(),
    )?;
    Ok(Loaded {
        key,
        pem,
        cert_path: cert_path.to_path_buf(),
        fingerprint,
    })
}

/// The certificate and key in `pem`, checked to belong together, and the certificate's
/// fingerprint; errors name them as `cert_name` and `key_name`.
fn certify(
    pem: &Pem,
    cert_name: &str,
    key_name: &str,
) -> Result<(Arc<rustls::sign::CertifiedKey>, String), String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem.cert)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("cannot read the certificate {cert_name}: {e}"))?;
    let Some(leaf) = chain.first() else {
        return Err(format!("no certificate in {cert_name}"));
    };
    let fingerprint = fingerprint(leaf);
    let key = PrivateKeyDer::from_pem_slice(&pem.key)
        .map_err(|e| format!("cannot read the key {key_name}: {e}"))?;
    let provider = rustls::crypto::ring::default_provider();
    let key = rustls::sign::CertifiedKey::from_der(chain, key, &provider)
        .map_err(|e| format!("cannot use {cert_name} with {key_name}: {e}"))?;
    Ok((Arc::new(key), fingerprint))
}

/// Picks each client's certificate: ECDSA for a client that can check it, else RSA.
#[derive(Debug)]
struct ByClient {
    ecdsa: Arc<rustls::sign::CertifiedKey>,
    rsa: Option<Arc<rustls::sign::CertifiedKey>>,
}

impl rustls::server::ResolvesServerCert for ByClient {
    fn resolve(
        &self,
        hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        use rustls::SignatureScheme as S;
        let ecdsa = hello.signature_schemes().iter().any(|scheme| {
            matches!(
                scheme,
                S::ECDSA_NISTP256_SHA256 | S::ECDSA_NISTP384_SHA384 | S::ECDSA_NISTP521_SHA512
            )
        });
        match &self.rsa {
            Some(rsa) if !ecdsa => Some(rsa.clone()),
            _ => Some(self.ecdsa.clone()),
        }
    }
}

/// The acceptor of every connection: ECDSA, or RSA for clients without ECDSA.
fn acceptor(
    ecdsa: Arc<rustls::sign::CertifiedKey>,
    rsa: Option<Arc<rustls::sign::CertifiedKey>>,
) -> Result<TlsAcceptor, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up TLS: {e}"))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(ByClient { ecdsa, rsa }));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    // The server's order picks the suite (rustls lists the strongest first), not
    // whatever a client happens to list first. Resumption stays as rustls sets it up:
    // TLS 1.2 session IDs from its in-memory cache, TLS 1.3 tickets.
    config.ignore_client_order = true;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

impl Tls {
    #[cfg(feature = "commands")]
    /// Sets up TLS from `source`. A kept certificate names `names` (host names and
    /// addresses), and is remade when one is missing from it.
    ///
    /// # Errors
    /// A file that cannot be read or holds no certificate or key, a key that does not fit
    /// the certificate, or a directory where the certificate cannot be kept; in one line.
    pub fn new(source: &CertSource, names: &[String]) -> Result<Self, String> {
        let (main, rsa, made) = match source {
            CertSource::Files { cert, key } => (load(cert, key)?, None, None),
            CertSource::Kept { dir, rsa } => {
                let mut made = keep_certificate(dir, names, KeyKind::Ecdsa)?;
                let (cert, key) = KeyKind::Ecdsa.paths(dir);
                let main = load(&cert, &key)?;
                let rsa = if *rsa {
                    let made_rsa = keep_certificate(dir, names, KeyKind::Rsa)?;
                    made = made.or(made_rsa.map(|why| format!("{why} (RSA)")));
                    let (cert, key) = KeyKind::Rsa.paths(dir);
                    Some(load(&cert, &key)?)
                } else {
                    None
                };
                (main, rsa, made)
            }
        };
        let keys = Keys {
            main: main.pem,
            rsa: rsa.as_ref().map(|r| r.pem.clone()),
        };
        Ok(Self {
            acceptor: acceptor(main.key, rsa.as_ref().map(|r| r.key.clone()))?,
            keys,
            cert_path: main.cert_path,
            fingerprint: main.fingerprint,
            rsa: rsa.map(|r| (r.cert_path, r.fingerprint)),
            made,
        })
    }

    /// Sets up TLS from the keys another process loaded (a worker's supervisor); the
    /// certificate's file is that process's to name.
    ///
    /// # Errors
    /// Keys that do not parse or fit together, in one line.
    #[cfg_attr(not(unix), allow(dead_code))] // the Python workers' (Unix only)
    pub(crate) fn from_keys(keys: Keys) -> Result<Self, String> {
        let name = "the supervisor's";
        let (main, fingerprint) = certify(&keys.main, name, name)?;
        let rsa = match &keys.rsa {
            Some(pem) => Some(certify(pem, name, name)?),
            None => None,
        };
        Ok(Self {
            acceptor: acceptor(main, rsa.as_ref().map(|(key, _)| key.clone()))?,
            keys,
            cert_path: PathBuf::new(),
            fingerprint,
            rsa: rsa.map(|(_, fingerprint)| (PathBuf::new(), fingerprint)),
            made: None,
        })
    }

    /// The certificates and keys as PEM text, for a Python worker.
    #[cfg_attr(not(unix), allow(dead_code))] // for the Python workers (Unix only)
    pub(crate) fn keys(&self) -> &Keys {
        &self.keys
    }

    /// Takes a new connection through the handshake within `within`. Plain HTTP gets a
    /// 400 that says to use https; that and a failed handshake are logged and give `None`.
    pub(crate) async fn accept(
        &self,
        tcp: TcpStream,
        peer: SocketAddr,
        within: Duration,
    ) -> Option<TlsStream<TcpStream>> {
        let handshake = async {
            // A TLS connection starts with a handshake record; anything else is refused
            // in words the sender can read.
            let mut first = [0u8; 1];
            let n = tcp.peek(&mut first).await?;
            if n == 1 && first[0] != HANDSHAKE_RECORD {
                plain_http(tcp).await;
                info!(target: "labserv::http", "{peer} sent plain HTTP to the TLS port: 400");
                return Ok(None);
            }
            self.acceptor.accept(tcp).await.map(Some)
        };
        match tokio::time::timeout(within, handshake).await {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => {
                info!(target: "labserv::http", "{peer} TLS handshake failed: {e}");
                None
            }
            Err(_) => {
                info!(target: "labserv::http", "{peer} TLS handshake not done after {within:?}");
                None
            }
        }
    }
}

/// The first byte of a TLS record that carries a handshake.
const HANDSHAKE_RECORD: u8 = 0x16;

/// What plain HTTP sent to the TLS port gets.
const PLAIN_HTTP: &[u8] =
    b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n\
Content-Length: 48\r\nConnection: close\r\n\r\nThis port speaks HTTPS: use https:// in the URL\n";

/// Answers plain HTTP on the TLS port, then closes. What the client sent is read first
/// (for up to a second): closing on unread bytes would reset the connection, and the
/// client could lose the answer.
async fn plain_http(mut tcp: TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = tcp.write_all(PLAIN_HTTP).await;
    let _ = tcp.shutdown().await;
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while matches!(tcp.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}

/// Writes `answer` and a close to a TLS connection without waiting: what fits the socket's
/// buffer goes out (a few hundred bytes always do), then the sending side is shut.
pub(crate) fn refuse(tls: &mut TlsStream<TcpStream>, answer: &[u8]) {
    let (tcp, conn) = tls.get_mut();
    let _ = conn.writer().write_all(answer);
    conn.send_close_notify();
    let mut out = TryWriter(tcp);
    while conn.wants_write() {
        if !matches!(conn.write_tls(&mut out), Ok(n) if n > 0) {
            break;
        }
    }
    let _ = socket2::SockRef::from(&*tcp).shutdown(std::net::Shutdown::Write);
}

/// Writes to a socket without waiting.
struct TryWriter<'a>(&'a TcpStream);

impl Write for TryWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn fingerprint(cert: &CertificateDer<'_>) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, cert.as_ref());
    digest
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}
