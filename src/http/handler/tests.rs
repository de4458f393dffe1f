//! Names decoded before they are confined; content types.

use super::*;

fn decoded(path: &str) -> Result<PathBuf, Refused> {
    let root = Path::new("/srv/fw");
    confine(root, &decode_path(path), Symlinks::Follow)
        .map(|full| full.strip_prefix(root).unwrap().to_path_buf())
}

// The plain rules are confine's (its tests); these are what percent-decoding adds.
#[test]
fn encoded_names_are_decoded_before_they_are_confined() {
    assert_eq!(decoded("/").unwrap(), PathBuf::new());
    assert_eq!(
        decoded("/my%20file.bin").unwrap(),
        PathBuf::from("my file.bin")
    );
    // An encoded slash is a separator after decoding, never part of a name.
    assert_eq!(decoded("/a%2Fb").unwrap(), PathBuf::from("a/b"));
    for (p, why) in [
        ("/%2e%2e/etc/passwd", Refused::Parent),
        ("/%2E%2E%2Fetc", Refused::Parent),
        ("/..%2f..%2fetc", Refused::Parent),
        ("/a%5c..%5cb", Refused::Backslash),
        ("/fw.img%00.txt", Refused::Nul),
    ] {
        assert_eq!(decoded(p), Err(why), "{p}");
    }
}

#[test]
fn text_types_carry_charset_and_unknown_is_octet_stream() {
    assert_eq!(
        content_type(Path::new("a.txt")),
        "text/plain; charset=utf-8"
    );
    assert_eq!(
        content_type(Path::new("a.html")),
        "text/html; charset=utf-8"
    );
    assert_eq!(content_type(Path::new("a.png")), "image/png");
    assert_eq!(
        content_type(Path::new("fw.zzzunknown")),
        "application/octet-stream"
    );
    assert_eq!(content_type(Path::new("noext")), "application/octet-stream");
}
