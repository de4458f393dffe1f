//! Directory listings: HTML for browsers (made for a phone in one hand as much as for a
//! desktop: no external assets, no JavaScript needed to download), JSON for scripts.

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
    match t.and_then(crate::human::utc_stamp) {
        Some(stamp) => s.serialize_str(std::str::from_utf8(&stamp).unwrap_or_default()),
        None => s.serialize_none(),
    }
}

/// How a listing is ordered: by what, and which way. Directories always come first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Sort {
    pub by: By,
    pub descending: bool,
}

/// What a listing is ordered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum By {
    #[default]
    Name,
    Size,
    Time,
}

impl Sort {
    /// The order a query asks for (`?sort=size&order=desc`); the default is by name.
    pub(crate) fn from_query(query: Option<&str>) -> Self {
        let mut sort = Sort::default();
        for pair in query.unwrap_or("").split('&') {
            match pair {
                "sort=name" => sort.by = By::Name,
                "sort=size" => sort.by = By::Size,
                "sort=time" => sort.by = By::Time,
                "order=desc" => sort.descending = true,
                "order=asc" => sort.descending = false,
                _ => {}
            }
        }
        sort
    }

    /// Orders `entries`: directories first (for a page; a script's JSON keeps them among
    /// the files), then by the key, names (case-insensitive, then exact) breaking ties.
    pub(crate) fn apply(self, entries: &mut Vec<Entry>, dirs_first: bool) {
        // Each name is folded once, not at every comparison (and only when it has
        // something to fold).
        let mut keyed: Vec<(Option<String>, Entry)> = std::mem::take(entries)
            .into_iter()
            .map(|e| {
                let plain = e
                    .name
                    .bytes()
                    .all(|b| b.is_ascii() && !b.is_ascii_uppercase());
                ((!plain).then(|| e.name.to_lowercase()), e)
            })
            .collect();
        if self.by == By::Name && !self.descending {
            // The usual order, compared as one tuple (a listing's sort is a real share of
            // its cost).
            keyed.sort_unstable_by(|(ka, a), (kb, b)| {
                let fa = ka.as_deref().unwrap_or(&a.name);
                let fb = kb.as_deref().unwrap_or(&b.name);
                let da = dirs_first && a.kind == Kind::Dir;
                let db = dirs_first && b.kind == Kind::Dir;
                (!da, fa, &a.name).cmp(&(!db, fb, &b.name))
            });
            entries.extend(keyed.into_iter().map(|(_, e)| e));
            return;
        }
        keyed.sort_unstable_by(|(ka, a), (kb, b)| {
            let fa = ka.as_deref().unwrap_or(&a.name);
            let fb = kb.as_deref().unwrap_or(&b.name);
            let key = match self.by {
                By::Name => std::cmp::Ordering::Equal,
                By::Size => a.size.cmp(&b.size),
                By::Time => a.modified.cmp(&b.modified),
            };
            let key = if self.descending { key.reverse() } else { key };
            let name = fa.cmp(fb).then_with(|| a.name.cmp(&b.name));
            let name = if self.descending && self.by == By::Name {
                name.reverse()
            } else {
                name
            };
            let dirs = if dirs_first {
                (b.kind == Kind::Dir).cmp(&(a.kind == Kind::Dir))
            } else {
                std::cmp::Ordering::Equal
            };
            dirs.then(key).then(name)
        });
        entries.extend(keyed.into_iter().map(|(_, e)| e));
    }

    /// The query a column heading links to: this column, the other way round when it is
    /// the one sorted by.
    fn link(self, by: By) -> &'static str {
        match (by, self.by == by && !self.descending) {
            (By::Name, false) => "?sort=name",
            (By::Name, true) => "?sort=name&amp;order=desc",
            (By::Size, false) => "?sort=size",
            (By::Size, true) => "?sort=size&amp;order=desc",
            (By::Time, false) => "?sort=time",
            (By::Time, true) => "?sort=time&amp;order=desc",
        }
    }

    /// The arrow beside the column sorted by.
    fn arrow(self, by: By) -> &'static str {
        match (self.by == by, self.descending) {
            (false, _) => "",
            (true, false) => " ▲",
            (true, true) => " ▼",
        }
    }
}

