//! A directory's answer: its index.html, a redirect to the slash, or its listing (HTML
//! for browsers, JSON for scripts).

use super::*;

impl FileServer {
    pub(super) async fn directory(
        &self,
        req: &Request<crate::server::Inbound>,
        name: &[u8],
        dir: &Path,
        head: bool,
        peer: SocketAddr,
    ) -> Response<Body> {
        let path = req.uri().path();
        if !path.ends_with('/') {
            // Relative to the request (`./name/`), so that `//evil.example` can never
            // become a redirect to another host, nor `a:b` a scheme.
            let last = path.rsplit('/').next().unwrap_or_default();
            let location = match req.uri().query() {
                Some(q) => format!("./{last}/?{q}"),
                None => format!("./{last}/"),
            };
            let mut resp = status_page(StatusCode::MOVED_PERMANENTLY);
            if let Ok(v) = HeaderValue::from_str(&location) {
                resp.headers_mut().insert(header::LOCATION, v);
            }
            return resp;
        }
        let index_name = [name, b"/index.html"].concat();
        if self.rules.shows_name(&index_name, false)
            && let Ok(index) = confine(&self.root, &index_name, self.symlinks)
            && let Ok(meta) = std::fs::metadata(&index)
            && meta.is_file()
        {
            return self.file(req.headers(), &index, &meta, head, peer);
        }
        let owned = dir.to_path_buf();
        let sort = listing::Sort::from_query(req.uri().query());
        let json = wants_json(req);
        let upload = self.uploads.is_some();
        let dotfiles = self.dotfiles;
        let rules = (!self.rules.is_empty()).then(|| (self.rules.clone(), name.to_vec()));
        let url_path = path.to_string();
        // Entries kept since an earlier listing, if watches vouch for them (asked here, on
        // the event loop that has seen the events).
        let kept = self.cache.listing(dir);
        let cache = self.cache.clone();
        let root = self.root.clone();
        // Read (or looked at again), sorted and written out in one go off the runtime.
        let render = move || -> io::Result<String> {
            let read;
            let entries = match &kept {
                Some(listed) => listing::refresh(&owned, listed)?,
                None => {
                    let prepared = cache.prepare_listing(&root, &owned);
                    read = Arc::new(listing::read(&owned)?);
                    cache.keep_listing(&owned, read.clone(), prepared);
                    Cow::Borrowed(read.entries.as_slice())
                }
            };
            let mut ordered = sort.order(&entries, !json);
            if !dotfiles {
                ordered.retain(|e| !e.name.starts_with('.'));
            }
            if let Some((rules, dir)) = &rules {
                ordered.retain(|e| {
                    let name = [dir.as_slice(), b"/", e.name.as_bytes()].concat();
                    rules.shows_name(&name, e.kind == listing::Kind::Dir)
                });
            }
            Ok(if json {
                listing::json(&url_path, &ordered)
            } else {
                listing::html(&url_path, &ordered, sort, upload)
            })
        };
        let text = match tokio::task::spawn_blocking(render).await {
            Ok(Ok(text)) => text,
            Ok(Err(e)) => return error_page(&e, peer, dir),
            Err(e) => return error_page(&io::Error::other(e), peer, dir),
        };
        let content_type = if json {
            "application/json"
        } else {
            "text/html; charset=utf-8"
        };
        let len = text.len() as u64;
        let mut resp = Response::new(if head { Body::Empty } else { Body::full(text) });
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        h.insert(header::VARY, HeaderValue::from_static("Accept"));
        resp
    }
}

/// JSON when asked for by `?format=json` or an Accept header naming application/json.
fn wants_json(req: &Request<crate::server::Inbound>) -> bool {
    let by_query = req
        .uri()
        .query()
        .is_some_and(|q| q.split('&').any(|kv| kv == "format=json"));
    let by_accept = req
        .headers()
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/json"));
    by_query || by_accept
}
