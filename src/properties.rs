//! Property tests (proptest) of the parsers that read what clients, scripts and users
//! send: HTTP request paths, Range headers, TFTP file names, CGI header blocks and the
//! environment. Each property holds for any input, hostile or not.
//!
//! `cargo test` runs 256 cases of each (a few seconds in all); a longer run is
//! `PROPTEST_CASES=100000 cargo test --release --lib properties`.

use std::ffi::OsString;
use std::io::Cursor;
use std::path::{Component, Path};

use proptest::prelude::*;

use crate::confine::{Symlinks, confine};
use crate::http::decode_path;
use crate::http::ranges::{self, Ranges};
use crate::settings::{Defaults, Settings, UserDirs, VARIABLES};
use crate::tftp::handler;
use crate::wsgi::cgi;

/// Path segments that have broken file servers: traversal in every spelling, separators,
/// NUL, and encodings of them, mixed with ordinary names and arbitrary text.
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("..".to_string()),
        Just("%2e%2e".to_string()),
        Just("%2E.".to_string()),
        Just(".%2e".to_string()),
        Just("%252e%252e".to_string()),
        Just(".".to_string()),
        Just(String::new()),
        Just("%00".to_string()),
        Just("%5c..".to_string()),
        Just("..\\..".to_string()),
        Just("%2f..".to_string()),
        Just("%c0%ae%c0%ae".to_string()),
        "[a-zA-Z0-9._~-]{1,12}",
        proptest::collection::vec(any::<u8>(), 0..6)
            .prop_map(|bytes| bytes.iter().map(|b| format!("%{b:02x}")).collect()),
        any::<String>(),
    ]
}

fn request_path() -> impl Strategy<Value = String> {
    proptest::collection::vec(segment(), 0..10).prop_map(|s| format!("/{}", s.join("/")))
}

/// A Range header: well-formed specs, broken ones, huge numbers and arbitrary text.
fn range_header() -> impl Strategy<Value = String> {
    let number = prop_oneof![
        (0u64..2_000).prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        Just("18446744073709551616".to_string()),
        Just(String::new()),
        Just("-1".to_string()),
        Just(" 7 ".to_string()),
        "[0-9a-z+]{0,4}",
    ];
    let spec = (
        number.clone(),
        number,
        prop_oneof![Just("-"), Just("--"), Just("")],
    )
        .prop_map(|(a, b, dash)| format!("{a}{dash}{b}"));
    prop_oneof![
        4 => (
            prop_oneof![Just("bytes"), Just("BYTES"), Just("items"), Just(" bytes ")],
            proptest::collection::vec(spec, 0..70),
        )
            .prop_map(|(unit, specs)| format!("{unit}={}", specs.join(","))),
        1 => any::<String>(),
    ]
}

/// A CGI header block: plausible lines and broken ones, then maybe a body.
fn cgi_output() -> impl Strategy<Value = Vec<u8>> {
    let line = prop_oneof![
        Just("Content-Type: text/plain".to_string()),
        Just("Status: 404 Not Found".to_string()),
        Just("Status: banana".to_string()),
        Just("Location: /elsewhere".to_string()),
        Just("X-Split: a\rInjected: yes".to_string()),
        Just("no colon here".to_string()),
        Just(": empty name".to_string()),
        "[A-Za-z-]{1,10}: [ -~]{0,20}",
        any::<String>(),
    ];
    let ending = prop_oneof![Just("\n"), Just("\r\n"), Just("")];
    (
        proptest::collection::vec((line, ending), 0..12),
        any::<bool>(),
        proptest::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(lines, blank, body)| {
            let mut out = Vec::new();
            for (line, end) in lines {
                out.extend_from_slice(line.as_bytes());
                out.extend_from_slice(end.as_bytes());
            }
            if blank {
                out.extend_from_slice(b"\r\n");
            }
            out.extend(body);
            out
        })
}

/// A value for an environment variable: what the variable expects, near misses, and
/// arbitrary text.
fn env_value() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u32..70_000).prop_map(|n| n.to_string()),
        Just("0.5".to_string()),
        Just("-1".to_string()),
        Just("NaN".to_string()),
        Just("inf".to_string()),
        Just("1e400".to_string()),
        Just("::1".to_string()),
        Just("[::]".to_string()),
        Just("0.0.0.0".to_string()),
        Just("..".to_string()),
        Just("a/b".to_string()),
        Just("yes".to_string()),
        Just(String::new()),
        any::<String>(),
    ]
}

