//! Plain-text answers: the one-line bodies every server here sends for errors.

use http::header::{self, HeaderValue};
use http::{Response, StatusCode};

use super::body::Body;

/// A short plain-text page for a status: `404 Not Found`.
pub(crate) fn status_page(status: StatusCode) -> Response<Body> {
    let reason = status.canonical_reason().unwrap_or("");
    text_response(status, &format!("{} {reason}", status.as_u16()))
}

/// A `text/plain` response of one line.
pub(crate) fn text_response(status: StatusCode, line: &str) -> Response<Body> {
    let mut resp = Response::new(Body::full(format!("{line}\n")));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}
