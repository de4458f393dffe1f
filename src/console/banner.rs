//! The start-up banner a foreground command prints: what is served, where a device can
//! reach it (and a QR code of it with `--qr`), the certificate to trust, and how to stop.

use std::net::IpAddr;

use crate::config::HttpService;
use crate::net;
use crate::runner::{Prepared, Serving};

/// The banner of a prepared server.
pub(crate) fn banner(p: &Prepared) -> String {
    let mut out = String::new();
    let bound = p.bound;
    let reachable = net::reachable(bound);
    let (service, tls) = match &p.serving {
        Serving::Tftp { config: c, .. } => {
            let mode = match (c.upload, c.overwrite) {
                (false, _) => "read-only",
                (true, false) => "uploads on, existing files kept",
                (true, true) => "uploads on, existing files may be replaced",
            };
            out += &format!("Serving {} over TFTP ({mode})\n", c.root.display());
            for r in &reachable {
                let url = match r.ip {
                    IpAddr::V4(v4) => format!("tftp://{v4}:{}/", bound.port()),
                    IpAddr::V6(v6) => format!("tftp://[{v6}]:{}/", bound.port()),
                };
                out += &format!("  {url}\n");
            }
            if let Some(faults) = &c.faults {
                out += &format!("Faults on purpose: {}\n", faults.describe());
            }
            out += "Press Ctrl-C to stop.\n";
            return out;
        }
        Serving::Http { service, tls, .. } => (service, tls.as_ref()),
    };
    let url = |ip| {
        let url = net::http_url(ip, bound.port());
        if tls.is_some() {
            url.replacen("http://", "https://", 1)
        } else {
            url
        }
    };
    match service {
        HttpService::Files(c) => {
            let mode = match c.uploads {
                None => "",
                Some(u) if u.overwrite => " (uploads on, existing files may be replaced)",
                Some(_) => " (uploads on, existing files kept)",
            };
            out += &format!("Serving {}{mode}\n", c.root.display());
            for r in &reachable {
                let url = url(r.ip);
                if r.interface.is_empty() {
                    out += &format!("  {url}\n");
                } else {
                    out += &format!("  {url:<40} ({})\n", r.interface);
                }
            }
        }
        HttpService::App { name, .. } | HttpService::Python { name, .. } => {
            out += &format!("Serving {name}\n");
            for r in &reachable {
                out += &format!("  {}\n", url(r.ip));
            }
        }
    }
    if let Some(tls) = tls {
        out += &format!("Certificate: {}\n", tls.cert_path.display());
        out += &format!("  SHA-256 {}\n", tls.fingerprint);
        if let Some((path, fingerprint)) = &tls.rsa {
            out += &format!(
                "Certificate for clients without ECDSA: {}\n",
                path.display()
            );
            out += &format!("  SHA-256 {fingerprint}\n");
        }
        if let Some(made) = &tls.made {
            out += &format!("  ({made}: give clients this file to trust)\n");
        }
    }
    if p.qr
        && let Some(first) = reachable.first()
    {
        out += &qr_code(&url(first.ip));
    }
    let options = service.options();
    if let HttpService::Files(_) = service
        && let Some(access) = options.access.describe()
    {
        out += &format!("Access: {access}\n");
    }
    if options.faults.any() {
        out += &format!("Faults on purpose: {}\n", options.faults.describe());
    }
    out += "Press Ctrl-C to stop.\n";
    out
}

/// `text` as a QR code drawn with half blocks, two modules a character: the light modules
/// and the quiet zone are the blocks, so that on a dark terminal (as most are) the screen
/// shows a code the right way round.
fn qr_code(text: &str) -> String {
    use qrcode::render::unicode::Dense1x2;
    match qrcode::QrCode::new(text.as_bytes()) {
        Ok(code) => {
            let mut drawn = code
                .render::<Dense1x2>()
                .dark_color(Dense1x2::Light)
                .light_color(Dense1x2::Dark)
                .quiet_zone(true)
                .build();
            drawn.push('\n');
            drawn
        }
        Err(_) => String::new(),
    }
}
