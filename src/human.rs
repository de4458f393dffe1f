//! Numbers as people read them.

/// A byte count in binary units: `512 bytes`, `100 KiB`, `1.5 MiB`, `4 GiB` (one decimal
/// unless whole).
pub(crate) fn bytes(n: u64) -> String {
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
            return if tenths.fract() == 0.0 {
                format!("{tenths:.0} {unit}")
            } else {
                format!("{tenths:.1} {unit}")
            };
        }
    }
    if n == 1 {
        "1 byte".to_string()
    } else {
        format!("{n} bytes")
    }
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
