//! Env-driven settings shared by every binary: the variables pyserv users already set.
//!
//! Values are read through an injected lookup function so tests never touch the
//! process environment. A variable that is set but empty counts as unset.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default for `DEBUG`.
pub const DEFAULT_DEBUG: bool = false;
/// Default for `IDEV`: the network device the TUI shows first.
pub const DEFAULT_IDEV: &str = "lo";
/// Default for `LPNAME`: the name that pid and log files are called after.
pub const DEFAULT_LPNAME: &str = "httpd";
/// Default for `SOCK_TIMEOUT`, in seconds.
pub const DEFAULT_SOCK_TIMEOUT: Duration = Duration::from_secs(5);

/// Every variable [`Settings`] reads, in the order `--show-settings` prints them.
pub const VARIABLES: [&str; 9] = [
    "DEBUG",
    "PORT",
    "IFACE",
    "IDEV",
    "LPNAME",
    "LOG",
    "PID",
    "DOCROOT",
    "SOCK_TIMEOUT",
];

/// A variable or argument whose value cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {name}={value:?}: {expected}")]
pub struct SettingsError {
    /// The variable or argument name (`PORT`, `IFACE`, ...).
    pub name: String,
    /// The value that was given.
    pub value: String,
    /// What would have been accepted.
    pub expected: &'static str,
}

impl SettingsError {
    fn new(name: &str, value: &str, expected: &'static str) -> Self {
        Self {
            name: name.to_string(),
            value: value.to_string(),
            expected,
        }
    }
}

/// What a binary uses when a variable is unset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Defaults {
    /// Port when neither an argument nor `PORT` gives one.
    pub port: u16,
    /// Listen address when neither an argument nor `IFACE` gives one; `None` means every
    /// interface (IPv4 and IPv6).
    pub iface: Option<IpAddr>,
    /// `LPNAME` when unset.
    pub lpname: &'static str,
}

impl Defaults {
    /// The file server's defaults: port 8080 on every interface, LPNAME `httpd`.
    pub const HTTP: Defaults = Defaults {
        port: 8080,
        iface: None,
        lpname: DEFAULT_LPNAME,
    };

    /// The app host's defaults: port 8000 on 127.0.0.1, LPNAME `wsgi`.
    pub const WSGI: Defaults = Defaults {
        port: 8000,
        iface: Some(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)),
        lpname: "wsgi",
    };

    /// The TFTP server's defaults: port 9069 on 127.0.0.1 (listening on every interface
    /// stays an explicit choice), LPNAME `tftpd`.
    pub const TFTP: Defaults = Defaults {
        port: 9069,
        iface: Some(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)),
        lpname: "tftpd",
    };
}

/// The user's XDG directories that default LOG and PID paths live under.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserDirs {
    /// `$XDG_STATE_HOME` or `~/.local/state` (Linux); the local data directory elsewhere.
    pub state: Option<PathBuf>,
    /// `$XDG_RUNTIME_DIR`, where there is one.
    pub runtime: Option<PathBuf>,
    /// `$XDG_CACHE_HOME` or `~/.cache`.
    pub cache: Option<PathBuf>,
}

impl UserDirs {
    /// Asks the operating system (through the `directories` crate) for the current user's dirs.
    pub fn detect() -> Self {
        match directories::BaseDirs::new() {
            Some(dirs) => Self {
                state: Some(
                    dirs.state_dir()
                        .unwrap_or_else(|| dirs.data_local_dir())
                        .to_path_buf(),
                ),
                runtime: dirs.runtime_dir().map(Path::to_path_buf),
                cache: Some(dirs.cache_dir().to_path_buf()),
            },
            None => Self::default(),
        }
    }

    /// `<state>/labserv/log`, the directory of default log files.
    pub fn log_dir(&self) -> PathBuf {
        self.state
            .as_ref()
            .map(|d| d.join("labserv").join("log"))
            .unwrap_or_else(|| fallback_dir().join("log"))
    }

    /// `<runtime>/labserv`, else `<cache>/labserv`: the directory of default pid files.
    pub fn pid_dir(&self) -> PathBuf {
        self.runtime
            .as_ref()
            .or(self.cache.as_ref())
            .map(|d| d.join("labserv"))
            .unwrap_or_else(fallback_dir)
    }
}

