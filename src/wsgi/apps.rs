//! The built-in apps, chosen by name: `demo`, `hello`, `echo`.

use std::io::Read;
use std::sync::Arc;

use super::{App, BodyIter, Environ, StartResponse, once, text_plain};

/// The names `wsgi` accepts for built-in apps.
pub const APP_NAMES: [&str; 3] = ["demo", "hello", "echo"];

/// The built-in app called `name`, if there is one.
pub fn builtin(name: &str) -> Option<Arc<dyn App>> {
    let call: AppFn = match name {
        "demo" => demo,
        "hello" => hello,
        "echo" => echo,
        _ => return None,
    };
    Some(Arc::new(Builtin(call)))
}

type AppFn = fn(&Environ, &mut dyn Read, &mut StartResponse) -> std::io::Result<BodyIter>;

/// A built-in app: answers at once from memory, so it never needs the blocking pool.
struct Builtin(AppFn);

impl App for Builtin {
    fn call(
        &self,
        environ: &Environ,
        input: &mut dyn Read,
        start: &mut StartResponse,
    ) -> std::io::Result<BodyIter> {
        (self.0)(environ, input, start)
    }

    fn may_block(&self) -> bool {
        false
    }
}

/// What Python's `wsgiref.simple_server.demo_app` answers: `Hello world!`, a blank
/// line, then the environ sorted by key, one `key = 'value'` line each.
fn demo(
    environ: &Environ,
    _input: &mut dyn Read,
    start: &mut StartResponse,
) -> std::io::Result<BodyIter> {
    let mut out = String::from("Hello world!\n\n");
    for (k, v) in environ {
        out.push_str(k);
        out.push_str(" = ");
        out.push_str(&python_repr(v));
        out.push('\n');
    }
    start.start("200 OK", text_plain());
    Ok(once(out))
}

/// A plain greeting.
fn hello(
    _environ: &Environ,
    _input: &mut dyn Read,
    start: &mut StartResponse,
) -> std::io::Result<BodyIter> {
    start.start("200 OK", text_plain());
    Ok(once("Hello, world!\n"))
}

/// Answers with the method, path, query, headers and body it received, as JSON.
fn echo(
    environ: &Environ,
    input: &mut dyn Read,
    start: &mut StartResponse,
) -> std::io::Result<BodyIter> {
    let mut body = Vec::new();
    input.read_to_end(&mut body)?;
    let get = |k: &str| environ.get(k).cloned().unwrap_or_default();
    let headers: serde_json::Map<String, serde_json::Value> = environ
        .iter()
        .filter_map(|(k, v)| {
            let name = match k.as_str() {
                "CONTENT_TYPE" => "content-type".to_string(),
                "CONTENT_LENGTH" => "content-length".to_string(),
                _ => k
                    .strip_prefix("HTTP_")?
                    .to_ascii_lowercase()
                    .replace('_', "-"),
            };
            Some((name, serde_json::Value::String(v.clone())))
        })
        .collect();
    let reply = serde_json::json!({
        "method": get("REQUEST_METHOD"),
        "path": get("PATH_INFO"),
        "query": get("QUERY_STRING"),
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
        "body_length": body.len(),
    });
    let text = serde_json::to_string_pretty(&reply).map_err(std::io::Error::other)? + "\n";
    start.start(
        "200 OK",
        vec![("Content-Type".to_string(), "application/json".to_string())],
    );
    Ok(once(text))
}

/// Python's `repr()` of a str, as `demo_app` prints values: single quotes unless the text
/// holds a single quote and no double quote; backslashes, the quote and control
/// characters escaped.
pub(crate) fn python_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

#[cfg(test)]
mod tests {
    use super::python_repr;

    #[test]
    fn repr_matches_python() {
        assert_eq!(python_repr("GET"), "'GET'");
        assert_eq!(python_repr(""), "''");
        assert_eq!(python_repr("it's"), "\"it's\"");
        assert_eq!(python_repr("a'b\"c"), "'a\\'b\"c'");
        assert_eq!(python_repr("tab\there\\"), "'tab\\there\\\\'");
        assert_eq!(python_repr("\u{1}"), "'\\x01'");
    }
}
