//! The slot and the board as the supervisor and a worker share them.

use super::{ANSWERABLE, Slot};

#[test]
fn a_slot_keeps_the_requests_waiting_until_each_is_taken_off() {
    let slot = Slot::create().unwrap();
    let (a, b) = (3 | ANSWERABLE, 9 | ANSWERABLE);
    let at_a = slot.wait(a).unwrap();
    let at_b = slot.wait(b).unwrap();
    assert_eq!(slot.waiting(), [a, b]);
    slot.unwait(at_a);
    assert_eq!(slot.waiting(), [b]);
    // A freed place is taken again.
    assert_eq!(slot.wait(a), Some(at_a));
    slot.unwait(at_b);
    assert_eq!(slot.waiting(), [a]);
}

#[test]
fn a_worker_cannot_shrink_the_memory_the_supervisor_maps() {
    let slot = Slot::create().unwrap();
    let refused = rustix::fs::ftruncate(slot.fd(), 0);
    assert_eq!(refused, Err(rustix::io::Errno::PERM));
    // Nor take the seals off, or grow it.
    assert!(rustix::fs::ftruncate(slot.fd(), 1 << 20).is_err());
    assert!(rustix::fs::fcntl_add_seals(slot.fd(), rustix::fs::SealFlags::WRITE).is_err());
}
