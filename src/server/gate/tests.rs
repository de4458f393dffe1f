//! The gate's checks: passwords (plain and crypt, remembered, tries held back),
//! scopes, CORS, connection caps and host names.

use super::*;

fn request(method: Method, auth: Option<&str>) -> Request<()> {
    let mut req = Request::builder().method(method).uri("/fw.img");
    if let Some(auth) = auth {
        let encoded = base64::engine::general_purpose::STANDARD.encode(auth);
        req = req.header(header::AUTHORIZATION, format!("Basic {encoded}"));
    }
    req.body(()).unwrap()
}

fn gate(users: &[&str], scope: AuthScope) -> Gate {
    Gate::new(Access {
        allowed_hosts: Vec::new(),
        users: users.iter().map(|u| User::parse(u).unwrap()).collect(),
        scope,
        cors: false,
        max_conns_per_client: None,
        max_conns: None,
    })
}

#[test]
fn on_loopback_only_local_names_ip_addresses_and_allowed_names_pass() {
    let hosts = Hosts::new(&["lab-host.example".to_string()]);
    for ok in [
        None,
        Some("localhost:8080"),
        Some("LOCALHOST"),
        Some("board.localhost"),
        Some("127.0.0.1:8080"),
        Some("[::1]:8080"),
        Some("192.168.1.20"),
        Some("lab-host.example:8080"),
        Some("lab"),
    ] {
        assert!(hosts.allows(ok.map(str::as_bytes)), "{ok:?}");
    }
    for refused in [
        Some("evil.example"),
        Some("evil.example:8080"),
        Some("[evil]:80"),
    ] {
        assert!(!hosts.allows(refused.map(str::as_bytes)), "{refused:?}");
    }
}

const PEER: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9);

#[test]
fn only_the_right_user_and_password_come_in() {
    let gate = gate(&["lab:secret", "ci:other"], AuthScope::All);
    let status = |auth| {
        gate.stop(&request(Method::GET, auth), PEER)
            .expect("plain passwords need no hashing")
            .map(|r| r.status())
    };
    assert_eq!(status(Some("lab:secret")), None);
    assert_eq!(status(Some("ci:other")), None);
    assert_eq!(status(Some("lab:other")), Some(StatusCode::UNAUTHORIZED));
    assert_eq!(
        status(Some("nobody:secret")),
        Some(StatusCode::UNAUTHORIZED)
    );
    assert_eq!(status(None), Some(StatusCode::UNAUTHORIZED));
}

#[test]
fn a_crypt_hash_is_checked_and_remembered() {
    // openssl passwd -6 -salt labsalt secret
    let hash = "$6$labsalt$leYP1O/SwaG7fbW7P8PsNALxP8zLSliGjNZI80V.j4yytxGrI2SXlPBJnogfPEG3BvTABDgzPtKzGJoNlMA.S0";
    let gate = gate(&[&format!("lab:{hash}")], AuthScope::All);
    // Not known yet: the hash must be computed (off the event loop).
    assert_eq!(gate.allows("lab", "secret"), None);
    assert!(!gate.allows_hashing("lab", "Secret"));
    assert_eq!(
        gate.allows("lab", "secret"),
        None,
        "a wrong one is not remembered"
    );
    assert!(gate.allows_hashing("lab", "secret"));
    // Remembered: known at once from now on, right and wrong alike.
    assert_eq!(gate.allows("lab", "secret"), Some(true));
    assert_eq!(gate.allows("lab", "Secret"), Some(false));
    // Other names never match.
    assert_eq!(gate.allows("ci", "secret"), Some(false));
}

#[test]
fn an_address_guessing_passwords_is_held_back_for_a_minute() {
    let gate = gate(&["lab:secret"], AuthScope::All);
    let status = |auth: &str| {
        let req = request(Method::GET, Some(auth));
        match gate.stop(&req, PEER).expect("plain") {
            Some(r) => r.status(),
            None => StatusCode::OK,
        }
    };
    for _ in 0..TRIES_A_MINUTE {
        assert_eq!(status("lab:guess"), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(status("lab:guess"), StatusCode::TOO_MANY_REQUESTS);
    // Held back: even the right password waits out the minute.
    assert_eq!(status("lab:secret"), StatusCode::TOO_MANY_REQUESTS);
    // Another address is not.
    let other = SocketAddr::new(std::net::Ipv4Addr::new(10, 0, 0, 7).into(), 9);
    let req = request(Method::GET, Some("lab:secret"));
    assert!(gate.stop(&req, other).expect("plain").is_none());
}

#[test]
fn writes_scope_leaves_reading_open() {
    let gate = gate(&["lab:secret"], AuthScope::Writes);
    assert!(
        gate.stop(&request(Method::GET, None), PEER)
            .unwrap()
            .is_none()
    );
    let put = gate
        .stop(&request(Method::PUT, None), PEER)
        .unwrap()
        .unwrap();
    assert_eq!(put.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(put.headers()[header::WWW_AUTHENTICATE], CHALLENGE);
}

#[test]
fn bad_user_arguments_say_what_is_expected() {
    assert!(User::parse("nopassword").is_err());
    assert!(User::parse(":x").is_err());
    assert!(User::parse("lab:").is_err());
    assert!(User::parse("lab:$6$broken").is_err());
}
