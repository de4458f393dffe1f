//! Typed options back to the command line that parses into them, for daemontui, which
//! runs the daemon binaries as a user would. A round-trip test keeps this in step with
//! the parser.

use std::ffi::OsString;
use std::time::Duration;

use super::values::given;
use super::{ListenArgs, LogArgs, ServOptions, TftpdOptions};
use crate::server::faults::DropAfter;
use crate::server::gate::AuthScope;

/// Collects arguments.
#[derive(Default)]
struct Line(Vec<OsString>);

impl Line {
    fn flag(&mut self, on: bool, name: &str) {
        if on {
            self.0.push(name.into());
        }
    }

    fn value(&mut self, name: &str, value: Option<impl Into<OsString>>) {
        if let Some(value) = value {
            self.0.push(name.into());
            self.0.push(value.into());
        }
    }

    fn seconds(&mut self, name: &str, value: Option<Duration>) {
        self.value(name, value.map(|d| d.as_secs_f64().to_string()));
    }

    fn listen(&mut self, listen: &ListenArgs) {
        self.value("--host", given(listen.host).map(|h| h.to_string()));
        self.value("--port", given(listen.port).map(|p| p.to_string()));
    }

    fn log(&mut self, log: &LogArgs) {
        self.flag(log.verbose, "--verbose");
        self.flag(log.quiet, "--quiet");
        self.value("--slow", log.slow.map(|d| format!("{}ms", d.as_millis())));
    }
}

impl ServOptions {
    /// The arguments that parse into these options.
    pub fn to_args(&self) -> Vec<OsString> {
        let mut line = Line::default();
        line.listen(&self.listen);
        line.value("--directory", self.directory.clone());
        line.flag(self.no_follow_symlinks, "--no-follow-symlinks");
        line.flag(self.dotfiles, "--dotfiles");
        for (option, values) in [
            ("--only", &self.only),
            ("--hide", &self.hide),
            ("--read-only", &self.read_only),
        ] {
            for value in values {
                line.value(option, Some(value.as_str()));
            }
        }
        for user in &self.gate.auth {
            line.value("--auth", Some(user.as_str()));
        }
        if !self.gate.auth.is_empty() && self.gate.auth_scope == AuthScope::Writes {
            line.value("--auth-scope", Some("writes"));
        }
        line.flag(self.gate.cors, "--cors");
        for host in &self.gate.allow_host {
            line.value("--allow-host", Some(host.as_str()));
        }
        if self.gate.max_conns_per_client != crate::server::gate::DEFAULT_MAX_CONNS_PER_CLIENT {
            line.value(
                "--max-conns-per-client",
                Some(self.gate.max_conns_per_client.to_string()),
            );
        }
        if self.gate.max_conns != crate::server::gate::DEFAULT_MAX_CONNS {
            line.value("--max-conns", Some(self.gate.max_conns.to_string()));
        }
        line.flag(self.qr, "--qr");
        line.flag(self.upload, "--upload");
        line.flag(self.overwrite, "--overwrite");
        line.value("--max-upload", self.max_upload.map(|n| n.to_string()));
        line.value("--min-free", self.min_free.map(|n| n.to_string()));
        line.flag(self.cross_site_uploads, "--cross-site-uploads");
        line.flag(self.tls.tls, "--tls");
        line.value("--cert", self.tls.cert.clone());
        line.value("--key", self.tls.key.clone());
        line.flag(self.tls.tls_rsa, "--tls-rsa");
        line.value(
            "--limit-rate",
            self.faults.limit_rate.map(|r| r.to_string()),
        );
        line.value(
            "--drop-after",
            self.faults.drop_after.map(|d| match d {
                DropAfter::Bytes(n) => n.to_string(),
                DropAfter::Percent(p) => format!("{p}%"),
            }),
        );
        line.value(
            "--fail-every",
            self.faults.fail_every.map(|n| n.to_string()),
        );
        line.value(
            "--delay",
            self.faults.delay.map(|d| format!("{}ms", d.as_millis())),
        );
        line.log(&self.log);
        line.0
    }
}

