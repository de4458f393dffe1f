//! `Range: bytes=...` parsing (RFC 9110 section 14), resolved against a file's length.

use std::ops::Range;

/// More ranges than this in one request are not worth honouring: the whole file is sent.
pub(crate) const MAX_RANGES: usize = 64;

/// What a Range header asks of a file of known length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ranges {
    /// Send the whole file with 200 (no header, a syntax error, another unit, too many ranges).
    Whole,
    /// Send these byte ranges with 206, each non-empty and inside the file.
    Partial(Vec<Range<u64>>),
    /// Nothing asked for is inside the file: 416.
    Unsatisfiable,
}

/// Resolves a Range header value against a file of `len` bytes.
///
/// Never returns a range outside `0..len`. A header that does not parse is ignored, as the
/// RFC asks; ranges past the end are dropped, and the request is unsatisfiable only when
/// none is left. Overlapping ranges are merged, so a request cannot make the server send
/// the same bytes many times over.
pub(crate) fn parse(header: &str, len: u64) -> Ranges {
    let Some((unit, specs)) = header.split_once('=') else {
        return Ranges::Whole;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return Ranges::Whole;
    }
    let mut ranges = Vec::new();
    let mut count = 0;
    for spec in specs.split(',') {
        let spec = spec.trim();
        if spec.is_empty() {
            // Empty list elements are allowed by the list syntax.
            continue;
        }
        count += 1;
        if count > MAX_RANGES {
            return Ranges::Whole;
        }
        let Some((first, last)) = spec.split_once('-') else {
            return Ranges::Whole;
        };
        let (first, last) = (first.trim(), last.trim());
        let resolved = if first.is_empty() {
            // Suffix range: the last N bytes.
            let Some(n) = number(last) else {
                return Ranges::Whole;
            };
            (n > 0 && len > 0).then(|| len - n.min(len)..len)
        } else {
            let Some(start) = number(first) else {
                return Ranges::Whole;
            };
            let end = if last.is_empty() {
                len
            } else {
                let Some(end) = number(last) else {
                    return Ranges::Whole;
                };
                if end < start {
                    return Ranges::Whole;
                }
                end.saturating_add(1).min(len)
            };
            (start < len).then_some(start..end)
        };
        ranges.extend(resolved);
    }
    if count == 0 {
        return Ranges::Whole;
    }
    if ranges.is_empty() {
        return Ranges::Unsatisfiable;
    }
    Ranges::Partial(merge_overlaps(ranges))
}

/// Digits only: no sign, no spaces inside, no overflow.
fn number(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Keeps the client's order unless ranges overlap; then sorts and merges them.
fn merge_overlaps(mut ranges: Vec<Range<u64>>) -> Vec<Range<u64>> {
    let mut sorted = ranges.clone();
    sorted.sort_by_key(|r| r.start);
    let overlapping = sorted.windows(2).any(|w| w[1].start < w[0].end);
    if !overlapping {
        return ranges;
    }
    ranges.clear();
    for r in sorted {
        match ranges.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => ranges.push(r),
        }
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partial(header: &str, len: u64) -> Vec<Range<u64>> {
        match parse(header, len) {
            Ranges::Partial(r) => r,
            other => panic!("{header}: {other:?}"),
        }
    }

    #[test]
    fn single_ranges() {
        assert_eq!(partial("bytes=0-99", 1000), vec![0..100]);
        assert_eq!(partial("bytes=500-", 1000), vec![500..1000]);
        assert_eq!(partial("bytes=900-5000", 1000), vec![900..1000]);
        assert_eq!(partial("bytes=999-999", 1000), vec![999..1000]);
        assert_eq!(partial("BYTES = 1-2", 1000), vec![1..3]);
    }

    #[test]
    fn suffix_ranges() {
        assert_eq!(partial("bytes=-500", 1000), vec![500..1000]);
        assert_eq!(partial("bytes=-5000", 1000), vec![0..1000]);
        assert_eq!(parse("bytes=-0", 1000), Ranges::Unsatisfiable);
        assert_eq!(parse("bytes=-5", 0), Ranges::Unsatisfiable);
    }

    #[test]
    fn multiple_ranges_keep_order_unless_they_overlap() {
        assert_eq!(partial("bytes=500-599, 0-99", 1000), vec![500..600, 0..100]);
        assert_eq!(
            partial("bytes=0-99,50-149,-10", 1000),
            vec![0..150, 990..1000]
        );
        assert_eq!(partial("bytes=0-99,2000-3000", 1000), vec![0..100]);
    }

    #[test]
    fn unsatisfiable_when_nothing_is_inside() {
        assert_eq!(parse("bytes=1000-", 1000), Ranges::Unsatisfiable);
        assert_eq!(parse("bytes=1000-2000,3000-", 1000), Ranges::Unsatisfiable);
        assert_eq!(parse("bytes=0-0", 0), Ranges::Unsatisfiable);
    }

    #[test]
    fn malformed_headers_are_ignored() {
        for h in [
            "bytes",
            "items=0-1",
            "bytes=",
            "bytes=a-b",
            "bytes=5-1",
            "bytes=--1",
            "bytes=1",
            "bytes=+1-2",
            "bytes=0-18446744073709551616",
            "bytes= - ",
        ] {
            assert_eq!(parse(h, 1000), Ranges::Whole, "{h}");
        }
        let many = format!("bytes={}", vec!["0-0"; MAX_RANGES + 1].join(","));
        assert_eq!(parse(&many, 1000), Ranges::Whole);
    }

    #[test]
    fn huge_end_is_clamped_without_overflow() {
        assert_eq!(partial("bytes=0-18446744073709551615", 10), vec![0..10]);
    }
}
