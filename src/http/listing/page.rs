//! The HTML listing: one page with no external assets, made for a phone in one hand as
//! much as for a desktop; its style and script are files of their own (`../page/`).

use percent_encoding::utf8_percent_encode;

use super::{By, Entry, Kind, LINK, Sort};

/// The style of the HTML listing: rows at least 44 px tall, whole names (wrapped, and on
/// a phone with size and time on a line under them), no sideways scrolling at a phone's
/// 390 px, dark when the system is.
const STYLE: &str = include_str!("../page/listing.css");

/// Shows times in the reader's own zone, sorts and shows checksums on a tap, and sends
/// files dropped on the page through the upload form. Without it the page shows UTC
/// dates in name order, and every file still downloads.
const SCRIPT: &str = include_str!("../page/listing.js");

/// The upload form, at the top of the page where a phone's thumb finds it; the script
/// shows its "drop" words only where dragging works.
const UPLOAD_FORM: &str = "<form id=\"up\" method=\"post\" enctype=\"multipart/form-data\">\
     <label>Upload files here<span class=\"drop\" hidden> (or drop them on the page)</span>: \
     <input type=\"file\" name=\"file\" multiple required></label> \
     <button>Upload</button></form>\n";

/// A row's delete button (writes on): the script asks first, then sends `DELETE` (with
/// `?recursive` for a folder).
fn delete_button(out: &mut String, link: &str, name: &str, folder: bool) {
    use html_escape::encode_double_quoted_attribute as attr;
    out.push_str("<button class=\"del\" data-d=\"");
    out.push_str(link);
    if folder {
        out.push_str("/\" data-dir=\"1");
    }
    out.push_str("\" title=\"Delete ");
    out.push_str(&attr(name));
    out.push_str("\" aria-label=\"Delete ");
    out.push_str(&attr(name));
    out.push_str("\">\u{2715}</button>");
}

/// The HTML listing of `url_path`: breadcrumbs, sortable columns, directories first, a
/// parent link except at the root, and the upload form when uploads are on.
pub(crate) fn html(url_path: &str, entries: &[&Entry], sort: Sort, upload: bool) -> String {
    use html_escape::{encode_double_quoted_attribute as attr, encode_text as text};
    use std::fmt::Write as _;

    let mut out = String::with_capacity(4096 + entries.len() * 200);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body{}>\n<nav>",
        text(url_path),
        if upload { " class=\"w\"" } else { "" }
    );
    // Breadcrumbs: every directory on the way is a link.
    out.push_str("<a href=\"/\">/</a>");
    let mut href = String::from("/");
    let segments: Vec<&str> = url_path.split('/').filter(|s| !s.is_empty()).collect();
    for (i, segment) in segments.iter().enumerate() {
        href.push_str(segment);
        href.push('/');
        let name = percent_encoding::percent_decode_str(segment).decode_utf8_lossy();
        if i + 1 == segments.len() {
            let _ = write!(out, "<span>{}</span>/", text(&name));
        } else {
            let _ = write!(out, "<a href=\"{}\">{}</a>/", attr(&href), text(&name));
        }
    }
    let _ = write!(
        out,
        "</nav>\n{}<div class=\"head\"><button class=\"n\" data-q=\"{}\">Name{}</button>\
         <button class=\"s\" data-q=\"{}\">Size{}</button>\
         <button class=\"t\" data-q=\"{}\">Modified{}</button>\
         <span class=\"pad\"></span></div>\n<ul>\n",
        if upload { UPLOAD_FORM } else { "" },
        sort.link(By::Name),
        sort.arrow(By::Name),
        sort.link(By::Size),
        sort.arrow(By::Size),
        sort.link(By::Time),
        sort.arrow(By::Time),
    );
    if url_path != "/" {
        out.push_str("<li><a href=\"../\"><span>../</span></a></li>\n");
    }
    let mut link = String::with_capacity(256);
    let mut stamp = String::with_capacity(32);
    for e in entries {
        let name = text(&e.name);
        link.clear();
        if e.name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
        {
            link.push_str(&e.name);
        } else {
            let _ = write!(link, "{}", utf8_percent_encode(&e.name, LINK));
        }
        stamp.clear();
        if let Some(t) = e.modified.and_then(crate::human::utc_stamp) {
            stamp.push_str(std::str::from_utf8(&t).unwrap_or_default());
        }
        let time = |out: &mut String| {
            if stamp.len() >= 10 {
                // `2026-11-22T18:31:54Z`, shown as `2026-11-22` until the script turns
                // it into the reader's own time.
                out.push_str("<time datetime=\"");
                out.push_str(&stamp);
                out.push_str("\">");
                out.push_str(&stamp[..10]);
                out.push_str("</time>");
            } else {
                out.push_str("<span></span>");
            }
        };
        match e.kind {
            Kind::Dir => {
                let _ = write!(
                    out,
                    "<li><a href=\"{link}/\"><span>{name}/</span><span></span>"
                );
                time(&mut out);
                out.push_str("</a><span></span>");
                if upload {
                    delete_button(&mut out, &link, &e.name, true);
                }
                out.push_str("</li>\n");
            }
            Kind::File => {
                out.push_str("<li><a href=\"");
                out.push_str(&link);
                out.push_str("\"><span>");
                out.push_str(&name);
                if e.size < 1024 {
                    // Already exact: `512 bytes`.
                    out.push_str("</span><span>");
                } else {
                    let _ = write!(out, "</span><span title=\"{} bytes\">", e.size);
                }
                crate::human::write_bytes(&mut out, e.size);
                out.push_str("</span>");
                time(&mut out);
                out.push_str("</a><button data-f=\"");
                out.push_str(&link);
                let _ = write!(
                    out,
                    "\" title=\"SHA-256 of {}\">SHA</button>",
                    attr(&e.name)
                );
                if upload {
                    delete_button(&mut out, &link, &e.name, false);
                }
                out.push_str("</li>\n");
            }
            Kind::Broken | Kind::Other => {
                // Listed so that nobody wonders where it went, but not a link: it cannot
                // be downloaded.
                let what = if e.kind == Kind::Broken {
                    "broken link"
                } else {
                    "special"
                };
                let _ = write!(out, "<li><span><span>{name}</span><span>{what}</span>");
                time(&mut out);
                out.push_str("</span><span></span>");
                if upload {
                    delete_button(&mut out, &link, &e.name, false);
                }
                out.push_str("</li>\n");
            }
        }
    }
    out.push_str("</ul>\n");
    let _ = write!(out, "<script>{SCRIPT}</script>\n</body>\n</html>\n");
    out
}
