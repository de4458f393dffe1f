//! Removing files and folders, and making folders (`serv --upload`): `DELETE /fw.img`,
//! `DELETE /logs/` (an empty folder), `DELETE /logs/?recursive` (a folder and all it
//! holds), and `MKCOL /logs/` (also a `PUT`, or a `POST` without a form, to a name
//! ending in `/`). The same rules as uploads: the name is confined to the root, symlinks
//! never lead a change outside it (a symlink is removed itself, never what it points at),
//! and every step goes through the handle of the folder it happens in.

use std::ffi::OsString;
use std::io;
use std::net::SocketAddr;
use std::path::Path;

use http::{Response, StatusCode};
use tracing::{info, warn};

use super::decode_path;
use super::upload::target;
use crate::landing::Folder;
use crate::server::{Body, text_response};

/// `DELETE path`: 204 when it is gone.
pub(crate) async fn delete(
    root: &Path,
    path: &str,
    query: Option<&str>,
    peer: SocketAddr,
) -> Response<Body> {
    let recursive = query.is_some_and(|q| q.split('&').any(|p| p == "recursive"));
    let full = match target(root, &decode_path(path), peer) {
        Ok(full) => full,
        Err(failed) => return failed.response(),
    };
    if full == root {
        return refused(peer, "DELETE", path, "the served folder itself");
    }
    let folder_only = path.ends_with('/');
    let root = root.to_path_buf();
    let removed =
        tokio::task::spawn_blocking(move || remove(&root, &full, folder_only, recursive)).await;
    match removed.unwrap_or_else(|e| Err(io::Error::other(e))) {
        Ok(what) => {
            info!(target: "labserv::http", "{peer} deleted {what} {path}");
            let mut resp = Response::new(Body::Empty);
            *resp.status_mut() = StatusCode::NO_CONTENT;
            resp
        }
        Err(e) => failed(peer, "DELETE", path, &e),
    }
}

/// `MKCOL path` (and its `PUT` and `POST` forms): 201 when the folder was made, with
/// any missing folders above it.
pub(crate) async fn make(root: &Path, path: &str, peer: SocketAddr) -> Response<Body> {
    let full = match target(root, &decode_path(path), peer) {
        Ok(full) => full,
        Err(failed) => return failed.response(),
    };
    let (Some(parent), Some(name)) = (full.parent(), full.file_name()) else {
        return refused(peer, "MKCOL", path, "the served folder itself");
    };
    let (root, parent, name) = (root.to_path_buf(), parent.to_path_buf(), name.to_owned());
    let made =
        tokio::task::spawn_blocking(move || Folder::open(&root, &parent, true)?.make_dir(&name))
            .await;
    match made.unwrap_or_else(|e| Err(io::Error::other(e))) {
        Ok(()) => {
            info!(target: "labserv::http", "{peer} made folder {path}");
            text_response(StatusCode::CREATED, &format!("made folder {path}"))
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            // WebDAV's answer for a name that is taken.
            let mut resp = text_response(
                StatusCode::METHOD_NOT_ALLOWED,
                "something already has that name",
            );
            resp.headers_mut().insert(
                http::header::ALLOW,
                http::HeaderValue::from_static(super::WRITE_METHODS),
            );
            resp
        }
        Err(e) => failed(peer, "MKCOL", path, &e),
    }
}

/// Removes `full`: a file or a symlink, or a folder (empty, or with all it holds when
/// `recursive`). `folder_only`: the name ended in `/`, so only a folder will do. Says
/// what was removed.
fn remove(
    root: &Path,
    full: &Path,
    folder_only: bool,
    recursive: bool,
) -> io::Result<&'static str> {
    let (Some(parent), Some(name)) = (full.parent(), full.file_name()) else {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    };
    let folder = Folder::open(root, parent, false)?;
    let name: OsString = name.to_owned();
    if !folder.is_dir(&name)? {
        if folder_only {
            return Err(io::Error::new(io::ErrorKind::NotADirectory, "not a folder"));
        }
        folder.remove(&name)?;
        return Ok("file");
    }
    if recursive {
        folder.remove_tree(&name)?;
        return Ok("folder and all it held,");
    }
    folder.remove_dir(&name).map_err(|e| {
        if e.kind() == io::ErrorKind::DirectoryNotEmpty {
            io::Error::new(
                e.kind(),
                "the folder is not empty (DELETE with ?recursive removes it and all it holds)",
            )
        } else {
            e
        }
    })?;
    Ok("folder")
}

fn refused(peer: SocketAddr, method: &str, path: &str, why: &str) -> Response<Body> {
    warn!(target: "labserv::http", "{peer} {method} {path} refused: {why}");
    text_response(StatusCode::FORBIDDEN, &format!("refused: {why}"))
}

fn failed(peer: SocketAddr, method: &str, path: &str, e: &io::Error) -> Response<Body> {
    let status = match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => StatusCode::NOT_FOUND,
        io::ErrorKind::DirectoryNotEmpty => StatusCode::CONFLICT,
        io::ErrorKind::PermissionDenied => StatusCode::FORBIDDEN,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    warn!(target: "labserv::http", "{peer} {method} {path} failed: {e}");
    let why = match status {
        StatusCode::NOT_FOUND => "nothing by that name".to_string(),
        _ => e.to_string(),
    };
    text_response(status, &why)
}
