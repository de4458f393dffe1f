//! Numbers as people read them.

/// A byte count in binary units: `512 bytes`, `100 KiB`, `1.5 MiB`, `4 GiB` (one decimal
/// unless whole).
pub(crate) fn bytes(n: u64) -> String {
    let mut out = String::new();
    write_bytes(&mut out, n);
    out
}

/// [`bytes()`], written onto the end of `out`.
pub(crate) fn write_bytes(out: &mut String, n: u64) {
    use std::fmt::Write as _;
    const UNITS: [(u64, &str); 4] = [
        (1 << 40, "TiB"),
        (1 << 30, "GiB"),
        (1 << 20, "MiB"),
        (1 << 10, "KiB"),
    ];
    for (size, unit) in UNITS {
        if n >= size {
            let value = n as f64 / size as f64;
            let tenths = (value * 10.0).round() / 10.0;
            let _ = if tenths.fract() == 0.0 {
                write!(out, "{tenths:.0} {unit}")
            } else {
                write!(out, "{tenths:.1} {unit}")
            };
            return;
        }
    }
    if n == 1 {
        out.push_str("1 byte");
    } else {
        let _ = write!(out, "{n} bytes");
    }
}

/// A digest in lower-case hex, as `sha256sum` prints it.
pub(crate) fn hex(digest: &[u8]) -> String {
    use std::fmt::Write as _;
    digest
        .iter()
        .fold(String::with_capacity(digest.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

/// A moment as an RFC 3339 UTC stamp to the second, `2026-11-22T18:31:54Z`; `None` outside
/// the years 0 to 9999 that the form can write. Times before 1970 are fine (a board without a
/// clock, an old tarball), unlike `humantime`'s and `httpdate`'s formatters, which panic.
pub(crate) fn utc_stamp(t: std::time::SystemTime) -> Option<[u8; 20]> {
    let secs = match t.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).ok()?,
        // Rounded down: half a second before 1970 is 1969-12-31T23:59:59Z.
        Err(e) => {
            let d = e.duration();
            0i64.checked_sub_unsigned(d.as_secs())?
                .checked_sub(i64::from(d.subsec_nanos() > 0))?
        }
    };
    let (day, second) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let mut out = *b"0000-00-00T00:00:00Z";
    out[..10].copy_from_slice(&date_of(day)?);
    digits(&mut out[11..13], second / 3600);
    digits(&mut out[14..16], second / 60 % 60);
    digits(&mut out[17..19], second % 60);
    Some(out)
}

/// Writes `value` in decimal into `out`, zero-padded to its width.
fn digits(out: &mut [u8], mut value: i64) {
    for digit in out.iter_mut().rev() {
        *digit = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// `YYYY-MM-DD` of a day counted from 1970-01-01. The files of one directory share few
/// days, so the last day asked for is remembered (per thread) and a listing works out the
/// calendar once per day rather than once per file.
fn date_of(day: i64) -> Option<[u8; 10]> {
    use std::cell::Cell;
    thread_local! {
        static LAST: Cell<Option<(i64, [u8; 10])>> = const { Cell::new(None) };
    }
    if let Some((last, date)) = LAST.get()
        && last == day
    {
        return Some(date);
    }
    let at = time::OffsetDateTime::from_unix_timestamp(day.checked_mul(86_400)?).ok()?;
    let year = u32::try_from(at.year()).ok().filter(|y| *y <= 9999)?;
    let mut date = *b"0000-00-00";
    digits(&mut date[..4], i64::from(year));
    digits(&mut date[5..7], i64::from(u8::from(at.month())));
    digits(&mut date[8..], i64::from(at.day()));
    LAST.set(Some((day, date)));
    Some(date)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    fn stamp(t: std::time::SystemTime) -> Option<String> {
        super::utc_stamp(t).map(|s| String::from_utf8_lossy(&s).into_owned())
    }

    #[test]
    fn stamps_cover_times_before_1970_and_refuse_what_four_digits_cannot_write() {
        let at = |secs: u64| UNIX_EPOCH + Duration::from_secs(secs);
        assert_eq!(stamp(at(0)).as_deref(), Some("1970-01-01T00:00:00Z"));
        assert_eq!(
            stamp(at(1_795_386_714)).as_deref(),
            Some("2026-11-22T22:31:54Z")
        );
        assert_eq!(
            stamp(at(951_782_400)).as_deref(),
            Some("2000-02-29T00:00:00Z")
        );
        let before = |secs: u64| UNIX_EPOCH - Duration::from_secs(secs);
        assert_eq!(stamp(before(1)).as_deref(), Some("1969-12-31T23:59:59Z"));
        assert_eq!(
            stamp(UNIX_EPOCH - Duration::from_millis(500)).as_deref(),
            Some("1969-12-31T23:59:59Z")
        );
        assert_eq!(
            stamp(before(315_619_200)).as_deref(),
            Some("1960-01-01T00:00:00Z")
        );
        assert_eq!(
            stamp(at(253_402_300_799)).as_deref(),
            Some("9999-12-31T23:59:59Z")
        );
        assert_eq!(stamp(at(253_402_300_800)), None);
    }

    #[test]
    fn sizes_read_as_people_say_them() {
        assert_eq!(super::bytes(0), "0 bytes");
        assert_eq!(super::bytes(1023), "1023 bytes");
        assert_eq!(super::bytes(1024), "1 KiB");
        assert_eq!(super::bytes(1_258_291), "1.2 MiB");
        assert_eq!(super::bytes(100 * 1024), "100 KiB");
        assert_eq!(super::bytes(4 << 30), "4 GiB");
        assert_eq!(super::bytes((1 << 20) - 1), "1024 KiB");
    }
}
