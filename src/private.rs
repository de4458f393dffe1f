//! labserv's own files that only its user may read: logs, pid files, the TLS key, and
//! the folders they live in. New folders are made 0700 and files 0600 (on Unix), files
//! are never opened through a symlink, and a folder in the shared temporary directory
//! (the fallback for users without a home) is used only if it is this user's alone.

use std::fs::OpenOptions;
use std::io;
use std::path::Path;

/// Makes `dir` and its missing parents, new ones readable by this user only.
///
/// # Errors
/// A folder cannot be made, or one under the shared temporary directory belongs to
/// someone else or others may write to it.
pub(crate) fn create_dir_all(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        // labserv's own fallback folder in the shared temporary directory
        // (`labserv-UID`): someone else may have made it first, to read or replace
        // what labserv puts there.
        let shared = std::env::temp_dir();
        let first = dir
            .strip_prefix(&shared)
            .ok()
            .and_then(|p| p.components().next());
        if let Some(first) =
            first.filter(|c| c.as_os_str().to_string_lossy().starts_with("labserv"))
        {
            let at = shared.join(first);
            let meta = std::fs::symlink_metadata(&at)?;
            // SAFETY: geteuid has no preconditions and cannot fail.
            let me = unsafe { libc::geteuid() };
            if !meta.is_dir() || meta.uid() != me || meta.mode() & 0o022 != 0 {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!(
                        "{} is not a folder of this user's alone (owner {}, mode {:o})",
                        at.display(),
                        meta.uid(),
                        meta.mode() & 0o7777
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Options for a file of this user's only: made 0600, never through a symlink.
pub(crate) fn options() -> OpenOptions {
    #[cfg_attr(not(unix), allow(unused_mut))]
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    options
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn new_folders_and_files_are_the_users_alone_and_links_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("a/b");
        create_dir_all(&logs).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.path().join("a")), 0o700);
        assert_eq!(mode(&logs), 0o700);
        let file = logs.join("x.log");
        options().create(true).append(true).open(&file).unwrap();
        assert_eq!(mode(&file), 0o600);
        // A link planted where the file goes is not followed.
        let link = logs.join("planted.log");
        std::os::unix::fs::symlink(dir.path().join("elsewhere"), &link).unwrap();
        assert!(options().create(true).append(true).open(&link).is_err());
        assert!(!dir.path().join("elsewhere").exists());
    }

    #[test]
    fn a_shared_folder_open_to_others_is_refused() {
        let base = tempfile::Builder::new()
            .prefix("labserv-private-test")
            .tempdir_in(std::env::temp_dir())
            .unwrap();
        std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = create_dir_all(&base.path().join("log")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
        std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        create_dir_all(&base.path().join("log")).unwrap();
    }
}
