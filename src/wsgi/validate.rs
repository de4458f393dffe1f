//! Checks on what an app sends, in the spirit of Python's `wsgiref.validate`, so a broken
//! app gives its client a clear 500 and the log says what it did wrong.

/// Hop-by-hop headers: the server's business, never an app's.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
];

/// Checks a status line and headers; the error names the violation.
///
/// # Errors
/// A status that is not `NNN Reason`; a header name that is not a token or is `Status`
/// or hop-by-hop; a value with control characters; a missing Content-Type where a body
/// is expected, or one on a 304.
pub(crate) fn head(status: &str, headers: &[(String, String)]) -> Result<(), String> {
    let (code, reason) = status
        .split_once(' ')
        .ok_or_else(|| format!("status {status:?} is not \"NNN Reason\""))?;
    let code_ok = code.len() == 3 && code.bytes().all(|b| b.is_ascii_digit()) && code >= "100";
    if !code_ok || reason.trim().is_empty() {
        return Err(format!("status {status:?} is not \"NNN Reason\""));
    }
    if status.chars().any(char::is_control) {
        return Err(format!("status {status:?} holds control characters"));
    }
    let mut content_type = false;
    for (name, value) in headers {
        let token = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !token {
            return Err(format!("header name {name:?} is not a token"));
        }
        let lower = name.to_ascii_lowercase();
        if lower == "status" {
            return Err(
                "a Status header is not allowed (the status goes to start_response)".to_string(),
            );
        }
        if HOP_BY_HOP.contains(&lower.as_str()) {
            return Err(format!("hop-by-hop header {name:?} is not allowed"));
        }
        if value.chars().any(|c| c.is_control() && c != '\t') {
            return Err(format!(
                "header {name}'s value {value:?} holds control characters"
            ));
        }
        content_type |= lower == "content-type";
    }
    let bodiless = code.starts_with('1') || code == "204" || code == "304";
    if code == "304" && content_type {
        return Err("Content-Type on a 304 response, which has no content".to_string());
    }
    if !bodiless && !content_type {
        return Err(format!("no Content-Type header for status {code}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::head;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn good_heads_pass() {
        assert_eq!(
            head("200 OK", &h(&[("Content-Type", "text/plain")])),
            Ok(())
        );
        assert_eq!(head("204 No Content", &[]), Ok(()));
        assert_eq!(head("304 Not Modified", &h(&[("ETag", "\"x\"")])), Ok(()));
        assert_eq!(
            head("404 Not Found", &h(&[("content-type", "text/html")])),
            Ok(())
        );
    }

    #[test]
    fn violations_are_named() {
        let ct = h(&[("Content-Type", "text/plain")]);
        for (status, headers, needle) in [
            ("OK", ct.clone(), "is not \"NNN Reason\""),
            ("200", ct.clone(), "is not \"NNN Reason\""),
            ("20 OK", ct.clone(), "is not \"NNN Reason\""),
            ("099 Low", ct.clone(), "is not \"NNN Reason\""),
            (
                "200 OK",
                h(&[("Content-Type", "a"), ("Bad Name", "x")]),
                "not a token",
            ),
            (
                "200 OK",
                h(&[("Content-Type", "a"), ("Status", "200")]),
                "Status header",
            ),
            (
                "200 OK",
                h(&[("Content-Type", "a"), ("Connection", "close")]),
                "hop-by-hop",
            ),
            (
                "200 OK",
                h(&[("Content-Type", "a\r\nX: y")]),
                "control characters",
            ),
            ("200 OK", vec![], "no Content-Type"),
            ("304 Not Modified", ct.clone(), "304"),
        ] {
            let err = head(status, &headers).unwrap_err();
            assert!(err.contains(needle), "{status} {headers:?}: {err}");
        }
    }
}