/// Where files go when the user has no home directory at all (a bare service account).
fn fallback_dir() -> PathBuf {
    std::env::temp_dir().join("labserv")
}

/// The validated settings. Fields hold what the environment said; methods give the
/// effective value with the binary's defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `DEBUG`: verbose request logging.
    pub debug: bool,
    /// `PORT`, if set.
    pub port: Option<u16>,
    /// `IFACE`, if set: the address to listen on.
    pub iface: Option<IpAddr>,
    /// `IDEV`: network device name.
    pub idev: String,
    /// `LPNAME`, if set.
    pub lpname: Option<String>,
    /// `LOG`, if set.
    pub log: Option<PathBuf>,
    /// `PID`, if set.
    pub pid: Option<PathBuf>,
    /// `DOCROOT`, if set.
    pub docroot: Option<PathBuf>,
    /// `SOCK_TIMEOUT`.
    pub sock_timeout: Duration,
    /// The binary's defaults.
    pub defaults: Defaults,
    /// The user's directories.
    pub dirs: UserDirs,
}

impl Settings {
    /// Reads the settings from the process environment.
    ///
    /// # Errors
    /// A variable with a value that cannot be used.
    pub fn from_env(defaults: Defaults) -> Result<Self, SettingsError> {
        Self::from_lookup(|name| std::env::var_os(name), UserDirs::detect(), defaults)
    }

