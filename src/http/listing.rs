//! Directory listings: HTML for browsers (made for a phone in one hand as much as for a
//! desktop: no external assets, no JavaScript needed to download), JSON for scripts.

use std::borrow::Cow;
use std::ffi::OsString;
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

/// A directory as read: its entries in name order (see [`Sort::order`]), and those whose
/// description can change with no event on the directory's own inotify watch, to be looked
/// at again whenever the entries are listed from memory (see [`refresh`]).
#[derive(Debug)]
pub(crate) struct Listed {
    pub entries: Vec<Entry>,
    /// By position, with the name as the directory spells it: subdirectories (their
    /// times change with what is in them), symlinks (their targets can be anywhere), and
    /// names whose type the directory did not say.
    pub volatile: Vec<(usize, OsString)>,
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

    /// `entries`, which are in name order (as [`read`] leaves them), in this order:
    /// directories first (for a page; a script's JSON keeps them among the files), then by
    /// the key, names breaking ties. No name is compared here: a listing made from kept
    /// entries sorts only when asked for sizes or times, and then by numbers.
    pub(crate) fn order(self, entries: &[Entry], dirs_first: bool) -> Vec<&Entry> {
        let mut ordered: Vec<&Entry> = if self.by == By::Name && self.descending {
            entries.iter().rev().collect()
        } else {
            entries.iter().collect()
        };
        // Stable sorts: entries of the same size or time stay in name order.
        match (self.by, self.descending) {
            (By::Name, _) => {}
            (By::Size, false) => ordered.sort_by_key(|e| e.size),
            (By::Size, true) => ordered.sort_by_key(|e| std::cmp::Reverse(e.size)),
            (By::Time, false) => ordered.sort_by_key(|e| e.modified),
            (By::Time, true) => ordered.sort_by_key(|e| std::cmp::Reverse(e.modified)),
        }
        if dirs_first {
            let (mut dirs, files): (Vec<&Entry>, Vec<&Entry>) =
                ordered.into_iter().partition(|e| e.kind == Kind::Dir);
            dirs.extend(files);
            ordered = dirs;
        }
        ordered
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

impl Listed {
    /// The listing of `entries` (with `volatile` pointing into them), put in name order:
    /// case-insensitive, then exact. Each name is folded once, not at every comparison
    /// (and only when it has something to fold); small keys are sorted, and the entries
    /// then moved once into their places.
    fn in_name_order(entries: Vec<Entry>, mut volatile: Vec<(usize, OsString)>) -> Self {
        let folded: Vec<Option<String>> = entries
            .iter()
            .map(|e| {
                let plain = e
                    .name
                    .bytes()
                    .all(|b| b.is_ascii() && !b.is_ascii_uppercase());
                (!plain).then(|| e.name.to_lowercase())
            })
            .collect();
        let mut keyed: Vec<(&str, &str, usize)> = entries
            .iter()
            .zip(&folded)
            .enumerate()
            .map(|(i, (e, f))| (f.as_deref().unwrap_or(&e.name), e.name.as_str(), i))
            .collect();
        keyed.sort_unstable();
        let order: Vec<usize> = keyed.into_iter().map(|(.., old)| old).collect();
        // Where each entry goes, for `volatile`.
        let mut to = vec![0; order.len()];
        for (new, &old) in order.iter().enumerate() {
            to[old] = new;
        }
        let mut slots: Vec<Option<Entry>> = entries.into_iter().map(Some).collect();
        let entries = order
            .into_iter()
            .filter_map(|old| slots[old].take())
            .collect();
        for (at, _) in &mut volatile {
            *at = to[*at];
        }
        Self { entries, volatile }
    }
}

/// What a listing shows of one entry: its kind, size and modification time.
type Description = (Kind, u64, Option<SystemTime>);

/// Reads `dir`: its entries in name order (see [`Sort::order`]) and which of them
/// [`refresh`] must look at again. Symlinks are described by what they point to; a missing
/// target is a broken link. Blocking: call off the runtime.
///
/// rustix reads the names into one buffer (no allocation per name), and each name is
/// looked up relative to the open directory, asking only for what a listing shows.
///
/// # Errors
/// The directory cannot be read.
#[cfg(target_os = "linux")]
pub(crate) fn read(dir: &Path) -> io::Result<Listed> {
    use std::mem::MaybeUninit;
    use std::os::unix::ffi::OsStrExt;

    use rustix::fs::{FileType, Mode, OFlags, RawDir};

    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let fd = rustix::fs::open(dir, flags, Mode::empty())?;
    let mut buf = vec![MaybeUninit::<u8>::uninit(); 64 * 1024];
    let mut names = RawDir::new(&fd, &mut buf);
    let mut entries = Vec::new();
    let mut volatile = Vec::new();
    while let Some(entry) = names.next() {
        let entry = entry?;
        let raw = entry.file_name();
        if matches!(raw.to_bytes(), b"." | b"..") {
            continue;
        }
        let (kind, size, modified) = describe(&fd, raw);
        if matches!(
            entry.file_type(),
            FileType::Directory | FileType::Symlink | FileType::Unknown
        ) {
            let name = std::ffi::OsStr::from_bytes(raw.to_bytes());
            volatile.push((entries.len(), name.to_owned()));
        }
        let name = match std::str::from_utf8(raw.to_bytes()) {
            Ok(name) => name.to_owned(),
            Err(_) => String::from_utf8_lossy(raw.to_bytes()).into_owned(),
        };
        entries.push(Entry {
            name,
            kind,
            size,
            modified,
        });
    }
    Ok(Listed::in_name_order(entries, volatile))
}

/// Describes the entry `name` of the open directory `dir`.
#[cfg(target_os = "linux")]
fn describe<Fd: std::os::fd::AsFd, P: rustix::path::Arg>(dir: Fd, name: P) -> Description {
    use std::time::{Duration, UNIX_EPOCH};

    use rustix::fs::{AtFlags, FileType, StatxFlags};

    let wanted = StatxFlags::TYPE | StatxFlags::SIZE | StatxFlags::MTIME;
    let Ok(st) = rustix::fs::statx(dir, name, AtFlags::empty(), wanted) else {
        return (Kind::Broken, 0, None);
    };
    let t = st.stx_mtime;
    let nanos = Duration::from_nanos(t.tv_nsec.into());
    let modified = match u64::try_from(t.tv_sec) {
        Ok(secs) => UNIX_EPOCH.checked_add(Duration::from_secs(secs) + nanos),
        Err(_) => UNIX_EPOCH
            .checked_sub(Duration::from_secs(t.tv_sec.unsigned_abs()))
            .and_then(|at| at.checked_add(nanos)),
    };
    match FileType::from_raw_mode(st.stx_mode.into()) {
        FileType::Directory => (Kind::Dir, 0, modified),
        FileType::RegularFile => (Kind::File, st.stx_size, modified),
        _ => (Kind::Other, 0, modified),
    }
}

/// Reads `dir`: its entries in name order (see [`Sort::order`]), every one of them for
/// [`refresh`] to look at again. Symlinks are described by what they point to; a missing
/// target is a broken link. Blocking: call off the runtime.
///
/// # Errors
/// The directory cannot be read.
#[cfg(not(target_os = "linux"))]
pub(crate) fn read(dir: &Path) -> io::Result<Listed> {
    let mut entries = Vec::new();
    let mut volatile = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let raw = entry.file_name();
        let (kind, size, modified) = describe(&entry.path());
        volatile.push((entries.len(), raw.clone()));
        let name = raw
            .into_string()
            .unwrap_or_else(|raw| raw.to_string_lossy().into_owned());
        entries.push(Entry {
            name,
            kind,
            size,
            modified,
        });
    }
    Ok(Listed::in_name_order(entries, volatile))
}

/// Describes the entry at `path`.
#[cfg(not(target_os = "linux"))]
fn describe(path: &Path) -> Description {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => (Kind::Dir, 0, m.modified().ok()),
        Ok(m) if m.is_file() => (Kind::File, m.len(), m.modified().ok()),
        Ok(m) => (Kind::Other, 0, m.modified().ok()),
        Err(_) => (Kind::Broken, 0, None),
    }
}

