//! Sharing connections out evenly among the event loops that accept from one listener.
//!
//! serv runs an event loop per core, all accepting from the same listening socket (see
//! `runner`), and a connection stays on the loop that took it. Left to themselves, the
//! loop that wakes first takes a run of whatever has queued: a hundred boards that
//! connect at once were split anywhere from 50/50 to 75/25 between two loops. The boards
//! on the fuller loop then share its core among more downloads and finish last.
//!
//! So each loop takes a connection only while it holds at most [`SLACK`] more than the
//! emptiest other loop, and otherwise waits until the counts change, leaving new
//! connections to the others. The emptiest loop always may take one, so a connection
//! never waits for all of them to hold back.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;

/// How many more connections than the emptiest other loop a loop may hold and still take
/// one more. With none to spare, two loops would have to take turns strictly through a
/// burst, and a connection would wait whenever the loop whose turn it was had a request
/// in hand; one to spare keeps the split within a connection or two.
const SLACK: usize = 1;

/// One loop's place: its open connections, and its wake-up when it waits for its turn.
/// Aligned to its own cache lines: every loop reads every count on each accept, and
/// writes only its own (and another's wake-up only when that loop may be waiting).
#[repr(align(128))]
struct Place {
    open: AtomicUsize,
    turn: Notify,
}

/// The loops that share one listener.
pub(crate) struct Balance {
    places: Box<[Place]>,
}

impl Balance {
    /// Places for `loops` event loops.
    pub(crate) fn new(loops: usize) -> Arc<Self> {
        Arc::new(Self {
            places: (0..loops.max(1))
                .map(|_| Place {
                    open: AtomicUsize::new(0),
                    turn: Notify::new(),
                })
                .collect(),
        })
    }

    /// The seat of loop `index` (below the number of loops).
    pub(crate) fn seat(self: &Arc<Self>, index: usize) -> Seat {
        debug_assert!(index < self.places.len());
        Seat {
            balance: self.clone(),
            index: index.min(self.places.len() - 1),
        }
    }
}

/// One event loop's share of a [`Balance`].
#[derive(Clone)]
pub(crate) struct Seat {
    balance: Arc<Balance>,
    index: usize,
}

impl Seat {
    fn place(&self) -> &Place {
        &self.balance.places[self.index]
    }

    /// Whether this loop holds at most [`SLACK`] connections more than the emptiest other.
    fn may_take(&self) -> bool {
        let emptiest = self
            .balance
            .places
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != self.index)
            .map(|(_, place)| place.open.load(Ordering::SeqCst))
            .min();
        emptiest.is_none_or(|fewest| self.place().open.load(Ordering::SeqCst) <= fewest + SLACK)
    }

    /// Waits until this loop may take another connection: at once unless it holds more
    /// than its share. Another loop taking one, or one of this loop's own ending, wakes it
    /// to look again (a wake-up that comes before the wait is kept, so none is lost).
    pub(crate) async fn turn(&self) {
        while !self.may_take() {
            self.place().turn.notified().await;
        }
    }

    /// Counts a connection this loop has taken, until the returned guard is dropped.
    ///
    /// Wakes only the loops this one may have held back: those holding more than
    /// [`SLACK`] beyond this loop's count before it took one. The others are not
    /// waiting on this loop, and a wake-up would only write to their cache lines on
    /// every connection. The counts are sequentially consistent so that a loop that
    /// saw this loop's old count and went to wait is seen here holding its own.
    pub(crate) fn took(&self) -> Taken {
        let mine = self.place().open.fetch_add(1, Ordering::SeqCst) + 1;
        for (i, place) in self.balance.places.iter().enumerate() {
            if i != self.index && place.open.load(Ordering::SeqCst) >= mine + SLACK {
                place.turn.notify_one();
            }
        }
        Taken(self.clone())
    }
}

/// A connection counted on its loop; dropping it, when the connection ends, uncounts it.
pub(crate) struct Taken(Seat);

impl Drop for Taken {
    fn drop(&mut self) {
        let place = self.0.place();
        place.open.fetch_sub(1, Ordering::SeqCst);
        place.turn.notify_one();
    }
}

tokio::task_local! {
    /// The seat of the loop that runs this server, set by the runner.
    static SEAT: Seat;
}

/// Runs `serve` (one loop's server) in `seat`, which [`current`] then returns within it;
/// without a seat (a single loop) it runs as it is.
pub(crate) async fn seated<F: Future>(seat: Option<Seat>, serve: F) -> F::Output {
    match seat {
        Some(seat) => SEAT.scope(seat, serve).await,
        None => serve.await,
    }
}

