//! Settings from a made-up environment: defaults, values, bad values, the report.

use super::*;
use std::collections::HashMap;

fn dirs() -> UserDirs {
    UserDirs {
        state: Some("/home/u/.local/state".into()),
        runtime: Some("/run/user/1000".into()),
        cache: Some("/home/u/.cache".into()),
        data: Some("/home/u/.local/share".into()),
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