    /// Reads the settings through `lookup` (name to value), with the given user dirs.
    ///
    /// ```
    /// use std::ffi::OsString;
    /// use labserv::settings::{Defaults, Settings, UserDirs};
    ///
    /// let env = |name: &str| match name {
    ///     "PORT" => Some(OsString::from("9000")),
    ///     "IFACE" => Some(OsString::new()), // empty counts as unset
    ///     _ => None,
    /// };
    /// let s = Settings::from_lookup(env, UserDirs::default(), Defaults::HTTP).unwrap();
    /// assert_eq!(s.port(), 9000);
    /// assert_eq!(s.iface(), None);
    /// assert_eq!(s.lpname(), "httpd");
    ///
    /// let bad = |name: &str| (name == "PORT").then(|| OsString::from("abc"));
    /// let err = Settings::from_lookup(bad, UserDirs::default(), Defaults::HTTP).unwrap_err();
    /// assert_eq!(err.to_string(), r#"invalid PORT="abc": expected a port number from 0 to 65535"#);
    /// ```
    ///
    /// # Errors
    /// A variable with a value that cannot be used.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<OsString>,
        dirs: UserDirs,
        defaults: Defaults,
    ) -> Result<Self, SettingsError> {
        // Empty counts as unset: a Procfile or unit file often exports `IFACE=`.
        let get = |name: &str| lookup(name).filter(|v| !v.is_empty());
        let text = |name: &str| -> Result<Option<String>, SettingsError> {
            match get(name) {
                None => Ok(None),
                Some(v) => v.into_string().map(Some).map_err(|v| {
                    SettingsError::new(name, &v.to_string_lossy(), "valid UTF-8 text")
                }),
            }
        };
        let path = |name: &str| get(name).map(PathBuf::from);
        // LOG and PID name files: `.`, `..` or `/` would only fail later, less clearly.
        let file = |name: &str| -> Result<Option<PathBuf>, SettingsError> {
            match path(name) {
                Some(p) if p.file_name().is_none() => Err(SettingsError::new(
                    name,
                    &p.to_string_lossy(),
                    "expected a file path, such as /tmp/httpd.log",
                )),
                p => Ok(p),
            }
        };

        let debug = match text("DEBUG")? {
            Some(v) => parse_bool("DEBUG", &v)?,
            None => DEFAULT_DEBUG,
        };
        let port = text("PORT")?.map(|v| parse_port("PORT", &v)).transpose()?;
        let iface = text("IFACE")?
            .map(|v| parse_addr("IFACE", &v))
            .transpose()?;
        let idev = match text("IDEV")? {
            Some(v) => parse_device("IDEV", &v)?,
            None => DEFAULT_IDEV.to_string(),
        };
        let lpname = text("LPNAME")?
            .map(|v| parse_lpname("LPNAME", &v))
            .transpose()?;
        let sock_timeout = match text("SOCK_TIMEOUT")? {
            Some(v) => parse_seconds("SOCK_TIMEOUT", &v)?,
            None => DEFAULT_SOCK_TIMEOUT,
        };
        Ok(Self {
            debug,
            port,
            iface,
            idev,
            lpname,
            log: file("LOG")?,
            pid: file("PID")?,
            docroot: path("DOCROOT"),
            sock_timeout,
            defaults,
            dirs,
        })
    }

    /// The effective port: `PORT`, else the binary's default.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(self.defaults.port)
    }

    /// The effective listen address: `IFACE`, else the binary's default (`None`: every interface).
    pub fn iface(&self) -> Option<IpAddr> {
        self.iface.or(self.defaults.iface)
    }

    /// The effective `LPNAME`.
    pub fn lpname(&self) -> &str {
        self.lpname.as_deref().unwrap_or(self.defaults.lpname)
    }

    /// The effective log file: `LOG`, else `<state dir>/labserv/log/<LPNAME>.log`.
    pub fn log_file(&self) -> PathBuf {
        self.log
            .clone()
            .unwrap_or_else(|| self.dirs.log_dir().join(format!("{}.log", self.lpname())))
    }

    /// The effective pid file: `PID`, else `<runtime dir>/labserv/<LPNAME>.pid`.
    pub fn pid_file(&self) -> PathBuf {
        self.pid
            .clone()
            .unwrap_or_else(|| self.dirs.pid_dir().join(format!("{}.pid", self.lpname())))
    }

    /// The effective document root: `DOCROOT`, else the current directory.
    pub fn docroot(&self) -> PathBuf {
        self.docroot.clone().unwrap_or_else(|| PathBuf::from("."))
    }

    /// The report printed by `--show-settings`: version, user directories, and the
    /// effective value of every variable, marked `(default)` where the environment left it unset.
    pub fn report(&self, program: &str) -> String {
        let mut out = String::new();
        let show = |p: &Option<PathBuf>| {
            p.as_ref()
                .map_or_else(|| "(none)".to_string(), |p| p.display().to_string())
        };
        let _ = writeln!(out, "{program} (labserv {})", env!("CARGO_PKG_VERSION"));
        let _ = writeln!(out, "user directories:");
        let _ = writeln!(out, "  state    {}", show(&self.dirs.state));
        let _ = writeln!(out, "  runtime  {}", show(&self.dirs.runtime));
        let _ = writeln!(out, "  cache    {}", show(&self.dirs.cache));
        let _ = writeln!(out, "variables:");
        let iface = self
            .iface()
            .map_or_else(|| "(all interfaces)".to_string(), |a| a.to_string());
        let rows: [(&str, String, bool); 9] = [
            (
                "DEBUG",
                u8::from(self.debug).to_string(),
                self.debug == DEFAULT_DEBUG,
            ),
            ("PORT", self.port().to_string(), self.port.is_none()),
            ("IFACE", iface, self.iface.is_none()),
            ("IDEV", self.idev.clone(), self.idev == DEFAULT_IDEV),
            ("LPNAME", self.lpname().to_string(), self.lpname.is_none()),
            (
                "LOG",
                self.log_file().display().to_string(),
                self.log.is_none(),
            ),
            (
                "PID",
                self.pid_file().display().to_string(),
                self.pid.is_none(),
            ),
            (
                "DOCROOT",
                self.docroot().display().to_string(),
                self.docroot.is_none(),
            ),
            (
                "SOCK_TIMEOUT",
                self.sock_timeout.as_secs_f64().to_string(),
                self.sock_timeout == DEFAULT_SOCK_TIMEOUT,
            ),
        ];
        for (name, value, default) in rows {
            let mark = if default { "  (default)" } else { "" };
            let _ = writeln!(out, "  {name:<12} {value}{mark}");
        }
        out
    }
}

