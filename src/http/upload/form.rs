//! `POST` of a `multipart/form-data` body (the listing page's form, `curl -F`): each
//! file part lands as a `PUT` would, and the browser gets a page saying how each went.

use super::*;

/// `POST /dir/` with a `multipart/form-data` body: each file part lands in that
/// directory under its own file name.
pub(crate) async fn post(
    root: &Path,
    uploads: Uploads,
    rules: &FileRules,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> Response<Body> {
    let dir_path = req.uri().path().to_string();
    // A browser posting the listing's form gets a page back; curl gets lines.
    let browser = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    let boundary = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| multer::parse_boundary(v).ok());
    let Some(boundary) = boundary else {
        if dir_path.ends_with('/') && declared_len(&req).is_none_or(|len| len == 0) {
            // No form, no body: the folder itself is what is asked for.
            return crate::http::folders::make(root, &dir_path, peer).await;
        }
        return text_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "POST takes a multipart/form-data upload",
        );
    };
    if let Some(len) = declared_len(&req)
        && len > uploads.max_size.saturating_add(FORM_SLACK)
    {
        return too_large(uploads, peer, &dir_path).response();
    }
    // A folder that is not there yet is made, as PUT makes one.
    let dir = match target(root, &decode_path(&dir_path), peer) {
        Ok(dir) if dir.exists() && !dir.is_dir() => {
            return text_response(StatusCode::CONFLICT, "a file has that name, not a folder");
        }
        Ok(dir) => dir,
        Err(failed) => return failed.response(),
    };
    let meter = Arc::new(Meter::default());
    let body = Metered {
        inner: req.into_body().into_data_stream(),
        meter: meter.clone(),
    };
    let mut form = multer::Multipart::new(body, boundary);
    let mut lines = Vec::new();
    let mut status = StatusCode::CREATED;
    // Every file of the form counts against --max-upload.
    let mut left = uploads;
    loop {
        let field = match form.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(_) if meter.over.load(Ordering::Relaxed) => {
                warn!(target: "labserv::http", "{peer} POST {dir_path}: refused: more than {MAX_FORM_OVERHEAD} bytes of the form are not a file");
                return text_response(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "the form's boundaries or part headers never came",
                );
            }
            Err(e) => {
                warn!(target: "labserv::http", "{peer} POST {dir_path}: the form could not be read: {e}");
                return text_response(StatusCode::BAD_REQUEST, &format!("bad form: {e}"));
            }
        };
        let Some(file_name) = field.file_name().map(str::to_string) else {
            // A plain form field: read past, its bytes counted as read.
            let mut field = field;
            while let Ok(Some(chunk)) = field.chunk().await {
                meter.drained(chunk.len());
            }
            continue;
        };
        let name = match part_name(&file_name) {
            Ok(name) => name,
            Err(why) => {
                warn!(target: "labserv::http", "{peer} POST {dir_path}: refused file name {file_name:?}: {why}");
                return text_response(
                    StatusCode::BAD_REQUEST,
                    &format!("refused file name: {why}"),
                );
            }
        };
        let shown = format!("{}{}", with_slash(&dir_path), name);
        let file_path = [&*decode_path(&dir_path), b"/", name.as_bytes()].concat();
        if let Some(why) = rules.refuses_write_to(&file_path, false) {
            warn!(target: "labserv::http", "{peer} POST {shown}: refused, {why}");
            return text_response(StatusCode::FORBIDDEN, &format!("refused: {why}"));
        }
        let meter = meter.clone();
        let field = futures_lite::StreamExt::map(field, move |chunk| {
            if let Ok(chunk) = &chunk {
                meter.drained(chunk.len());
            }
            chunk
        });
        let stored = store(root, dir.join(name), &shown, left, None, field, peer).await;
        match stored {
            Ok(stored) => {
                left.max_size -= stored.size;
                lines.push(stored.line());
            }
            Err(failed) => {
                status = failed.0;
                lines.push(failed.1);
                break;
            }
        }
    }
    if lines.is_empty() {
        return text_response(StatusCode::BAD_REQUEST, "the form held no file");
    }
    if browser {
        return result_page(status, &lines);
    }
    text_response(status, &lines.join("\n"))
}

/// The most of a form that may wait in the parser while not being a file's bytes: its
/// preamble, part headers and boundaries. A body whose boundary never comes is refused
/// past it instead of being held whole in memory.
const MAX_FORM_OVERHEAD: u64 = 1 << 20;

/// What a form's declared length may hold past `--max-upload`: boundaries, part headers
/// and small plain fields.
const FORM_SLACK: u64 = 64 << 10;

/// Counts what a form's body fed the parser and what came out of it as file bytes: the
/// difference is what the parser holds.
#[derive(Debug, Default)]
struct Meter {
    fed: AtomicU64,
    out: AtomicU64,
    over: AtomicBool,
}

impl Meter {
    fn drained(&self, n: usize) {
        self.out.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// A request body fed to the form parser through a [`Meter`]; it fails once the parser
/// would hold more than [`MAX_FORM_OVERHEAD`].
struct Metered<S> {
    inner: S,
    meter: Arc<Meter>,
}

impl<S, E> futures_lite::Stream for Metered<S>
where
    S: futures_lite::Stream<Item = Result<Bytes, E>> + Unpin,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Item = Result<Bytes, Box<dyn std::error::Error + Send + Sync>>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        let this = &mut *self;
        let item = std::task::ready!(std::pin::Pin::new(&mut this.inner).poll_next(cx));
        std::task::Poll::Ready(item.map(|chunk| {
            let chunk = chunk.map_err(Into::into)?;
            let fed = this
                .meter
                .fed
                .fetch_add(chunk.len() as u64, Ordering::Relaxed)
                + chunk.len() as u64;
            let held = fed.saturating_sub(this.meter.out.load(Ordering::Relaxed));
            // The chunk itself is allowed for: hyper hands over up to a read buffer's worth.
            if held > MAX_FORM_OVERHEAD + chunk.len() as u64 {
                this.meter.over.store(true, Ordering::Relaxed);
                return Err("too much of the form is not a file".into());
            }
            Ok(chunk)
        }))
    }
}

/// What a browser sees after posting the form: each line, and the way back.
fn result_page(status: StatusCode, lines: &[String]) -> Response<Body> {
    use html_escape::encode_text as text;
    let items: String = lines
        .iter()
        .map(|l| format!("<li>{}</li>", text(l)))
        .collect();
    let page = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <meta name=\"color-scheme\" content=\"light dark\"><title>Upload</title></head>\
         <body style=\"font:16px/1.5 system-ui,sans-serif;margin:1rem;overflow-wrap:anywhere\">\
         <ul>{items}</ul><p><a href=\"./\" style=\"display:inline-block;padding:.7rem 0\">\
         Back to the listing</a></p></body></html>\n"
    );
    let mut resp = Response::new(Body::full(page));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    resp
}

fn with_slash(path: &str) -> String {
    if path.ends_with('/') {
        path.to_string()
    } else {
        format!("{path}/")
    }
}

/// A multipart part's file name, which must be a plain name: no directories, no `..`,
/// no NUL. (Browsers send the bare name.)
pub(super) fn part_name(name: &str) -> Result<&str, &'static str> {
    if name.is_empty() || name == "." || name == ".." {
        Err("not a file name")
    } else if name.starts_with('.') {
        Err("a name starting with a dot (hidden; PUT it with --dotfiles)")
    } else if name.contains(['/', '\\']) {
        Err("a path, not a file name")
    } else if name.contains('\0') {
        Err("NUL byte in file name")
    } else {
        Ok(name)
    }
}
