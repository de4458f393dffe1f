//! Which names the file server shows and takes (`--only`, `--hide`, `--read-only`): globs
//! on the path below the root, as quick_server's white- and blacklists and uhttpd's
//! file rules do.
//!
//! A glob without a `/` is about names: it matches a file's name for `--only`, and any
//! name on the way (a folder hides or protects what it holds) for `--hide` and
//! `--read-only`. A glob with a `/` (a leading one included: `/private`) is about paths
//! below the root (`fw/*.img`, `release/**`); for `--hide` and `--read-only` a folder it
//! matches covers what it holds.

use glob::{MatchOptions, Pattern};

/// The rules; empty, everything is shown and (with `--upload`) writable.
#[derive(Debug, Clone, Default)]
pub struct FileRules {
    only: Vec<Glob>,
    hide: Vec<Glob>,
    read_only: Vec<Glob>,
}

/// One glob, as given, and whether it is about paths (it has a `/`) or names.
#[derive(Debug, Clone)]
struct Glob {
    given: String,
    pattern: Pattern,
    path: bool,
}

/// `*` and `?` never cross a `/`; `**` does.
const OPTIONS: MatchOptions = MatchOptions {
    case_sensitive: true,
    require_literal_separator: true,
    require_literal_leading_dot: false,
};

impl FileRules {
    /// The rules from the options' values, each a comma-separated list of globs.
    ///
    /// # Errors
    /// A glob that does not parse, named with the option and why.
    pub fn new(only: &[String], hide: &[String], read_only: &[String]) -> Result<Self, String> {
        let parse = |option: &str, values: &[String]| -> Result<Vec<Glob>, String> {
            values
                .iter()
                .flat_map(|v| v.split(','))
                .map(str::trim)
                .filter(|g| !g.is_empty())
                .map(|g| {
                    Ok(Glob {
                        given: g.to_string(),
                        pattern: Pattern::new(g.trim_start_matches('/'))
                            .map_err(|e| format!("{option} {g:?}: {}", e.msg))?,
                        path: g.contains('/'),
                    })
                })
                .collect()
        };
        Ok(Self {
            only: parse("--only", only)?,
            hide: parse("--hide", hide)?,
            read_only: parse("--read-only", read_only)?,
        })
    }

    /// Whether there is any rule.
    pub fn is_empty(&self) -> bool {
        self.only.is_empty() && self.hide.is_empty() && self.read_only.is_empty()
    }

    /// Whether the file (or, with `folder`, the folder) at `path` is served and listed.
    pub(crate) fn shows(&self, path: &str, folder: bool) -> bool {
        if folder {
            self.shows_dir(path)
        } else {
            self.shows_file(path)
        }
    }

    /// [`FileRules::shows`] for a decoded request path (`/`-separated, slashes at either
    /// end ignored); the root itself is always shown.
    pub(crate) fn shows_name(&self, name: &[u8], folder: bool) -> bool {
        self.is_empty() || {
            let path = path_of(name);
            path.is_empty() || self.shows(&path, folder)
        }
    }

    /// Whether the file at `path` (below the root, `/`-separated, no leading `/`) is
    /// served and listed.
    pub(crate) fn shows_file(&self, path: &str) -> bool {
        !covers(&self.hide, path)
            && (self.only.is_empty() || self.only.iter().any(|g| names(g, path)))
    }

    /// Whether the folder at `path` is listed and entered (`--only` is about files: the
    /// folders on the way to them stay).
    pub(crate) fn shows_dir(&self, path: &str) -> bool {
        !covers(&self.hide, path)
    }

    /// Why a write (an upload, a delete, a new folder) to `path` is refused, if it is.
    pub(crate) fn refuses_write(&self, path: &str, folder: bool) -> Option<&'static str> {
        if covers(&self.read_only, path) {
            Some("read-only (--read-only)")
        } else if !self.shows(path, folder) {
            Some("not a name this server shows (--only, --hide)")
        } else {
            None
        }
    }

    /// [`FileRules::refuses_write`] for a decoded request path.
    pub(crate) fn refuses_write_to(&self, name: &[u8], folder: bool) -> Option<&'static str> {
        if self.is_empty() {
            return None;
        }
        self.refuses_write(&path_of(name), folder)
    }

    /// The rules in words, for `--show-settings`.
    pub fn describe(&self) -> String {
        if self.is_empty() {
            return "every name".to_string();
        }
        let list = |what: &str, globs: &[Glob]| {
            (!globs.is_empty()).then(|| {
                let globs: Vec<&str> = globs.iter().map(|g| g.given.as_str()).collect();
                format!("{what} {}", globs.join(","))
            })
        };
        [
            list("only", &self.only),
            list("hiding", &self.hide),
            list("read-only", &self.read_only),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("; ")
    }
}

