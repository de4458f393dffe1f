//! Env-driven settings shared by every binary: the variables pyserv users already set.
//!
//! Values are read through an injected lookup function so tests never touch the
//! process environment. A variable that is set but empty counts as unset.

mod parse;

pub use parse::{
    SettingsError, parse_addr, parse_bool, parse_device, parse_lpname, parse_number, parse_port,
    parse_seconds, parse_size,
};

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
    /// `$XDG_DATA_HOME` or `~/.local/share`.
    pub data: Option<PathBuf>,
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
                data: Some(dirs.data_dir().to_path_buf()),
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

    /// `<data>/labserv/tls`, where `--tls` keeps the certificate it makes.
    pub fn tls_dir(&self) -> PathBuf {
        self.data
            .as_ref()
            .map(|d| d.join("labserv").join("tls"))
            .unwrap_or_else(|| fallback_dir().join("tls"))
    }

    /// `<cache>/labserv/ext`: where `wsgi APP` keeps the Python extension module its
    /// workers load, where they load it from a file (see `wsgi::python::portable`).
    pub fn ext_dir(&self) -> PathBuf {
        self.cache
            .as_ref()
            .map(|d| d.join("labserv").join("ext"))
            .unwrap_or_else(|| fallback_dir().join("ext"))
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

/// Where files go when the user has no home directory at all (a bare service account):
/// a folder of this user's own in the shared temporary directory (checked when made,
/// see `private::create_dir_all`).
fn fallback_dir() -> PathBuf {
    #[cfg(unix)]
    // SAFETY: geteuid has no preconditions and cannot fail.
    let name = format!("labserv-{}", unsafe { libc::geteuid() });
    #[cfg(not(unix))]
    let name = "labserv".to_string();
    std::env::temp_dir().join(name)
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
        let _ = writeln!(out, "  data     {}", show(&self.dirs.data));
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

#[cfg(test)]
mod tests;