/// Parses a boolean the way shell users write one: 0/1, true/false, yes/no, on/off.
///
/// # Errors
/// Anything else.
pub fn parse_bool(name: &str, value: &str) -> Result<bool, SettingsError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(SettingsError::new(name, value, "expected 0 or 1")),
    }
}

/// Parses a TCP/UDP port number, 0 to 65535 (0 picks a free port).
///
/// # Errors
/// Anything that is not a whole number in that range.
pub fn parse_port(name: &str, value: &str) -> Result<u16, SettingsError> {
    value
        .trim()
        .parse::<u16>()
        .map_err(|_| SettingsError::new(name, value, "expected a port number from 0 to 65535"))
}

/// Parses a listen address: an IPv4 or IPv6 literal, IPv6 optionally in brackets.
///
/// # Errors
/// Anything that is not an IP address.
pub fn parse_addr(name: &str, value: &str) -> Result<IpAddr, SettingsError> {
    let v = value.trim();
    let v = v
        .strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
        .unwrap_or(v);
    v.parse::<IpAddr>().map_err(|_| {
        SettingsError::new(
            name,
            value,
            "expected an IP address such as 0.0.0.0, 192.168.1.10 or ::",
        )
    })
}

/// Parses a duration in seconds (fractions allowed), greater than zero.
///
/// # Errors
/// Negative, zero, non-finite, absurdly large or non-numeric values.
pub fn parse_seconds(name: &str, value: &str) -> Result<Duration, SettingsError> {
    const EXPECTED: &str = "expected a number of seconds greater than 0, such as 5 or 0.5";
    let secs: f64 = value
        .trim()
        .parse()
        .map_err(|_| SettingsError::new(name, value, EXPECTED))?;
    // Written to reject NaN too: every comparison with NaN is false.
    let in_range = secs > 0.0 && secs <= 86_400.0 * 365.0;
    if !in_range {
        return Err(SettingsError::new(name, value, EXPECTED));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parses a whole number in `min..=max` (block sizes, window sizes).
///
/// # Errors
/// Anything else.
pub fn parse_number(
    name: &str,
    value: &str,
    min: u16,
    max: u16,
    expected: &'static str,
) -> Result<u16, SettingsError> {
    match value.trim().parse::<u16>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(SettingsError::new(name, value, expected)),
    }
}

/// Parses a size in bytes, with an optional binary K, M or G suffix (`64M`).
///
/// # Errors
/// Anything else, or a size that overflows.
pub fn parse_size(name: &str, value: &str) -> Result<u64, SettingsError> {
    const EXPECTED: &str = "expected a size in bytes such as 65536, 64K or 64M";
    let v = value.trim();
    let (digits, unit) = match v.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&v[..i], c.to_ascii_uppercase()),
        _ => (v, 'B'),
    };
    let factor: u64 = match unit {
        'B' => 1,
        'K' => 1 << 10,
        'M' => 1 << 20,
        'G' => 1 << 30,
        _ => return Err(SettingsError::new(name, value, EXPECTED)),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(factor))
        .ok_or_else(|| SettingsError::new(name, value, EXPECTED))
}

/// Checks a network device name (`eth0`, `enp3s0`, `lo`).
///
/// # Errors
/// Names that no interface can have: too long, or with `/` or white space.
pub fn parse_device(name: &str, value: &str) -> Result<String, SettingsError> {
    let ok = value.len() <= 15 && !value.chars().any(char::is_whitespace);
    plain_name(
        name,
        value,
        ok,
        "expected a network device name such as eth0",
    )
}

/// Checks an LPNAME: it becomes part of file names, so it must be one plain path component.
///
/// # Errors
/// `.`, `..`, or names with `/` or a NUL byte.
pub fn parse_lpname(name: &str, value: &str) -> Result<String, SettingsError> {
    let ok = value != "." && value != ".." && !value.contains('\0');
    plain_name(
        name,
        value,
        ok,
        "expected a plain name without '/', such as httpd",
    )
}

