//! Replies for one version of a file: the whole of it, one range, or several as
//! `multipart/byteranges`, from memory or streamed from the open file.

use std::collections::hash_map::RandomState;
use std::fs::File;
use std::hash::{BuildHasher, Hasher};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, StatusCode};

use super::ranges::{self, Ranges};
use super::validators::{Validators, Verdict};
use crate::server::body::{FileStream, Segment};
use crate::server::{Body, status_page};

/// Where a file's bytes come from.
pub(crate) enum Source {
    /// The whole file, already in memory.
    Memory(Bytes),
    /// An open file, streamed.
    File(File),
}

impl Source {
    /// The bytes of `range`, as a body.
    fn body(self, range: std::ops::Range<u64>) -> Body {
        match self {
            Source::Memory(bytes) => Body::full(slice(&bytes, &range)),
            Source::File(file) => Body::File(FileStream::new(
                Some(file),
                vec![Segment::File {
                    offset: range.start,
                    len: range.end - range.start,
                }],
            )),
        }
    }
}

fn slice(bytes: &Bytes, range: &std::ops::Range<u64>) -> Bytes {
    let start = usize::try_from(range.start)
        .unwrap_or(usize::MAX)
        .min(bytes.len());
    let end = usize::try_from(range.end)
        .unwrap_or(usize::MAX)
        .min(bytes.len());
    bytes.slice(start..end.max(start))
}

/// Answers a GET or HEAD for one version of a file: 304, 412, 200, 206 or 416.
pub(crate) fn respond(
    req: &HeaderMap,
    source: Source,
    validators: &Validators,
    content_type: &HeaderValue,
    head: bool,
) -> Response<Body> {
    let len = validators.len;
    let honour_ranges = match validators.judge(req) {
        Verdict::PreconditionFailed => return status_page(StatusCode::PRECONDITION_FAILED),
        Verdict::NotModified => {
            let mut resp = Response::new(Body::Empty);
            *resp.status_mut() = StatusCode::NOT_MODIFIED;
            validators.insert(resp.headers_mut());
            return resp;
        }
        Verdict::Send { ranges } => ranges,
    };
    let ranges = match req.get(header::RANGE).and_then(|r| r.to_str().ok()) {
        Some(r) if honour_ranges => ranges::parse(r, len),
        _ => Ranges::Whole,
    };
    let (status, length, body, content_type) = match ranges {
        Ranges::Whole => {
            let body = if head {
                Body::Empty
            } else {
                source.body(0..len)
            };
            let length = validators.content_length.clone();
            (StatusCode::OK, length, body, content_type.clone())
        }
        Ranges::Unsatisfiable => {
            let mut resp = status_page(StatusCode::RANGE_NOT_SATISFIABLE);
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                resp.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return resp;
        }
        Ranges::Partial(list) if list.len() == 1 => {
            let r = list[0].clone();
            let mut resp = Response::new(if head {
                Body::Empty
            } else {
                source.body(r.clone())
            });
            *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
            let h = resp.headers_mut();
            h.insert(header::CONTENT_TYPE, content_type.clone());
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(r.end - r.start));
            h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
            if let Ok(v) = HeaderValue::from_str(&format!("bytes {}-{}/{len}", r.start, r.end - 1))
            {
                h.insert(header::CONTENT_RANGE, v);
            }
            validators.insert(h);
            return resp;
        }
        Ranges::Partial(list) => {
            let (stream, multipart) = multipart(source, &list, len, content_type);
            let total = stream.len();
            let body = if head {
                Body::Empty
            } else {
                Body::File(stream)
            };
            let length = HeaderValue::from(total);
            (StatusCode::PARTIAL_CONTENT, length, body, multipart)
        }
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, content_type);
    h.insert(header::CONTENT_LENGTH, length);
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    validators.insert(h);
    resp
}

/// A `multipart/byteranges` body for several ranges, and its Content-Type.
fn multipart(
    source: Source,
    list: &[std::ops::Range<u64>],
    len: u64,
    content_type: &HeaderValue,
) -> (FileStream, HeaderValue) {
    let boundary = format!("{:016x}", RandomState::new().build_hasher().finish());
    let part_type = content_type.to_str().unwrap_or("application/octet-stream");
    let mut segments = Vec::with_capacity(list.len() * 2 + 1);
    let (file, memory) = match source {
        Source::File(file) => (Some(file), None),
        Source::Memory(bytes) => (None, Some(bytes)),
    };
    for r in list {
        let part_head = format!(
            "\r\n--{boundary}\r\nContent-Type: {part_type}\r\nContent-Range: bytes {}-{}/{len}\r\n\r\n",
            r.start,
            r.end - 1
        );
        segments.push(Segment::Bytes(Bytes::from(part_head)));
        segments.push(match &memory {
            Some(bytes) => Segment::Bytes(slice(bytes, r)),
            None => Segment::File {
                offset: r.start,
                len: r.end - r.start,
            },
        });
    }
    segments.push(Segment::Bytes(Bytes::from(format!(
        "\r\n--{boundary}--\r\n"
    ))));
    let header = HeaderValue::from_str(&format!("multipart/byteranges; boundary={boundary}"))
        .unwrap_or_else(|_| HeaderValue::from_static("multipart/byteranges"));
    (FileStream::new(file, segments), header)
}