/// The entries of `listed`, a listing of `dir` kept from an earlier read, with its
/// volatile entries looked at again: borrowed when none changed. Blocking.
///
/// # Errors
/// The directory cannot be opened.
pub(crate) fn refresh<'a>(dir: &Path, listed: &'a Listed) -> io::Result<Cow<'a, [Entry]>> {
    let mut entries = Cow::Borrowed(listed.entries.as_slice());
    if listed.volatile.is_empty() {
        return Ok(entries);
    }
    #[cfg(target_os = "linux")]
    let look = {
        use rustix::fs::{Mode, OFlags};
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let fd = rustix::fs::open(dir, flags, Mode::empty())?;
        move |name: &std::ffi::OsStr| describe(&fd, name)
    };
    #[cfg(not(target_os = "linux"))]
    let look = |name: &std::ffi::OsStr| describe(&dir.join(name));
    for (at, name) in &listed.volatile {
        let now = look(name);
        let was = &entries[*at];
        if (was.kind, was.size, was.modified) != now {
            let entry = &mut entries.to_mut()[*at];
            (entry.kind, entry.size, entry.modified) = now;
        }
    }
    Ok(entries)
}

/// The JSON listing: `{"path": "/dir/", "entries": [{"name", "type", "size", "modified"}]}`.
pub(crate) fn json(url_path: &str, entries: &[&Entry]) -> String {
    #[derive(Serialize)]
    struct Listing<'a> {
        path: &'a str,
        entries: &'a [&'a Entry],
    }
    serde_json::to_string(&Listing {
        path: url_path,
        entries,
    })
    .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// The style of the HTML listing: rows at least 44 px tall, whole names (wrapped, and on