/// A decoded request path as the rules read it: below the root, without the slashes at
/// either end.
pub(crate) fn path_of(name: &[u8]) -> String {
    String::from_utf8_lossy(name).trim_matches('/').to_string()
}

/// Whether `glob` matches the file at `path`: its name, or (with a `/`) its path.
fn names(glob: &Glob, path: &str) -> bool {
    if glob.path {
        glob.pattern.matches_with(path, OPTIONS)
    } else {
        let name = path.rsplit('/').next().unwrap_or(path);
        glob.pattern.matches_with(name, OPTIONS)
    }
}

/// Whether a glob matches `path` or a folder it lies in.
fn covers(globs: &[Glob], path: &str) -> bool {
    globs.iter().any(|glob| {
        let mut prefix_end = 0;
        path.split('/').any(|segment| {
            prefix_end += segment.len();
            let hit = if glob.path {
                glob.pattern.matches_with(&path[..prefix_end], OPTIONS)
            } else {
                glob.pattern.matches_with(segment, OPTIONS)
            };
            prefix_end += 1;
            hit
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(only: &str, hide: &str, read_only: &str) -> FileRules {
        let list = |s: &str| {
            if s.is_empty() {
                vec![]
            } else {
                vec![s.to_string()]
            }
        };
        FileRules::new(&list(only), &list(hide), &list(read_only)).unwrap()
    }

    #[test]
    fn only_names_files_and_keeps_the_folders_on_the_way() {
        let r = rules("*.img,*.bin, *.swu", "", "");
        assert!(r.shows_file("fw.img"));
        assert!(r.shows_file("boards/7/fw.bin"));
        assert!(r.shows_file("update.swu"));
        assert!(!r.shows_file("notes.txt"));
        assert!(!r.shows_file("fw.img.sig"));
        assert!(r.shows_dir("boards"));
        let r = rules("fw/*.img", "", "");
        assert!(r.shows_file("fw/a.img"));
        assert!(!r.shows_file("fw/sub/a.img"), "* stays in its folder");
        assert!(!r.shows_file("a.img"));
        assert!(rules("fw/**/*.img", "", "").shows_file("fw/sub/a.img"));
    }

    #[test]
    fn hide_covers_names_anywhere_and_what_folders_hold() {
        let r = rules("", "secret*,*.key", "");
        assert!(!r.shows_file("tls/server.key"));
        assert!(!r.shows_file("secrets/a.txt"));
        assert!(!r.shows_dir("secrets"));
        assert!(r.shows_file("public/a.txt"));
        let r = rules("", "/private", "");
        assert!(!r.shows_file("private/x"));
        assert!(r.shows_file("public/private"));
    }

    #[test]
    fn read_only_refuses_writes_below_it() {
        let r = rules("", "", "golden,release/*");
        assert_eq!(
            r.refuses_write("golden/fw.img", false),
            Some("read-only (--read-only)")
        );
        assert!(r.refuses_write("golden", true).is_some());
        assert!(r.refuses_write("release/v1/fw.img", false).is_some());
        assert_eq!(r.refuses_write("scratch/fw.img", false), None);
        let r = rules("*.img", "", "");
        assert!(
            r.refuses_write("notes.txt", false).is_some(),
            "not shown, not taken"
        );
        assert_eq!(r.refuses_write("logs", true), None);
    }

    #[test]
    fn a_bad_glob_is_named() {
        let err = FileRules::new(&["[a".to_string()], &[], &[]).unwrap_err();
        assert!(err.starts_with("--only \"[a\""), "{err}");
        assert_eq!(rules("", "", "").describe(), "every name");
        assert_eq!(
            rules("*.img", "*.key", "").describe(),
            "only *.img; hiding *.key"
        );
    }
}