proptest! {
    #[test]
    fn any_name_is_confined_below_the_root_or_refused(name in proptest::collection::vec(any::<u8>(), 0..64)) {
        let root = Path::new("/srv/fw");
        for symlinks in [Symlinks::Follow, Symlinks::StayInside] {
            if let Ok(full) = confine(root, &name, symlinks) {
                let rel = full.strip_prefix(root).expect("below the root");
                prop_assert!(rel.components().all(|c| matches!(c, Component::Normal(_))), "{rel:?}");
                let bytes = rel.as_os_str().as_encoded_bytes();
                prop_assert!(!bytes.contains(&0) && !bytes.contains(&b'\\'));
            }
        }
    }

    #[test]
    fn http_paths_resolve_below_the_root_or_are_refused(path in request_path()) {
        let root = Path::new("/srv/fw");
        if let Ok(full) = confine(root, &decode_path(&path), Symlinks::Follow) {
            let rel = full.strip_prefix(root).expect("below the root");
            prop_assert!(rel.components().all(|c| matches!(c, Component::Normal(_))), "{rel:?}");
            let bytes = rel.as_os_str().as_encoded_bytes();
            prop_assert!(!bytes.contains(&0) && !bytes.contains(&b'\\'));
        }
    }

    #[test]
    fn ranges_never_leave_the_file(header in range_header(), len in prop_oneof![Just(0u64), 0u64..5_000, any::<u64>()]) {
        if let Ranges::Partial(list) = ranges::parse(&header, len) {
            prop_assert!(!list.is_empty());
            prop_assert!(list.len() <= ranges::MAX_RANGES);
            for r in &list {
                prop_assert!(r.start < r.end && r.end <= len, "{r:?} of {len} from {header:?}");
            }
            // Merged: no byte is sent twice.
            let mut sorted = list.clone();
            sorted.sort_by_key(|r| r.start);
            for pair in sorted.windows(2) {
                prop_assert!(pair[0].end <= pair[1].start, "{list:?}");
            }
        }
    }

    #[test]
    fn a_valid_single_range_is_served_exactly(len in 1u64..10_000_000, a in any::<u64>(), span in any::<u64>()) {
        let start = a % len;
        let last = start.saturating_add(span % 4096).min(len - 1);
        let got = ranges::parse(&format!("bytes={start}-{last}"), len);
        let want: Vec<_> = std::iter::once(start..last + 1).collect();
        prop_assert_eq!(got, Ranges::Partial(want));
    }

    #[test]
    fn tftp_names_resolve_below_the_root_or_are_refused(name in request_path()) {
        let root = Path::new("/srv/tftp");
        // TFTP names are not percent-encoded: take the text as the client sent it.
        let requested = name.trim_start_matches('/');
        for asked in [requested, name.as_str()] {
            if let Ok(full) = handler::resolve(root, Path::new(asked)) {
                prop_assert!(full.starts_with(root));
                prop_assert!(full.strip_prefix(root).unwrap().components().all(|c| matches!(c, Component::Normal(_))));
                prop_assert!(full != root, "an empty name is refused");
            }
        }
    }

    #[test]
    fn cgi_header_blocks_parse_into_clean_headers_or_fail(output in cgi_output()) {
        let parsed: Result<(String, Vec<(String, String)>), String> = cgi::read_head(&mut Cursor::new(output));
        match parsed {
            Ok((status, headers)) => {
                let clean = |s: &str| !s.chars().any(|c| c.is_control() && c != '\t');
                prop_assert!(clean(&status), "{status:?}");
                prop_assert!(!headers.is_empty());
                for (name, value) in &headers {
                    prop_assert!(clean(name) && clean(value), "{name:?}: {value:?}");
                    prop_assert!(!name.contains(':'));
                }
                prop_assert!(headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("content-type")));
            }
            Err(why) => prop_assert!(!why.is_empty()),
        }
    }

    #[test]
    fn settings_accept_good_values_and_name_the_bad_one(values in proptest::collection::vec((0..VARIABLES.len(), env_value()), 0..12)) {
        let lookup = |name: &str| {
            values
                .iter()
                .rev()
                .find(|(i, _)| VARIABLES[*i] == name)
                .map(|(_, v)| OsString::from(v))
        };
        for defaults in [Defaults::HTTP, Defaults::TFTP, Defaults::WSGI] {
            match Settings::from_lookup(lookup, UserDirs::default(), defaults) {
                Ok(s) => {
                    prop_assert!(s.sock_timeout > std::time::Duration::ZERO);
                    let lpname = s.lpname();
                    prop_assert!(!lpname.is_empty() && !lpname.contains('/') && lpname != "..");
                    prop_assert!(s.pid_file().file_name().is_some());
                    prop_assert!(s.log_file().file_name().is_some());
                }
                Err(e) => {
                    let text = e.to_string();
                    prop_assert!(text.starts_with("invalid "), "{text}");
                    prop_assert!(VARIABLES.contains(&e.name.as_str()), "{text}");
                }
            }
        }
    }
}
