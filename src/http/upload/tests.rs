//! Upload names, targets and the form parser's limits.

use super::form::part_name;
use super::*;

#[test]
fn writes_from_other_sites_pages_are_told_apart() {
    let req = |headers: &[(&str, &str)]| {
        let mut b = Request::builder().uri("/x").header("host", "lab-host:8080");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap()
    };
    assert!(!cross_site(&req(&[])), "curl");
    assert!(!cross_site(&req(&[("origin", "http://lab-host:8080")])));
    assert!(cross_site(&req(&[("origin", "http://evil.example")])));
    assert!(cross_site(&req(&[("origin", "http://lab-host:9000")])));
    assert!(cross_site(&req(&[("origin", "null")])));
    assert!(cross_site(&req(&[("sec-fetch-site", "cross-site")])));
    assert!(cross_site(&req(&[("sec-fetch-site", "same-site")])));
    assert!(!cross_site(&req(&[("sec-fetch-site", "same-origin")])));
}

#[test]
fn part_names_must_be_plain() {
    assert_eq!(part_name("fw.img"), Ok("fw.img"));
    for bad in [
        "",
        ".",
        "..",
        "../x",
        "/etc/passwd",
        "a\\b",
        "a\0b",
        ".fw.img.41-3.part",
    ] {
        assert!(part_name(bad).is_err(), "{bad:?}");
    }
}
