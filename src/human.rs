//! Numbers as people read them.

/// A byte count in binary units: `512 bytes`, `100 KiB`, `1.5 MiB`, `4 GiB` (one decimal
/// unless whole).
pub(crate) fn bytes(n: u64) -> String {
    let mut out = String::new();
    write_bytes(&mut out, n);
    out
}

/// [`bytes`], written onto the end of `out`.
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

#[cfg(test)]
mod tests {
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
