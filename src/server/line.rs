//! The request line's own limit. hyper only knows the size of a whole request head, and
//! answers 431 when it is too big; a request line that is too long is the URI's fault and
//! gets `414 URI Too Long`, as nginx and python's http.server answer it.

/// The longest request line accepted. nginx allows 8 KiB by default and python's
/// http.server 64 KiB; signed firmware URLs run to a few KiB. It stays below the 64 KiB
/// head limit, so a long URI is caught here before hyper calls the head too large.
pub(crate) const MAX_REQUEST_LINE: usize = 32 * 1024;

/// The answer to a request line past [`MAX_REQUEST_LINE`].
pub(crate) const URI_TOO_LONG: &[u8] = b"HTTP/1.1 414 URI Too Long\r\n\
content-type: text/plain; charset=utf-8\r\ncontent-length: 17\r\nconnection: close\r\n\r\n\
414 URI Too Long\n";

/// How far the first line of the request head being read has got.
#[derive(Debug, Default)]
pub(crate) struct RequestLine {
    len: usize,
    done: bool,
}

impl RequestLine {
    /// Looks at bytes read while no request runs (`fresh` when they begin a new head);
    /// true once the head's first line is past the limit.
    pub(crate) fn too_long(&mut self, fresh: bool, bytes: &[u8]) -> bool {
        if fresh {
            *self = Self::default();
        }
        if self.done {
            return false;
        }
        match bytes.iter().position(|&b| b == b'\n') {
            Some(end) => {
                self.done = true;
                self.len + end > MAX_REQUEST_LINE
            }
            None => {
                self.len += bytes.len();
                self.len > MAX_REQUEST_LINE
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_first_line_of_a_head_counts() {
        let mut line = RequestLine::default();
        assert!(!line.too_long(true, b"GET /fw.img HTTP/1.1\r\nX-Long: "));
        // A long header line is hyper's to judge (431), not a long URI.
        assert!(!line.too_long(false, &vec![b'a'; MAX_REQUEST_LINE * 2]));
        let long = vec![b'a'; MAX_REQUEST_LINE / 2 + 1];
        assert!(!line.too_long(true, &long));
        assert!(line.too_long(false, &long));
        // The next head starts afresh.
        assert!(!line.too_long(true, b"GET / HTTP/1.1\r\n"));
    }
}
