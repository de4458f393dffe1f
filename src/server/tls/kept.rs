//! The self-signed certificates `--tls` makes once and keeps: ECDSA P-256 always, and
//! RSA-2048 beside it with `--tls-rsa`, for clients that cannot check ECDSA.

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// A kept certificate lives this long; it is remade (with the same key) when less than
/// [`RENEW_BEFORE_DAYS`] days are left. Apple's clients refuse server certificates valid
/// for more than 825 days.
const VALID_DAYS: i64 = 800;
const RENEW_BEFORE_DAYS: i64 = 30;

/// The key of a kept certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum KeyKind {
    /// ECDSA P-256: small and fast, what every current client takes.
    Ecdsa,
    /// RSA-2048: for TLS stacks built without ECDSA (some mbedTLS builds, UEFI firmware).
    Rsa,
}

impl KeyKind {
    /// The certificate's and the key's files in `dir`.
    pub(super) fn paths(self, dir: &Path) -> (PathBuf, PathBuf) {
        let prefix = self.prefix();
        (
            dir.join(format!("{prefix}cert.pem")),
            dir.join(format!("{prefix}key.pem")),
        )
    }

    fn prefix(self) -> &'static str {
        match self {
            KeyKind::Ecdsa => "",
            KeyKind::Rsa => "rsa-",
        }
    }

    fn make(self) -> Result<rcgen::KeyPair, String> {
        let fail = |e: &dyn std::fmt::Display| format!("cannot make a key: {e}");
        match self {
            KeyKind::Ecdsa => rcgen::KeyPair::generate().map_err(|e| fail(&e)),
            KeyKind::Rsa => {
                use rsa::pkcs8::EncodePrivateKey;
                let key =
                    rsa::PrivateKey::new(&mut getrandom::SysRng, 2048).map_err(|e| fail(&e))?;
                let der = key.to_pkcs8_der().map_err(|e| fail(&e))?;
                let der = rustls::pki_types::PrivatePkcs8KeyDer::from(der.as_bytes());
                rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&der, &rcgen::PKCS_RSA_SHA256)
                    .map_err(|e| fail(&e))
            }
        }
    }
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
pub(super) fn keep_certificate(
    dir: &Path,
    names: &[String],
    kind: KeyKind,
) -> Result<Option<String>, String> {
    let (cert_path, key_path) = kind.paths(dir);
    let names_path = dir.join(format!("{}names", kind.prefix()));
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
        None => kind.make()?,
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
