//! A device's JSON API mocked with routes: a web flasher or a test script talks to it as
//! to the board.
//!
//! Run it with `cargo run --example device_mock`, then:
//!   curl -X PUT -d '{"fw": "2.1"}' http://127.0.0.1:8000/boards/7
//!   curl http://127.0.0.1:8000/boards/7

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use labserv::wsgi::{self, Reply, Router, WsgiConfig};
use serde_json::Value;

fn main() -> anyhow::Result<()> {
    let boards = Arc::new(Mutex::new(BTreeMap::<String, Value>::new()));
    let (read, write) = (boards.clone(), boards);
    let app = Router::new()
        .get("/boards/{id}", move |req| {
            let boards = read.lock().map_err(|_| Reply::empty(500))?;
            let id = req.param("id").unwrap_or_default();
            boards
                .get(id)
                .map(Reply::json)
                .ok_or_else(|| Reply::empty(404))
        })
        .put("/boards/{id}", move |req| {
            let status: Value = req.json()?;
            let id = req.param("id").unwrap_or_default().to_string();
            let mut boards = write.lock().map_err(|_| Reply::empty(500))?;
            boards.insert(id, status.clone());
            Ok(Reply::json(&status).status(201))
        });

    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:8000").await?;
        println!("listening on http://{}/boards/7", listener.local_addr()?);
        let shutdown = labserv::Shutdown::new();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let _ = labserv::shutdown::signal().await;
            stop.trigger();
        });
        wsgi::serve(
            listener,
            Arc::new(app),
            WsgiConfig::default(),
            None,
            shutdown,
        )
        .await?;
        Ok(())
    })
}
