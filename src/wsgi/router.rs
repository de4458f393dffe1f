//! Routes for Rust apps: a method and a path pattern to a handler, so that a device mock
//! is a dozen lines. Patterns are literal segments, `{name}` for one segment, and a
//! trailing `*` for the rest of the path. A path that some route matches under another
//! method gets 405 with `Allow`; one that none matches gets 404. Bodies are read whole
//! (the host caps them at `--max-body`); JSON goes in and out through serde.
//!
//! ```
//! use labserv::wsgi::{Reply, Router};
//!
//! let app = Router::new()
//!     .get("/boards/{id}", |req| Ok(Reply::json(&serde_json::json!({"id": req.param("id")}))))
//!     .post("/boards/{id}/log", |req| {
//!         let line: String = req.json()?;
//!         Ok(Reply::text(201, format!("{} logged {line}\n", req.param("id").unwrap_or("?"))))
//!     });
//! # let _ = app;
//! ```

use std::io::Read;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{App, BodyIter, Environ, StartResponse};

/// What a handler answers: a reply, or (as `Err`) another reply, such as the 400 that
/// [`Request::json`] gives for a body that is not the JSON asked for, so that `?` works.
pub type Handled = Result<Reply, Reply>;

type Handler = Box<dyn Fn(&Request<'_>) -> Handled + Send + Sync>;

/// A request as a handler sees it: the environ, the path's `{name}` values and `*` rest,
/// and the whole body.
#[derive(Debug)]
pub struct Request<'a> {
    /// The CGI/WSGI variables (`REQUEST_METHOD`, `PATH_INFO`, `QUERY_STRING`, `HTTP_*`).
    pub environ: &'a Environ,
    params: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request<'_> {
    /// The value of `{name}` in the route's pattern, or `"*"` for the rest of the path.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The query string, without the `?`.
    pub fn query(&self) -> &str {
        self.environ.get("QUERY_STRING").map_or("", String::as_str)
    }

    /// The request body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The body as JSON of type `T`.
    ///
    /// # Errors
    /// A 400 reply saying why, when the body is not that JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Reply> {
        serde_json::from_slice(&self.body)
            .map_err(|e| Reply::text(400, format!("expected JSON: {e}\n")))
    }
}

/// An answer: a status, headers and a body held whole.
#[derive(Debug, Clone)]
pub struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Bytes,
}

impl Reply {
    /// 200 with `value` as JSON.
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(body) => Self {
                status: 200,
                headers: vec![("Content-Type".into(), "application/json".into())],
                body: body.into(),
            },
            Err(e) => Self::text(500, format!("cannot make JSON: {e}\n")),
        }
    }

    /// `status` with `text` as `text/plain`.
    pub fn text(status: u16, text: impl Into<String>) -> Self {
        Self {
            status,
            headers: super::text_plain(),
            body: Bytes::from(text.into()),
        }
    }

    /// `status` with no body (`204`, say).
    pub fn empty(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// The same reply with another status (`Reply::json(&made).status(201)`).
    #[must_use]
    pub fn status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// The same reply with a header added.
    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

/// One segment of a route's pattern.
#[derive(Debug, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
    Rest,
}

/// A route: a method, a pattern and what answers it.
struct Route {
    method: String,
    pattern: Vec<Segment>,
    handler: Handler,
}

/// Routes for a Rust app, tried in the order they were added.
#[derive(Default)]
pub struct Router {
    routes: Vec<Route>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let routes: Vec<String> = self
            .routes
            .iter()
            .map(|r| format!("{} {:?}", r.method, r.pattern))
            .collect();
        f.debug_struct("Router").field("routes", &routes).finish()
    }
}

/// The segments of `pattern`: `/boards/{id}/*`. A `*` anywhere but last is taken as a
/// literal.
fn parse(pattern: &str) -> Vec<Segment> {
    let parts: Vec<&str> = pattern.trim_matches('/').split('/').collect();
    let last = parts.len() - 1;
    parts
        .iter()
        .enumerate()
        .filter(|(_, p)| !p.is_empty())
        .map(
            |(i, p)| match p.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                Some(name) => Segment::Param(name.to_string()),
                None if *p == "*" && i == last => Segment::Rest,
                None => Segment::Literal((*p).to_string()),
            },
        )
        .collect()
}

/// The `{name}` values and `*` rest of `path` under `pattern`, if it matches.
fn matches(pattern: &[Segment], path: &str) -> Option<Vec<(String, String)>> {
    let trimmed = path.trim_start_matches('/');
    let mut parts = if trimmed.is_empty() {
        Vec::new()
    } else {
        trimmed.split('/').collect()
    };
    // A trailing slash names the same resource (`/boards/` is `/boards`).
    if parts.last() == Some(&"") {
        parts.pop();
    }
    let mut params = Vec::new();
    for (i, segment) in pattern.iter().enumerate() {
        match segment {
            Segment::Rest => {
                params.push(("*".to_string(), parts.get(i..)?.join("/")));
                return Some(params);
            }
            Segment::Literal(literal) => {
                if parts.get(i) != Some(&literal.as_str()) {
                    return None;
                }
            }
            Segment::Param(name) => {
                let value = parts.get(i).filter(|v| !v.is_empty())?;
                params.push((name.clone(), (*value).to_string()));
            }
        }
    }
    (parts.len() == pattern.len()).then_some(params)
}