/// Reads `dir` and returns its entries, in no order (see [`Sort::apply`]).
/// Symlinks are described by what they point to. Blocking: call off the runtime.
///
/// # Errors
/// The directory cannot be read.
pub(crate) fn read(dir: &Path) -> io::Result<Vec<Entry>> {
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry
            .file_name()
            .into_string()
            .unwrap_or_else(|raw| raw.to_string_lossy().into_owned());
        // Only a symlink needs its target looked up by path; anything else is described
        // relative to the directory, without walking the path again.
        let symlink = entry.file_type().is_ok_and(|t| t.is_symlink());
        let meta = if symlink {
            fs::metadata(entry.path())
        } else {
            entry.metadata()
        };
        let (kind, size, modified) = match meta {
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
    Ok(entries)
}

/// The JSON listing: `{"path": "/dir/", "entries": [{"name", "type", "size", "modified"}]}`.
pub(crate) fn json(url_path: &str, entries: &[Entry]) -> String {
    #[derive(Serialize)]
    struct Listing<'a> {
        path: &'a str,
        entries: &'a [Entry],
    }
    serde_json::to_string(&Listing {
        path: url_path,
        entries,
    })
    .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// The style of the HTML listing: rows at least 44 px tall, no column that wraps, no
/// sideways scrolling at a phone's 390 px, dark when the system is.
const STYLE: &str = "\
:root{color-scheme:light dark;--fg:#1b1b1b;--bg:#fff;--dim:#6a6a6a;--line:#e4e4e4;--link:#0b57d0;--hi:#f2f5fb}\
@media (prefers-color-scheme:dark){:root{--fg:#e6e6e6;--bg:#161616;--dim:#9a9a9a;--line:#2c2c2c;--link:#8ab4f8;--hi:#1f2530}}\
*{box-sizing:border-box}\
body{margin:0 auto;max-width:64rem;padding:0 .75rem 2rem;font:16px/1.4 system-ui,sans-serif;color:var(--fg);background:var(--bg)}\
nav{display:flex;flex-wrap:wrap;gap:.25rem;align-items:center;padding:.75rem 0;font-size:1.15rem;overflow-wrap:anywhere}\
nav a{min-height:44px;display:inline-flex;align-items:center;padding:0 .25rem}\
a{color:var(--link);text-decoration:none}\
ul{list-style:none;margin:0;padding:0}\
li{display:flex;align-items:stretch;border-top:1px solid var(--line)}\
li>:first-child,.head{flex:1;display:flex;align-items:center;gap:.75rem;min-height:44px;min-width:0;padding:0 .25rem}\
li>a:hover{background:var(--hi)}\
li>*>:first-child,.head .n{flex:1;min-width:0;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}\
li>*>*+*{white-space:nowrap;color:var(--dim);font-variant-numeric:tabular-nums;text-align:right}\
li>*>:nth-child(2),.head .s{width:5.5rem}li>*>:nth-child(3),.head .t{width:6rem}\
li>:nth-child(2),.head .pad{display:flex;align-items:center;justify-content:center;width:44px;min-height:44px;color:var(--dim);font-size:.8rem}\
.head{font-size:.9rem;padding-right:calc(44px + .25rem)}.head .pad{display:none}\
.head a{min-height:44px;display:flex;align-items:center}.head .s,.head .t{justify-content:flex-end}\
li>span>:first-child{color:var(--dim)}\
form{margin-top:1.5rem;padding:1rem;border:2px dashed var(--line);border-radius:.5rem}\
form.over{border-color:var(--link)}\
input,button{font:inherit;min-height:44px}\
@media (max-width:30rem){li>:first-child,.head{gap:.5rem}li>*>*+*,.head .s,.head .t{width:4.6rem;font-size:.85rem}}";

/// Shows times short and in the reader's own zone (the time today, the day this year,
/// else the month; all of it on hover), and sends files dropped on the page through the
/// upload form. Without it the page shows UTC dates.
const SCRIPT: &str = "\
const now=new Date();for(const t of document.querySelectorAll('time')){const d=new Date(t.dateTime);\
const o=d.toDateString()==now.toDateString()?{hour:'2-digit',minute:'2-digit',hour12:false}:\
d.getFullYear()==now.getFullYear()?{month:'short',day:'numeric'}:{year:'numeric',month:'short'};\
t.textContent=d.toLocaleString([],o);t.title=d.toLocaleString()}\
const f=document.getElementById('up');if(f){const i=f.querySelector('input');\
addEventListener('dragover',e=>{e.preventDefault();f.classList.add('over')});\
addEventListener('dragleave',()=>f.classList.remove('over'));\
addEventListener('drop',e=>{e.preventDefault();f.classList.remove('over');i.files=e.dataTransfer.files;f.requestSubmit()})}";

/// The HTML listing of `url_path`: breadcrumbs, sortable columns, directories first, a
/// parent link except at the root, and the upload form when uploads are on.
pub(crate) fn html(url_path: &str, entries: &[Entry], sort: Sort, upload: bool) -> String {
    use html_escape::{encode_double_quoted_attribute as attr, encode_text as text};
    use std::fmt::Write as _;

    let mut out = String::with_capacity(4096 + entries.len() * 200);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<nav>",
        text(url_path)
    );
    // Breadcrumbs: every directory on the way is a link.
    out.push_str("<a href=\"/\">/</a>");
    let mut href = String::from("/");
    let segments: Vec<&str> = url_path.split('/').filter(|s| !s.is_empty()).collect();
    for (i, segment) in segments.iter().enumerate() {
        href.push_str(segment);
        href.push('/');
        let name = percent_encoding::percent_decode_str(segment).decode_utf8_lossy();
        if i + 1 == segments.len() {
            let _ = write!(out, "<span>{}</span>/", text(&name));
        } else {
            let _ = write!(out, "<a href=\"{}\">{}</a>/", attr(&href), text(&name));
        }
    }
    let _ = write!(
        out,
        "</nav>\n<div class=\"head\"><a class=\"n\" href=\"{}\">Name{}</a>\
         <a class=\"s\" href=\"{}\">Size{}</a><a class=\"t\" href=\"{}\">Modified{}</a>\
         <span class=\"pad\"></span></div>\n<ul>\n",
        sort.link(By::Name),
        sort.arrow(By::Name),
        sort.link(By::Size),
        sort.arrow(By::Size),
        sort.link(By::Time),
        sort.arrow(By::Time),
    );
    if url_path != "/" {
        out.push_str("<li><a href=\"../\"><span>../</span></a></li>\n");
    }
    let mut link = String::with_capacity(256);
    let mut stamp = String::with_capacity(32);
    for e in entries {
        let name = text(&e.name);
        link.clear();
        if e.name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
        {
            link.push_str(&e.name);
        } else {
            let _ = write!(link, "{}", utf8_percent_encode(&e.name, LINK));
        }
        stamp.clear();
        if let Some(t) = e.modified.and_then(crate::human::utc_stamp) {
            stamp.push_str(std::str::from_utf8(&t).unwrap_or_default());
        }
        let time = |out: &mut String| {
            if stamp.len() >= 10 {
                // `2026-11-22T18:31:54Z`, shown as `2026-11-22` until the script turns
                // it into the reader's own time.
                out.push_str("<time datetime=\"");
                out.push_str(&stamp);
                out.push_str("\">");
                out.push_str(&stamp[..10]);
                out.push_str("</time>");
            } else {
                out.push_str("<span></span>");
            }
        };
        match e.kind {
            Kind::Dir => {
                let _ = write!(
                    out,
                    "<li><a href=\"{link}/\"><span>{name}/</span><span></span>"
                );
                time(&mut out);
                out.push_str("</a><span></span></li>\n");
            }
            Kind::File => {
                out.push_str("<li><a href=\"");
                out.push_str(&link);
                out.push_str("\"><span>");
                out.push_str(&name);
                if e.size < 1024 {
                    // Already exact: `512 bytes`.
                    out.push_str("</span><span>");
                } else {
                    let _ = write!(out, "</span><span title=\"{} bytes\">", e.size);
                }
                crate::human::write_bytes(&mut out, e.size);
                out.push_str("</span>");
                time(&mut out);
                out.push_str("</a><a href=\"");
                out.push_str(&link);
                out.push_str("?sha256\">SHA</a></li>\n");
            }
            Kind::Broken | Kind::Other => {
                // Listed so that nobody wonders where it went, but not a link: it cannot
                // be downloaded.
                let what = if e.kind == Kind::Broken {
                    "broken link"
                } else {
                    "special"
                };
                let _ = write!(out, "<li><span><span>{name}</span><span>{what}</span>");
                time(&mut out);
                out.push_str("</span><span></span></li>\n");
            }
        }
    }
    out.push_str("</ul>\n");
    if upload {
        out.push_str(
            "<form id=\"up\" method=\"post\" enctype=\"multipart/form-data\">\
             <label>Upload files here (or drop them on the page): \
             <input type=\"file\" name=\"file\" multiple required></label> \
             <button>Upload</button></form>\n",
        );
    }
    let _ = write!(out, "<script>{SCRIPT}</script>\n</body>\n</html>\n");
    out
}