/// a phone with size and time on a line under them), no sideways scrolling at a phone's
/// 390 px, dark when the system is.
const STYLE: &str = include_str!("page/listing.css");

/// Shows times in the reader's own zone, sorts and shows checksums on a tap, and sends
/// files dropped on the page through the upload form. Without it the page shows UTC
/// dates in name order, and every file still downloads.
const SCRIPT: &str = include_str!("page/listing.js");

/// The upload form, at the top of the page where a phone's thumb finds it; the script
/// shows its "drop" words only where dragging works.
const UPLOAD_FORM: &str = "<form id=\"up\" method=\"post\" enctype=\"multipart/form-data\">\
     <label>Upload files here<span class=\"drop\" hidden> (or drop them on the page)</span>: \
     <input type=\"file\" name=\"file\" multiple required></label> \
     <button>Upload</button></form>\n";

/// A row's delete button (writes on): the script asks first, then sends `DELETE` (with
/// `?recursive` for a folder).
fn delete_button(out: &mut String, link: &str, name: &str, folder: bool) {
    use html_escape::encode_double_quoted_attribute as attr;
    out.push_str("<button class=\"del\" data-d=\"");
    out.push_str(link);
    if folder {
        out.push_str("/\" data-dir=\"1");
    }
    out.push_str("\" title=\"Delete ");
    out.push_str(&attr(name));
    out.push_str("\" aria-label=\"Delete ");
    out.push_str(&attr(name));
    out.push_str("\">\u{2715}</button>");
}