impl Router {
    /// No routes yet: every path gets 404.
    pub fn new() -> Self {
        Self::default()
    }

    /// Answers `method` (`"GET"`, `"POST"`, ...) on paths matching `pattern` with
    /// `handler`. A GET route answers HEAD too.
    #[must_use]
    pub fn route(
        mut self,
        method: &str,
        pattern: &str,
        handler: impl Fn(&Request<'_>) -> Handled + Send + Sync + 'static,
    ) -> Self {
        self.routes.push(Route {
            method: method.to_ascii_uppercase(),
            pattern: parse(pattern),
            handler: Box::new(handler),
        });
        self
    }

    /// A GET (and HEAD) route.
    #[must_use]
    pub fn get(
        self,
        pattern: &str,
        handler: impl Fn(&Request<'_>) -> Handled + Send + Sync + 'static,
    ) -> Self {
        self.route("GET", pattern, handler)
    }

    /// A POST route.
    #[must_use]
    pub fn post(
        self,
        pattern: &str,
        handler: impl Fn(&Request<'_>) -> Handled + Send + Sync + 'static,
    ) -> Self {
        self.route("POST", pattern, handler)
    }

    /// A PUT route.
    #[must_use]
    pub fn put(
        self,
        pattern: &str,
        handler: impl Fn(&Request<'_>) -> Handled + Send + Sync + 'static,
    ) -> Self {
        self.route("PUT", pattern, handler)
    }

    /// A DELETE route.
    #[must_use]
    pub fn delete(
        self,
        pattern: &str,
        handler: impl Fn(&Request<'_>) -> Handled + Send + Sync + 'static,
    ) -> Self {
        self.route("DELETE", pattern, handler)
    }

    /// The reply to `method` on `path`: the first matching route's, else 405 with the
    /// methods the path takes, else 404.
    fn answer(&self, environ: &Environ, input: &mut dyn Read) -> std::io::Result<Reply> {
        let method = environ.get("REQUEST_METHOD").map_or("GET", String::as_str);
        let path = environ.get("PATH_INFO").map_or("/", String::as_str);
        let mut allowed: Vec<&str> = Vec::new();
        for route in &self.routes {
            let Some(params) = matches(&route.pattern, path) else {
                continue;
            };
            let takes = route.method == method || (method == "HEAD" && route.method == "GET");
            if !takes {
                allowed.push(&route.method);
                if route.method == "GET" {
                    allowed.push("HEAD");
                }
                continue;
            }
            let mut body = Vec::new();
            input.read_to_end(&mut body)?;
            let request = Request {
                environ,
                params,
                body,
            };
            return Ok((route.handler)(&request).unwrap_or_else(|reply| reply));
        }
        if allowed.is_empty() {
            return Ok(Reply::text(404, "no such route\n"));
        }
        allowed.sort_unstable();
        allowed.dedup();
        let allow = allowed.join(", ");
        Ok(
            Reply::text(405, format!("{method} is not one of {allow} here\n"))
                .header("Allow", &allow),
        )
    }
}

impl App for Router {
    fn call(
        &self,
        environ: &Environ,
        input: &mut dyn Read,
        start: &mut StartResponse,
    ) -> std::io::Result<BodyIter> {
        let reply = self.answer(environ, input)?;
        let status = http::StatusCode::from_u16(reply.status)
            .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
        let line = format!(
            "{} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("Unknown")
        );
        start.start(&line, reply.headers);
        Ok(super::once(reply.body))
    }
}

#[cfg(test)]
mod tests {
    use super::{Segment, matches, parse};

    #[test]
    fn patterns_take_literals_names_and_a_trailing_rest() {
        assert_eq!(
            parse("/boards/{id}/*"),
            [
                Segment::Literal("boards".into()),
                Segment::Param("id".into()),
                Segment::Rest
            ]
        );
        let id = |path| matches(&parse("/boards/{id}"), path);
        assert_eq!(id("/boards/7"), Some(vec![("id".into(), "7".into())]));
        assert_eq!(id("/boards/7/"), Some(vec![("id".into(), "7".into())]));
        assert_eq!(id("/boards"), None);
        assert_eq!(id("/boards/7/log"), None);
        assert_eq!(id("/other/7"), None);
        let rest = |path| matches(&parse("/files/*"), path);
        assert_eq!(rest("/files/a/b"), Some(vec![("*".into(), "a/b".into())]));
        assert_eq!(rest("/files"), Some(vec![("*".into(), String::new())]));
        assert_eq!(matches(&parse("/"), "/"), Some(Vec::new()));
        assert_eq!(matches(&parse("/"), "/x"), None);
    }
}