impl TftpdOptions {
    /// The arguments that parse into these options.
    pub fn to_args(&self) -> Vec<OsString> {
        let mut line = Line::default();
        line.listen(&self.listen);
        line.seconds("--ack-timeout", Some(self.ack_timeout));
        line.seconds("--conn-timeout", given(self.conn_timeout));
        line.value("--directory", self.directory.clone());
        line.value("--max-blksize", Some(self.max_blksize.to_string()));
        line.value("--max-window", Some(self.max_window.to_string()));
        line.value("--max-per-client", Some(self.max_per_client.to_string()));
        line.flag(self.upload, "--upload");
        line.flag(self.overwrite, "--overwrite");
        line.value("--max-upload", self.max_upload.map(|n| n.to_string()));
        line.value("--min-free", self.min_free.map(|n| n.to_string()));
        line.value(
            "--loss",
            self.loss.map(|l| (f64::from(l.0) / 100.0).to_string()),
        );
        line.value(
            "--delay",
            self.packet_delay.map(|d| format!("{}ms", d.as_millis())),
        );
        line.value("--seed", self.seed.map(|s| s.to_string()));
        line.log(&self.log);
        line.0
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::super::values::Given;
    use super::super::{FaultArgs, HttpDaemonArgs, TftpDaemonArgs, TlsArgs};
    use super::*;

    #[test]
    fn options_survive_the_round_trip_through_a_command_line() {
        let listen = ListenArgs {
            host: Some(Given(Some("10.42.0.1".parse().unwrap()))),
            port: Some(Given(Some(6969))),
        };
        let serv = ServOptions {
            listen: listen.clone(),
            directory: Some("/srv/fw images".into()),
            no_follow_symlinks: true,
            dotfiles: true,
            only: vec!["*.img,*.bin".into(), "fw/*.swu".into()],
            hide: vec!["secret*".into()],
            read_only: vec!["golden".into()],
            upload: true,
            overwrite: true,
            max_upload: Some(1 << 20),
            min_free: Some(0),
            cross_site_uploads: true,
            gate: super::super::GateArgs {
                auth: vec!["lab:secret".into(), "ci:pass word".into()],
                auth_scope: AuthScope::Writes,
                cors: true,
                allow_host: vec!["lab-host.example".into()],
                max_conns_per_client: 64,
                max_conns: 512,
            },
            qr: true,
            tls: TlsArgs {
                tls: true,
                cert: Some("/etc/lab/cert.pem".into()),
                key: Some("/etc/lab/key.pem".into()),
                tls_rsa: false,
            },
            faults: FaultArgs {
                limit_rate: Some(100 * 1024),
                drop_after: Some(DropAfter::Percent(50)),
                fail_every: Some(3),
                delay: Some(Duration::from_millis(250)),
            },
            log: LogArgs {
                verbose: true,
                quiet: false,
                slow: Some(Duration::from_millis(1500)),
            },
        };
        let parsed = HttpDaemonArgs::try_parse_from(
            ["httpdaemon", "status"]
                .map(OsString::from)
                .into_iter()
                .chain(serv.to_args()),
        )
        .unwrap();
        assert_eq!(parsed.options, serv);

        let tftp = TftpdOptions {
            listen,
            ack_timeout: Duration::from_millis(250),
            conn_timeout: Some(Given(Some(Duration::from_secs(7)))),
            directory: Some("/srv/tftp".into()),
            max_blksize: 1468,
            max_window: 16,
            max_per_client: 4,
            upload: true,
            overwrite: true,
            max_upload: Some(64 << 20),
            min_free: Some(2 << 30),
            loss: Some(crate::tftp::Loss(250)),
            packet_delay: Some(Duration::from_millis(20)),
            seed: Some(42),
            log: LogArgs {
                verbose: false,
                quiet: true,
                slow: None,
            },
        };
        let parsed = TftpDaemonArgs::try_parse_from(
            ["tftpdaemon", "status"]
                .map(OsString::from)
                .into_iter()
                .chain(tftp.to_args()),
        )
        .unwrap();
        assert_eq!(parsed.options, tftp);
    }
}
