//! Directory listings: HTML for browsers, JSON for scripts, sorted by name.

use std::fs;
use std::io;
use std::path::Path;
use std::time::SystemTime;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Serialize;

/// Characters escaped in a link to a listed file: everything but RFC 3986's unreserved set.
const LINK: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// One entry of a listed directory.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Entry {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: Kind,
    pub size: u64,
    #[serde(serialize_with = "rfc3339")]
    pub modified: Option<SystemTime>,
}

/// What an entry is, as a client would use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Kind {
    File,
    Dir,
    /// A symlink whose target is missing.
    Broken,
    /// A device, socket or pipe: listed, never served.
    Other,
}

fn rfc3339<S: serde::Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&humantime::format_rfc3339_seconds(*t).to_string()),
        None => s.serialize_none(),
    }
}

/// Reads `dir` and returns its entries sorted by name (case-insensitive, then exact).
/// Symlinks are described by what they point to. Blocking: call off the runtime.
///
/// # Errors
/// The directory cannot be read.
pub(crate) fn read(dir: &Path) -> io::Result<Vec<Entry>> {
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let (kind, size, modified) = match fs::metadata(entry.path()) {
            Ok(m) if m.is_dir() => (Kind::Dir, 0, m.modified().ok()),
            Ok(m) if m.is_file() => (Kind::File, m.len(), m.modified().ok()),
            Ok(m) => (Kind::Other, 0, m.modified().ok()),
            Err(_) => (Kind::Broken, 0, None),
        };
        entries.push(Entry {
            name,
            kind,
            size,
            modified,
        });
    }
    entries.sort_by(|a, b| {
        a.name
            .to_lowercase()
            .cmp(&b.name.to_lowercase())
            .then_with(|| a.name.cmp(&b.name))
    });
    Ok(entries)
}

/// The JSON listing: `{"path": "/dir/", "entries": [{"name", "type", "size", "modified"}]}`.
pub(crate) fn json(url_path: &str, entries: &[Entry]) -> String {
    #[derive(Serialize)]
    struct Listing<'a> {
        path: &'a str,
        entries: &'a [Entry],
    }
    serde_json::to_string_pretty(&Listing {
        path: url_path,
        entries,
    })
    .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// The HTML listing, with a parent link except at the root.
pub(crate) fn html(url_path: &str, entries: &[Entry]) -> String {
    use html_escape::{encode_double_quoted_attribute as attr, encode_text as text};
    use std::fmt::Write as _;

    let title = format!("Index of {}", text(url_path));
    let mut out = String::with_capacity(512 + entries.len() * 160);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width\">\n<title>{title}</title>\n\
         <style>body{{font-family:sans-serif}}td,th{{padding:0 1em 0 0;text-align:left}}\
         td.n{{text-align:right;font-family:monospace}}</style>\n</head>\n<body>\n\
         <h1>{title}</h1>\n<table>\n<tr><th>Name</th><th>Size</th><th>Modified (UTC)</th></tr>\n"
    );
    if url_path != "/" {
        out.push_str("<tr><td><a href=\"../\">../</a></td><td></td><td></td></tr>\n");
    }
    for e in entries {
        let slash = if e.kind == Kind::Dir { "/" } else { "" };
        let href = format!("{}{slash}", utf8_percent_encode(&e.name, LINK));
        let size = if e.kind == Kind::File {
            e.size.to_string()
        } else {
            String::new()
        };
        let modified = e
            .modified
            .map(|t| humantime::format_rfc3339_seconds(t).to_string())
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "<tr><td><a href=\"{}\">{}{slash}</a></td><td class=\"n\">{size}</td><td>{modified}</td></tr>",
            attr(&href),
            text(&e.name),
        );
    }
    out.push_str("</table>\n</body>\n</html>\n");
    out
}
