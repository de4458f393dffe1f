//! The settings form and the controls of both screens: what each field holds, the
//! interfaces offered, and what is wrong with the form. No drawing here.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use tui_input::Input;

use crate::cli::values::Given;
use crate::cli::{ListenArgs, LogArgs, ServOptions, TftpdOptions};
use crate::daemon::{DaemonOptions, Kind};
use crate::settings;

/// The daemons offered, in the order shown.
pub const DAEMONS: [Kind; 3] = [Kind::Tftp, Kind::Atftp, Kind::Http];

/// The listen address the form starts with: the daemons' own default. Listening on every
/// interface stays an explicit choice, here as everywhere.
pub const DEFAULT_LISTEN: &str = "127.0.0.1";

/// Which screen is showing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    /// Choose the daemon and its settings.
    Settings,
    /// Start, stop and follow it.
    Operations,
}

/// Every control a user can focus or click.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Item {
    /// The daemon choice.
    Daemon,
    /// The Debug checkbox.
    Debug,
    /// The Uploads checkbox.
    Upload,
    /// The Port field.
    Port,
    /// The Device list.
    Device,
    /// The Listen address field.
    Listen,
    /// The Directory field.
    Directory,
    /// Next: to the operations screen.
    Next,
    /// Cancel: quit.
    Cancel,
    /// Start the daemon.
    Start,
    /// Stop the daemon.
    Stop,
    /// Ask the daemon's status.
    Status,
    /// Stop the daemon and go back to the settings.
    Back,
    /// Stop the daemon and quit.
    Exit,
    /// The log pane (a place on screen, never focused).
    Log,
}

/// The settings screen's controls, in Tab order.
pub const SETTINGS_ITEMS: [Item; 9] = [
    Item::Daemon,
    Item::Debug,
    Item::Upload,
    Item::Port,
    Item::Device,
    Item::Listen,
    Item::Directory,
    Item::Next,
    Item::Cancel,
];

/// The operations screen's controls, in Tab order. The log pane is no stop: it scrolls
/// from any of them.
pub const OPERATION_ITEMS: [Item; 5] = [
    Item::Start,
    Item::Stop,
    Item::Status,
    Item::Back,
    Item::Exit,
];

impl Item {
    /// Whether the control is a text field (where `q` is a letter, not quit).
    pub fn is_text(self) -> bool {
        matches!(self, Item::Port | Item::Listen | Item::Directory)
    }
}

/// A network interface the Device list offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Its name (`eth0`).
    pub name: String,
    /// Its first IPv4 address, else its first IPv6 one.
    pub addr: Option<IpAddr>,
}

impl Device {
    /// This machine's interfaces, loopback included, sorted by name.
    pub fn detect() -> Vec<Device> {
        let mut devices: Vec<Device> = Vec::new();
        for iface in if_addrs::get_if_addrs().unwrap_or_default() {
            let ip = iface.ip();
            match devices.iter_mut().find(|d| d.name == iface.name) {
                Some(d) => {
                    if d.addr.is_none_or(|a| a.is_ipv6() && ip.is_ipv4()) {
                        d.addr = Some(ip);
                    }
                }
                None => devices.push(Device {
                    name: iface.name.clone(),
                    addr: Some(ip),
                }),
            }
        }
        devices.sort_by(|a, b| a.name.cmp(&b.name));
        devices
    }
}

/// The settings form.
#[derive(Debug, Clone)]
pub struct Form {
    /// Index into [`DAEMONS`].
    pub daemon: usize,
    /// Debug logging.
    pub debug: bool,
    /// Accept uploads (`--upload`): HTTP PUT and the listing's form, or TFTP write
    /// requests. Existing files are never replaced from here (no `--overwrite`).
    pub upload: bool,
    /// Port text.
    pub port: Input,
    /// The interfaces offered.
    pub devices: Vec<Device>,
    /// Index into `devices` of the one chosen.
    pub device: usize,
    /// Listen address text.
    pub listen: Input,
    /// Directory text.
    pub directory: Input,
}

impl Form {
    /// The chosen daemon.
    pub fn kind(&self) -> Kind {
        DAEMONS[self.daemon]
    }

    /// The typed options of the chosen daemon that the form describes. A field that does
    /// not parse is left unset; Next refuses such a form before any action runs.
    pub fn options(&self) -> DaemonOptions {
        let kind = self.kind();
        let directory = PathBuf::from(self.directory.value().trim());
        let directory = std::path::absolute(&directory).unwrap_or(directory);
        let listen = ListenArgs {
            host: Some(Given(
                settings::parse_addr("IFACE", self.listen.value()).ok(),
            )),
            port: Some(Given(settings::parse_port("PORT", self.port.value()).ok())),
        };
        let log = LogArgs {
            verbose: self.debug,
            ..LogArgs::default()
        };
        match kind {
            Kind::Http => DaemonOptions::Http(ServOptions {
                listen,
                directory: Some(directory),
                log,
                upload: self.upload,
                ..ServOptions::default()
            }),
            Kind::Tftp | Kind::Atftp => DaemonOptions::Tftp(TftpdOptions {
                listen,
                directory: Some(directory),
                log,
                upload: self.upload,
                ..TftpdOptions::default()
            }),
        }
    }

    /// The chosen device's name, if any.
    pub fn device_name(&self) -> Option<&str> {
        self.devices.get(self.device).map(|d| d.name.as_str())
    }
}

/// What is wrong with each field; `None` where the field is fine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Problems {
    /// The port.
    pub port: Option<&'static str>,
    /// The listen address.
    pub listen: Option<&'static str>,
    /// The directory.
    pub directory: Option<&'static str>,
}

impl Problems {
    /// Whether every field is fine.
    pub fn none(&self) -> bool {
        self.port.is_none() && self.listen.is_none() && self.directory.is_none()
    }
}

/// Checks the form's fields.
pub fn check(form: &Form) -> Problems {
    let port = match form.port.value().trim().parse::<u16>() {
        Ok(p) if p >= 1 => None,
        _ => Some("port must be 1 to 65535"),
    };
    let listen = settings::parse_addr("listen", form.listen.value())
        .err()
        .map(|_| "not an IP address");
    let dir = Path::new(form.directory.value().trim());
    let directory = if form.directory.value().trim().is_empty() || !dir.exists() {
        Some("no such directory")
    } else if !dir.is_dir() {
        Some("not a directory")
    } else {
        None
    };
    Problems {
        port,
        listen,
        directory,
    }
}