/// The HTML listing of `url_path`: breadcrumbs, sortable columns, directories first, a
/// parent link except at the root, and the upload form when uploads are on.
pub(crate) fn html(url_path: &str, entries: &[&Entry], sort: Sort, upload: bool) -> String {
    use html_escape::{encode_double_quoted_attribute as attr, encode_text as text};
    use std::fmt::Write as _;

    let mut out = String::with_capacity(4096 + entries.len() * 200);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body{}>\n<nav>",
        text(url_path),
        if upload { " class=\"w\"" } else { "" }
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
        "</nav>\n{}<div class=\"head\"><button class=\"n\" data-q=\"{}\">Name{}</button>\
         <button class=\"s\" data-q=\"{}\">Size{}</button>\
         <button class=\"t\" data-q=\"{}\">Modified{}</button>\
         <span class=\"pad\"></span></div>\n<ul>\n",
        if upload { UPLOAD_FORM } else { "" },
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
                out.push_str("</a><span></span>");
                if upload {
                    delete_button(&mut out, &link, &e.name, true);
                }
                out.push_str("</li>\n");
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
                out.push_str("</a><button data-f=\"");
                out.push_str(&link);
                let _ = write!(
                    out,
                    "\" title=\"SHA-256 of {}\">SHA</button>",
                    attr(&e.name)
                );
                if upload {
                    delete_button(&mut out, &link, &e.name, false);
                }
                out.push_str("</li>\n");
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
                out.push_str("</span><span></span>");
                if upload {
                    delete_button(&mut out, &link, &e.name, false);
                }
                out.push_str("</li>\n");
            }
        }
    }
    out.push_str("</ul>\n");
    let _ = write!(out, "<script>{SCRIPT}</script>\n</body>\n</html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::{By, Kind, Sort, read};
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::symlink;

    fn kinds(dir: &std::path::Path) -> Vec<(String, Kind, u64)> {
        let listed = read(dir).unwrap();
        Sort::default()
            .order(&listed.entries, false)
            .into_iter()
            .map(|e| (e.name.clone(), e.kind, e.size))
            .collect()
    }

    #[test]
    fn entries_are_described_by_what_they_are_and_what_links_point_to() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("fw.img"), [0; 300]).unwrap();
        std::fs::create_dir(d.join("boot")).unwrap();
        symlink(d.join("fw.img"), d.join("latest.img")).unwrap();
        symlink(d.join("boot"), d.join("current")).unwrap();
        symlink("/nonexistent/target", d.join("dangling")).unwrap();
        let fifo = std::ffi::CString::new(d.join("pipe").as_os_str().as_bytes()).unwrap();
        // SAFETY: mkfifo with a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        std::fs::write(d.join(std::ffi::OsStr::from_bytes(b"caf\xe9.bin")), b"x").unwrap();
        assert_eq!(
            kinds(d),
            [
                ("boot".to_string(), Kind::Dir, 0),
                ("caf\u{fffd}.bin".to_string(), Kind::File, 1),
                ("current".to_string(), Kind::Dir, 0),
                ("dangling".to_string(), Kind::Broken, 0),
                ("fw.img".to_string(), Kind::File, 300),
                ("latest.img".to_string(), Kind::File, 300),
                ("pipe".to_string(), Kind::Other, 0),
            ]
        );
        // Read in name order, with the entries to look at again pointing at their names:
        // the subdirectory and the links, not the files or the pipe.
        let listed = read(d).unwrap();
        let names: Vec<&str> = listed.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "boot",
                "caf\u{fffd}.bin",
                "current",
                "dangling",
                "fw.img",
                "latest.img",
                "pipe"
            ]
        );
        let mut volatile: Vec<&str> = listed
            .volatile
            .iter()
            .map(|(at, name)| {
                assert_eq!(name.to_str(), Some(names[*at]));
                names[*at]
            })
            .collect();
        volatile.sort_unstable();
        assert_eq!(volatile, ["boot", "current", "dangling", "latest.img"]);
    }

    #[test]
    fn a_directory_bigger_than_one_read_is_listed_whole() {
        let dir = tempfile::tempdir().unwrap();
        // 3000 long names: several times the 64 KiB the names are read in.
        for i in 0..3000 {
            std::fs::write(dir.path().join(format!("{i:05}-{}", "x".repeat(40))), b"").unwrap();
        }
        let entries = read(dir.path()).unwrap().entries;
        let mut names: Vec<_> = entries.iter().map(|e| e.name.clone()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 3000);
        assert!(names[0].starts_with("00000-") && names[2999].starts_with("02999-"));
    }

    #[test]
    fn orders_put_directories_first_fold_case_and_go_either_way() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("b.img"), [0; 30]).unwrap();
        std::fs::write(d.join("A.img"), [0; 10]).unwrap();
        std::fs::write(d.join("a.img"), [0; 20]).unwrap();
        std::fs::create_dir(d.join("z")).unwrap();
        let names = |sort: Sort, dirs_first: bool| {
            let listed = read(d).unwrap();
            let ordered = sort.order(&listed.entries, dirs_first);
            ordered
                .into_iter()
                .map(|e| e.name.clone())
                .collect::<Vec<_>>()
        };
        let by = |by: By, descending: bool| Sort { by, descending };
        assert_eq!(
            names(Sort::default(), true),
            ["z", "A.img", "a.img", "b.img"]
        );
        assert_eq!(
            names(Sort::default(), false),
            ["A.img", "a.img", "b.img", "z"]
        );
        assert_eq!(
            names(by(By::Name, true), true),
            ["z", "b.img", "a.img", "A.img"]
        );
        assert_eq!(
            names(by(By::Size, false), true),
            ["z", "A.img", "a.img", "b.img"]
        );
        assert_eq!(
            names(by(By::Size, true), true),
            ["z", "b.img", "a.img", "A.img"]
        );
        // Ties keep name order, whichever way the key goes.
        std::fs::write(d.join("B.img"), [0; 30]).unwrap();
        std::fs::write(d.join("c.img"), [0; 30]).unwrap();
        assert_eq!(
            names(by(By::Size, true), false),
            ["B.img", "b.img", "c.img", "a.img", "A.img", "z"]
        );
        assert_eq!(
            names(by(By::Size, false), true),
            ["z", "A.img", "a.img", "B.img", "b.img", "c.img"]
        );
    }
}
