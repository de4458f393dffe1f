//! Server side implementation.

mod builder;
mod handler;
mod negotiate;
mod netascii;
mod read_req;
#[allow(clippy::module_inception)]
mod server;
mod wait;
mod write_req;

pub mod handlers;

pub use self::builder::*;
pub use self::handler::*;
pub use self::server::*;

/// labserv patch: whichever of `a` and `b` finishes first, `a` looked at first (what
/// `futures_lite::future::or` did before the engine moved wholly onto tokio).
pub(crate) async fn first<T>(
    a: impl std::future::Future<Output = T>,
    b: impl std::future::Future<Output = T>,
) -> T {
    tokio::select! {
        biased;
        v = a => v,
        v = b => v,
    }
}