/// The seat [`seated`] gave the server running now, if any.
pub(crate) fn current() -> Option<Seat> {
    SEAT.try_with(Seat::clone).ok()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::*;

    /// Whether `seat` may take a connection now, without waiting.
    async fn may_take_now(seat: &Seat) -> bool {
        tokio::time::timeout(Duration::ZERO, seat.turn())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn even_loops_and_a_single_loop_take_at_once() {
        let two = Balance::new(2);
        let (a, b) = (two.seat(0), two.seat(1));
        assert!(may_take_now(&a).await && may_take_now(&b).await);
        let _one = a.took();
        assert!(may_take_now(&a).await, "one ahead is within the slack");
        assert!(may_take_now(&b).await);

        let alone = Balance::new(1).seat(0);
        let _held: Vec<Taken> = (0..100).map(|_| alone.took()).collect();
        assert!(may_take_now(&alone).await, "a single loop never waits");
    }

    #[tokio::test]
    async fn a_loop_ahead_waits_until_another_takes_one() {
        let balance = Balance::new(2);
        let (a, b) = (balance.seat(0), balance.seat(1));
        let _held = [a.took(), a.took()];
        assert!(
            !may_take_now(&a).await,
            "two ahead must leave the next to the other loop"
        );
        let waiting = tokio::spawn(async move { a.turn().await });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        let _taken = b.took();
        tokio::time::timeout(Duration::from_secs(10), waiting)
            .await
            .expect("the other loop taking one wakes the waiting loop")
            .unwrap();
    }

    #[tokio::test]
    async fn a_loop_ahead_takes_again_when_one_of_its_connections_ends() {
        let balance = Balance::new(2);
        let (a, b) = (balance.seat(0), balance.seat(1));
        let [first, _second] = [a.took(), a.took()];
        let waiting = tokio::spawn({
            let a = a.clone();
            async move { a.turn().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        drop(first);
        tokio::time::timeout(Duration::from_secs(10), waiting)
            .await
            .expect("its own connection ending wakes the waiting loop")
            .unwrap();
        assert!(may_take_now(&b).await);
    }

    #[tokio::test]
    async fn the_emptiest_of_three_loops_always_may_take() {
        let balance = Balance::new(3);
        let seats: Vec<Seat> = (0..3).map(|i| balance.seat(i)).collect();
        let mut held = Vec::new();
        // Whatever order they take in, the counts never spread past the slack, and some
        // loop may always take the next one.
        for round in 0..30 {
            let mut ready = Vec::new();
            for seat in &seats {
                if may_take_now(seat).await {
                    ready.push(seat.clone());
                }
            }
            assert!(!ready.is_empty(), "round {round}: every loop held back");
            held.push(ready[round % ready.len()].took());
        }
        let counts: Vec<usize> = balance
            .places
            .iter()
            .map(|p| p.open.load(Ordering::Relaxed))
            .collect();
        assert_eq!(counts.iter().sum::<usize>(), 30);
        assert!(
            counts.iter().max().unwrap() - counts.iter().min().unwrap() <= SLACK + 1,
            "{counts:?}"
        );
    }

    /// Asks for `/f` on `conn`.
    async fn ask(conn: &mut TcpStream) {
        conn.write_all(b"GET /f HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .unwrap();
    }

    /// Reads the whole answer to [`ask`].
    async fn answer(conn: &mut TcpStream) -> String {
        let mut answer = Vec::new();
        let mut buf = [0; 1024];
        while !answer.ends_with(b"\r\n\r\nhi") {
            let n = conn.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed after {:?}", String::from_utf8_lossy(&answer));
            answer.extend_from_slice(&buf[..n]);
        }
        String::from_utf8(answer).unwrap()
    }

    /// The file server's accept loop in a seat, with a real client: two connections
    /// ahead of the other loop, it leaves the next one queued, and takes it once the
    /// other loop takes one.
    #[tokio::test]
    async fn the_file_server_leaves_a_connection_to_the_loop_behind() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), "hi").unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let balance = Balance::new(2);
        let other = balance.seat(1);
        let client = tokio::spawn(async move {
            let mut open = Vec::new();
            for _ in 0..2 {
                let mut conn = TcpStream::connect(addr).await.unwrap();
                ask(&mut conn).await;
                assert!(answer(&mut conn).await.starts_with("HTTP/1.1 200"));
                // Kept open, so this loop holds two and the other none.
                open.push(conn);
            }
            let mut third = TcpStream::connect(addr).await.unwrap();
            ask(&mut third).await;
            let early = tokio::time::timeout(Duration::from_millis(300), answer(&mut third)).await;
            assert!(early.is_err(), "answered while two ahead: {early:?}");
            let _taken = other.took();
            let late = tokio::time::timeout(Duration::from_secs(10), answer(&mut third))
                .await
                .expect("taken once the other loop took one");
            assert!(late.starts_with("HTTP/1.1 200"), "{late}");
        });
        let shutdown = crate::shutdown::Shutdown::new();
        let config = crate::http::HttpConfig::new(dir.path());
        tokio::select! {
            served = seated(Some(balance.seat(0)), crate::http::serve(listener, config, None, shutdown)) => {
                panic!("the server ended: {served:?}")
            }
            done = client => done.unwrap(),
        }
    }
}
