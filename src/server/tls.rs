//! HTTPS (`--tls`): the certificate, given or made once and kept; the handshake on each
//! connection; and a plain answer to plain HTTP sent to the TLS port.

use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};
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
    Kept(PathBuf),
}

impl CertSource {
    /// The certificate file.
    pub fn cert_path(&self) -> PathBuf {
        match self {
            CertSource::Files { cert, .. } => cert.clone(),
            CertSource::Kept(dir) => dir.join("cert.pem"),
        }
    }

    /// The SHA-256 fingerprint of the certificate file's first certificate, if it can be
    /// read (for a daemon's parent, which did not load it).
    pub fn fingerprint(&self) -> Option<String> {
        let leaf = CertificateDer::pem_file_iter(self.cert_path())
            .ok()?
            .next()?
            .ok()?;
        Some(fingerprint(&leaf))
    }
}

/// TLS, ready to accept connections.
#[derive(Clone)]
pub struct Tls {
    acceptor: TlsAcceptor,
    /// The certificate file: what a client pins or passes to `curl --cacert`.
    pub cert_path: PathBuf,
    /// SHA-256 of the certificate, as `AB:CD:...` (as `openssl x509 -fingerprint` shows it).
    pub fingerprint: String,
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

/// A kept certificate lives this long; it is remade (with the same key) when less than
/// [`RENEW_BEFORE_DAYS`] days are left. Apple's clients refuse server certificates valid
/// for more than 825 days.
const VALID_DAYS: i64 = 800;
const RENEW_BEFORE_DAYS: i64 = 30;

impl Tls {
    /// Sets up TLS from `source`. A kept certificate names `names` (host names and
    /// addresses), and is remade when one is missing from it.
    ///
    /// # Errors
    /// A file that cannot be read or holds no certificate or key, a key that does not fit
    /// the certificate, or a directory where the certificate cannot be kept; in one line.
    pub fn new(source: &CertSource, names: &[String]) -> Result<Self, String> {
        let (cert_path, key_path, made) = match source {
            CertSource::Files { cert, key } => (cert.clone(), key.clone(), None),
            CertSource::Kept(dir) => {
                let made = keep_certificate(dir, names)?;
                (source.cert_path(), dir.join("key.pem"), made)
            }
        };
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
            .and_then(Iterator::collect)
            .map_err(|e| format!("cannot read the certificate {}: {e}", cert_path.display()))?;
        let Some(leaf) = chain.first() else {
            return Err(format!("no certificate in {}", cert_path.display()));
        };
        let fingerprint = fingerprint(leaf);
        let key = PrivateKeyDer::from_pem_file(&key_path)
            .map_err(|e| format!("cannot read the key {}: {e}", key_path.display()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .and_then(|b| b.with_no_client_auth().with_single_cert(chain, key))
            .map_err(|e| {
                format!(
                    "cannot use {} with {}: {e}",
                    cert_path.display(),
                    key_path.display()
                )
            })?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        // The server's order picks the suite (rustls lists the strongest first), not
        // whatever a client happens to list first. Resumption stays as rustls sets it up:
        // TLS 1.2 session IDs from its in-memory cache, TLS 1.3 tickets.
        config.ignore_client_order = true;
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            cert_path,
            fingerprint,
            made,
        })
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

/// The names a kept certificate is made for: `localhost`, this host's name, and every
/// address of every interface (loopback included), so that one certificate fits whatever
/// address the server is later bound to.
pub fn local_names() -> Vec<String> {
    let mut names = vec!["localhost".to_string()];
    if let Some(host) = crate::net::host_name().filter(|h| h != "localhost") {
        names.push(host);
    }
    let mut ips: Vec<IpAddr> = if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .map(|i| i.ip())
        .collect();
    ips.extend([
        IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
    ]);
    ips.sort();
    ips.dedup();
    names.extend(ips.iter().map(IpAddr::to_string));
    names
}

/// Makes sure `dir` holds a certificate for every one of `names` that has time left,
/// making or remaking it (always with the key already there, if one is). Returns why it
/// was made, or `None` when the kept one was fine.
fn keep_certificate(dir: &Path, names: &[String]) -> Result<Option<String>, String> {
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    let names_path = dir.join("names");
    let kept_names: Vec<String> = std::fs::read_to_string(&names_path)
        .map(|t| t.lines().map(str::to_string).collect())
        .unwrap_or_default();
    let expires: Option<i64> = kept_names
        .iter()
        .find_map(|l| l.strip_prefix("expires ")?.parse().ok());
    let now = unix_now();
    let kept_key = read_private_key(&key_path)?;
    let why = if !cert_path.is_file() || kept_key.is_none() {
        "made a certificate"
    } else if names.iter().any(|n| !kept_names.contains(n)) {
        "remade the certificate for new addresses"
    } else if expires.is_none_or(|t| t - now < RENEW_BEFORE_DAYS * 86_400) {
        "renewed the certificate"
    } else {
        return Ok(None);
    };
    let fail = |what: &str, e: &dyn std::fmt::Display| format!("cannot {what}: {e}");
    crate::private::create_dir_all(dir).map_err(|e| fail(&format!("use {}", dir.display()), &e))?;
    // The old names stay: a device that reached the server at one address still can.
    let mut all: Vec<String> = kept_names
        .iter()
        .filter(|l| !l.starts_with("expires "))
        .cloned()
        .collect();
    for name in names {
        if !all.contains(name) {
            all.push(name.clone());
        }
    }
    let key = match kept_key {
        Some(pem) => rcgen::KeyPair::from_pem(&pem)
            .map_err(|e| fail(&format!("use the key {}", key_path.display()), &e))?,
        None => rcgen::KeyPair::generate().map_err(|e| fail("make a key", &e))?,
    };
    let mut params =
        rcgen::CertificateParams::new(all.clone()).map_err(|e| fail("name the certificate", &e))?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "labserv");
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "labserv (self-signed)");
    params.not_before = time_at(now - 86_400);
    params.not_after = time_at(now + VALID_DAYS * 86_400);
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    let cert = params
        .self_signed(&key)
        .map_err(|e| fail("sign the certificate", &e))?;
    let write = |path: &Path, text: &str, mode: u32| -> Result<(), String> {
        let tmp = path.with_extension("tmp");
        // A new file, made here: never one planted in its place, nor through a link.
        match std::fs::remove_file(&tmp) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(fail(&format!("remove {}", tmp.display()), &e));
            }
            _ => {}
        }
        let mut options = crate::private::options();
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
        #[cfg(not(unix))]
        let _ = mode;
        options
            .write(true)
            .create_new(true)
            .open(&tmp)
            .and_then(|mut f| f.write_all(text.as_bytes()).and_then(|()| f.sync_all()))
            .map_err(|e| fail(&format!("write {}", tmp.display()), &e))?;
        std::fs::rename(&tmp, path).map_err(|e| fail(&format!("write {}", path.display()), &e))
    };
    write(&key_path, &key.serialize_pem(), 0o600)?;
    write(&cert_path, &cert.pem(), 0o644)?;
    all.push(format!("expires {}", now + VALID_DAYS * 86_400));
    write(&names_path, &(all.join("\n") + "\n"), 0o644)?;
    Ok(Some(why.to_string()))
}

/// The kept key's text, if it is there; an error when others may read it (it would
/// have to be trusted as secret, and it is not) or it cannot be read.
fn read_private_key(path: &Path) -> Result<Option<String>, String> {
    let mut file = match crate::private::options().read(true).open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read the key {}: {e}", path.display())),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let mode = file.metadata().map_err(|e| e.to_string())?.mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(format!(
                "{} can be read by others (mode {mode:o}); run chmod 600 on it, or remove it to \
                 have a new key made",
                path.display()
            ));
        }
    }
    let mut text = String::new();
    std::io::Read::read_to_string(&mut file, &mut text)
        .map_err(|e| format!("cannot read the key {}: {e}", path.display()))?;
    Ok(Some(text))
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn time_at(unix: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(unix).unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}
