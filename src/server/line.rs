//! What is done to a request's first line before hyper parses it.
//!
//! - Its own limit. hyper only knows the size of a whole request head, and answers 431 when
//!   it is too big; a request line that is too long is the URI's fault and gets
//!   `414 URI Too Long`, as nginx and python's http.server answer it.
//! - A target without its leading slash (`GET sub/fw.img HTTP/1.1`, as some OTA clients
//!   send) gets one, as python's http.server reads it. hyper would refuse it with 400:
//!   such a target is neither a path nor an absolute URL.

/// The longest request line accepted. nginx allows 8 KiB by default and python's
/// http.server 64 KiB; signed firmware URLs run to a few KiB. It stays below the 64 KiB
/// head limit, so a long URI is caught here before hyper calls the head too large.
pub(crate) const MAX_REQUEST_LINE: usize = 32 * 1024;

/// The answer to a request line past [`MAX_REQUEST_LINE`].
pub(crate) const URI_TOO_LONG: &[u8] = b"HTTP/1.1 414 URI Too Long\r\n\
content-type: text/plain; charset=utf-8\r\ncontent-length: 17\r\nconnection: close\r\n\r\n\
414 URI Too Long\n";

/// Where the first line of the request head being read has got.
#[derive(Debug, Default)]
pub(crate) struct RequestLine {
    len: usize,
    done: bool,
    target: Target,
}

/// How far the look for a target without its leading slash has got.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// Before the method (blank lines may come first).
    #[default]
    Start,
    /// In the method.
    Method,
    /// The space after the method was the last byte read; the target comes next.
    Next,
    /// Decided, one way or the other.
    Seen,
}

/// What to do with bytes just read.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Look {
    /// The head's first line is past [`MAX_REQUEST_LINE`].
    pub(crate) too_long: bool,
    /// A `/` belongs before the byte at this offset of what was read.
    pub(crate) slash_at: Option<usize>,
}

impl RequestLine {
    /// Looks at bytes read while no request runs (`fresh` when they begin a new head).
    pub(crate) fn look(&mut self, fresh: bool, bytes: &[u8]) -> Look {
        if fresh {
            *self = Self::default();
        }
        if self.done {
            return Look::default();
        }
        let slash_at = self.find_slashless(bytes);
        let too_long = match bytes.iter().position(|&b| b == b'\n') {
            Some(end) => {
                self.done = true;
                self.len + end > MAX_REQUEST_LINE
            }
            None => {
                self.len += bytes.len();
                self.len > MAX_REQUEST_LINE
            }
        };
        Look { too_long, slash_at }
    }

    /// Walks the method (a few bytes) up to the target, and says whether the target needs
    /// a leading slash.
    fn find_slashless(&mut self, bytes: &[u8]) -> Option<usize> {
        for (i, &b) in bytes.iter().enumerate() {
            match self.target {
                Target::Seen => return None,
                Target::Start if b == b'\r' || b == b'\n' => {}
                Target::Start | Target::Method if b == b'\n' => self.target = Target::Seen,
                Target::Start | Target::Method if b == b' ' => self.target = Target::Next,
                Target::Start => self.target = Target::Method,
                Target::Method => {}
                Target::Next => {
                    self.target = Target::Seen;
                    return needs_slash(&bytes[i..]).then_some(i);
                }
            }
        }
        None
    }
}

/// Whether a request target (as far as it has been read) is a bare relative path:
/// not `/path`, not `*`, and not `scheme://…` or `host:port`, whose `:` comes before any
/// `/` or `?`. The last two are hyper's to read.
fn needs_slash(target: &[u8]) -> bool {
    match target.first() {
        None | Some(b'/' | b'*' | b' ' | b'\r' | b'\n') => false,
        Some(_) => {
            let stop = target
                .iter()
                .position(|b| matches!(b, b':' | b'/' | b'?' | b'#' | b' ' | b'\r' | b'\n'));
            stop.is_none_or(|at| target[at] != b':')
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_first_line_of_a_head_counts() {
        let mut line = RequestLine::default();
        assert!(
            !line
                .look(true, b"GET /fw.img HTTP/1.1\r\nX-Long: ")
                .too_long
        );
        // A long header line is hyper's to judge (431), not a long URI.
        assert!(!line.look(false, &vec![b'a'; MAX_REQUEST_LINE * 2]).too_long);
        let long = vec![b'a'; MAX_REQUEST_LINE / 2 + 1];
        assert!(!line.look(true, &long).too_long);
        assert!(line.look(false, &long).too_long);
        // The next head starts afresh.
        assert!(!line.look(true, b"GET / HTTP/1.1\r\n").too_long);
    }

    fn slash(parts: &[&[u8]]) -> Vec<Option<usize>> {
        let mut line = RequestLine::default();
        parts
            .iter()
            .enumerate()
            .map(|(i, part)| line.look(i == 0, part).slash_at)
            .collect()
    }

    #[test]
    fn a_bare_relative_target_gets_a_slash() {
        assert_eq!(slash(&[b"GET fw.img HTTP/1.1\r\n"]), [Some(4)]);
        assert_eq!(slash(&[b"GET sub/fw.img?v=2 HTTP/1.1\r\n"]), [Some(4)]);
        assert_eq!(slash(&[b"\r\nHEAD a HTTP/1.0\r\n"]), [Some(7)]);
        // The target may begin in the next read.
        assert_eq!(slash(&[b"GET ", b"fw.img HTTP/1.1\r\n"]), [None, Some(0)]);
        assert_eq!(slash(&[b"GE", b"T fw"]), [None, Some(2)]);
    }

    #[test]
    fn other_targets_are_left_alone() {
        for line in [
            &b"GET /fw.img HTTP/1.1\r\n"[..],
            b"OPTIONS * HTTP/1.1\r\n",
            b"GET http://10.0.0.2:8080/fw.img HTTP/1.1\r\n",
            b"CONNECT 10.0.0.2:443 HTTP/1.1\r\n",
            b"GET  /two-spaces HTTP/1.1\r\n",
            b"garbage\r\n",
        ] {
            assert_eq!(slash(&[line]), [None], "{}", String::from_utf8_lossy(line));
        }
        // Only the first line of a head is looked at.
        assert_eq!(
            slash(&[b"GET /a HTTP/1.1\r\n", b"X: y z\r\n"]),
            [None, None]
        );
    }
}
