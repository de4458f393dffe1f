//! The connection wrapper: first bytes mended, heads held to their limits, lingering.

use super::*;

#[test]
fn a_slash_fits_in_or_carries_the_last_byte_over() {
    let mut room = [0u8; 16];
    let mut buf = ReadBuf::new(&mut room);
    buf.put_slice(b"GET a HTTP");
    assert_eq!(insert_slash(&mut buf, 4), None);
    assert_eq!(buf.filled(), b"GET /a HTTP");

    let mut full = [0u8; 10];
    let mut buf = ReadBuf::new(&mut full);
    buf.put_slice(b"GET a HTTP");
    assert_eq!(insert_slash(&mut buf, 4), Some(b'P'));
    assert_eq!(buf.filled(), b"GET /a HTT");
}