/// A non-empty value without `/` that also passes the caller's own check.
fn plain_name(
    name: &str,
    value: &str,
    ok: bool,
    expected: &'static str,
) -> Result<String, SettingsError> {
    if ok && !value.is_empty() && !value.contains('/') {
        Ok(value.to_string())
    } else {
        Err(SettingsError::new(name, value, expected))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn dirs() -> UserDirs {
        UserDirs {
            state: Some("/home/u/.local/state".into()),
            runtime: Some("/run/user/1000".into()),
            cache: Some("/home/u/.cache".into()),
        }
    }

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let map: HashMap<String, OsString> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        Settings::from_lookup(|k| map.get(k).cloned(), dirs(), Defaults::HTTP)
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let s = settings(&[]).unwrap();
        assert!(!s.debug);
        assert_eq!(s.port(), 8080);
        assert_eq!(s.iface(), None);
        assert_eq!(s.idev, "lo");
        assert_eq!(s.lpname(), "httpd");
        assert_eq!(s.sock_timeout, Duration::from_secs(5));
        assert_eq!(
            s.log_file(),
            PathBuf::from("/home/u/.local/state/labserv/log/httpd.log")
        );
        assert_eq!(
            s.pid_file(),
            PathBuf::from("/run/user/1000/labserv/httpd.pid")
        );
        assert_eq!(s.docroot(), PathBuf::from("."));
    }

    #[test]
    fn values_are_read_and_empty_counts_as_unset() {
        let s = settings(&[
            ("DEBUG", "1"),
            ("PORT", "9000"),
            ("IFACE", ""),
            ("LPNAME", "fw"),
            ("SOCK_TIMEOUT", "0.5"),
            ("DOCROOT", "/srv/fw"),
        ])
        .unwrap();
        assert!(s.debug);
        assert_eq!(s.port(), 9000);
        assert_eq!(s.iface(), None);
        assert_eq!(s.sock_timeout, Duration::from_millis(500));
        assert_eq!(s.docroot(), PathBuf::from("/srv/fw"));
        assert_eq!(
            s.log_file(),
            PathBuf::from("/home/u/.local/state/labserv/log/fw.log")
        );
        assert_eq!(s.pid_file(), PathBuf::from("/run/user/1000/labserv/fw.pid"));
    }

    #[test]
    fn pid_falls_back_to_cache_without_runtime_dir() {
        let mut d = dirs();
        d.runtime = None;
        let s = Settings::from_lookup(|_| None, d, Defaults::HTTP).unwrap();
        assert_eq!(
            s.pid_file(),
            PathBuf::from("/home/u/.cache/labserv/httpd.pid")
        );
    }

    #[test]
    fn ipv6_and_bracketed_addresses_parse() {
        let s = settings(&[("IFACE", "[::1]")]).unwrap();
        assert_eq!(s.iface(), Some("::1".parse().unwrap()));
        let s = settings(&[("IFACE", "192.168.7.2")]).unwrap();
        assert_eq!(s.iface(), Some("192.168.7.2".parse().unwrap()));
    }

    #[test]
    fn bad_values_name_the_variable_and_value() {
        for (name, value) in [
            ("PORT", "abc"),
            ("PORT", "70000"),
            ("PORT", "-1"),
            ("SOCK_TIMEOUT", "-1"),
            ("SOCK_TIMEOUT", "0"),
            ("SOCK_TIMEOUT", "NaN"),
            ("SOCK_TIMEOUT", "inf"),
            ("IFACE", "not-an-address"),
            ("DEBUG", "maybe"),
            ("LPNAME", "../etc"),
            ("IDEV", "eth 0"),
        ] {
            let err = settings(&[(name, value)]).unwrap_err();
            assert_eq!(err.name, name);
            assert_eq!(err.value, value);
            let line = err.to_string();
            assert!(
                line.starts_with(&format!("invalid {name}=\"{value}\"")),
                "{line}"
            );
            assert!(!line.contains('\n'));
        }
    }

    #[test]
    fn report_lists_every_variable_and_marks_defaults() {
        let s = settings(&[("PORT", "9000")]).unwrap();
        let report = s.report("serv");
        for name in VARIABLES {
            assert!(report.contains(&format!("  {name:<12} ")), "{name} missing");
        }
        assert!(report.contains("PORT         9000\n"), "{report}");
        assert!(report.contains("IDEV         lo  (default)"), "{report}");
        assert!(report.contains("runtime  /run/user/1000"), "{report}");
    }
}
