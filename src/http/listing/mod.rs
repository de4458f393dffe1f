//! Directory listings: HTML for browsers (made for a phone in one hand as much as for a
//! desktop: no external assets, no JavaScript needed to download), JSON for scripts.

use std::ffi::OsString;
use std::time::SystemTime;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};
use serde::Serialize;

mod page;
mod read;

pub(crate) use page::html;
pub(crate) use read::{read, refresh};

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

#[cfg(test)]
mod tests;
