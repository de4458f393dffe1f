//! The access lines' time stamp.

use std::time::{Duration, UNIX_EPOCH};

use super::access::Stamp;

#[test]
fn the_access_timestamp_reads_as_the_other_lines_do() {
    let mut stamp = Stamp {
        second: u64::MAX,
        text: String::new(),
    };
    let base = UNIX_EPOCH + Duration::from_secs(1_796_256_000);
    // Within one second (the cached part reused), across seconds, and microseconds
    // that need leading zeros.
    for micros in [0, 7, 42_000, 999_999, 1_000_000, 1_000_123, 61_500_000] {
        let at = base + Duration::from_micros(micros);
        let mut line = String::new();
        stamp.write(&mut line, at);
        assert_eq!(line, humantime::format_rfc3339_micros(at).to_string());
    }
}
