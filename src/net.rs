//! Binding listeners, and finding the addresses a device on the network can reach us at.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use socket2::{Domain, Protocol, Socket, Type};

use crate::error::{Error, Result};

/// How many not-yet-accepted connections the kernel may queue.
const BACKLOG: i32 = 1024;

/// Binds a TCP listener on `iface:port`, or on every interface (IPv4 and IPv6) when
/// `iface` is `None`. The socket is non-blocking, ready for Tokio.
///
/// "Every interface" is one dual-stack `[::]` socket; a host without IPv6 gets `0.0.0.0`.
///
/// # Errors
/// [`Error::Bind`] with the operating system's reason (port in use, permission denied, ...).
pub fn bind_tcp(iface: Option<IpAddr>, port: u16) -> Result<std::net::TcpListener> {
    let addr = match iface {
        Some(ip) => SocketAddr::new(ip, port),
        None => {
            let any6 = SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port);
            match bind_socket(any6, true) {
                Ok(listener) => return Ok(listener),
                Err(e) if ipv6_unavailable(&e) => {
                    SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)
                }
                Err(error) => return Err(Error::Bind { addr: any6, error }),
            }
        }
    };
    bind_socket(addr, false).map_err(|error| Error::Bind { addr, error })
}

fn ipv6_unavailable(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EAFNOSUPPORT | libc::EADDRNOTAVAIL)
    )
}

fn bind_socket(addr: SocketAddr, dual_stack: bool) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if dual_stack {
        socket.set_only_v6(false)?;
    }
    // Lets a restarted server bind while old connections sit in TIME_WAIT.
    #[cfg(unix)]
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// Binds a UDP socket on `addr` (IPv6 wildcards also accept IPv4 clients).
///
/// # Errors
/// [`Error::Bind`] with the operating system's reason.
pub fn bind_udp(addr: SocketAddr) -> Result<std::net::UdpSocket> {
    let bind = || -> io::Result<std::net::UdpSocket> {
        let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
        if addr.is_ipv6() && addr.ip().is_unspecified() {
            socket.set_only_v6(false)?;
        }
        socket.bind(&addr.into())?;
        Ok(socket.into())
    };
    bind().map_err(|error| Error::Bind { addr, error })
}

/// One address a client can use, with the interface it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reachable {
    /// Interface name (`eth0`), or empty when the address was given explicitly.
    pub interface: String,
    /// The address.
    pub ip: IpAddr,
}

/// The addresses a listener bound to `bound` can be reached at, for the start-up banner.
///
/// A wildcard listener lists every non-loopback interface address (IPv4 first; IPv6
/// link-local addresses are left out as a device cannot use them without a scope); a
/// listener on one address lists just that. With no network at all, loopback is listed.
pub fn reachable(bound: SocketAddr) -> Vec<Reachable> {
    let ip = bound.ip();
    if !ip.is_unspecified() {
        return vec![Reachable {
            interface: String::new(),
            ip,
        }];
    }
    let want_v6 = ip.is_ipv6();
    let mut found: Vec<Reachable> = if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .filter(|i| !i.is_loopback())
        .filter(|i| match i.ip() {
            IpAddr::V4(_) => true,
            IpAddr::V6(v6) => want_v6 && !is_link_local_v6(&v6),
        })
        .map(|i| Reachable {
            ip: i.ip(),
            interface: i.name,
        })
        .collect();
    found.sort_by_key(|r| (r.ip.is_ipv6(), r.interface.clone(), r.ip));
    found.dedup();
    if found.is_empty() {
        found.push(Reachable {
            interface: "lo".to_string(),
            ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        });
    }
    found
}

fn is_link_local_v6(ip: &Ipv6Addr) -> bool {
    (ip.segments()[0] & 0xffc0) == 0xfe80
}

/// Formats `http://ip:port/`, with brackets around IPv6 addresses.
pub fn http_url(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(v4) => format!("http://{v4}:{port}/"),
        IpAddr::V6(v6) => format!("http://[{v6}]:{port}/"),
    }
}

/// Raises the soft open-files limit to the hard limit, so many idle clients cannot
/// exhaust descriptors that new clients need. Failure is harmless and ignored.
pub fn raise_fd_limit() {
    #[cfg(unix)]
    let _ = rlimit::increase_nofile_limit(u64::MAX);
}

/// This machine's name (`lab-host`), if it has one.
pub(crate) fn host_name() -> Option<String> {
    #[cfg(unix)]
    let name = {
        let mut buf = [0u8; 256];
        // SAFETY: the buffer is valid for its length; gethostname writes at most that.
        let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
        if rc != 0 {
            return None;
        }
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..end]).into_owned()
    };
    #[cfg(not(unix))]
    let name = std::env::var("COMPUTERNAME").ok()?;
    let name = name.trim().to_ascii_lowercase();
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_port_is_reported_as_in_use() {
        let first = bind_tcp(Some(IpAddr::V4(Ipv4Addr::LOCALHOST)), 0).unwrap();
        let port = first.local_addr().unwrap().port();
        let err = bind_tcp(Some(IpAddr::V4(Ipv4Addr::LOCALHOST)), port).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("address already in use"), "{text}");
        assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    }

    #[test]
    fn wildcard_bind_accepts_ipv4_clients() {
        let listener = bind_tcp(None, 0).unwrap();
        let port = listener.local_addr().unwrap().port();
        std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
    }

    #[test]
    fn explicit_address_is_the_only_reachable_one() {
        let addr: SocketAddr = "192.168.4.2:8080".parse().unwrap();
        let r = reachable(addr);
        assert_eq!(r.len(), 1);
        assert_eq!(http_url(r[0].ip, 8080), "http://192.168.4.2:8080/");
        assert_eq!(
            http_url("fd00::1".parse().unwrap(), 80),
            "http://[fd00::1]:80/"
        );
    }

    #[test]
    fn wildcard_lists_no_loopback_unless_nothing_else() {
        let r = reachable("0.0.0.0:8080".parse().unwrap());
        assert!(!r.is_empty());
        let only_loopback = r.len() == 1 && r[0].ip.is_loopback();
        assert!(
            only_loopback || r.iter().all(|x| !x.ip.is_loopback()),
            "{r:?}"
        );
        assert!(r.iter().all(|x| x.ip.is_ipv4()), "{r:?}");
    }
}
