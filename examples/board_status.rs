//! A WSGI-style app in a few lines: boards POST their status, anyone GETs the last one.
//!
//! Run it with `cargo run --example board_status`, then:
//!   curl -d 'rev2 ok' http://127.0.0.1:8000/status
//!   curl http://127.0.0.1:8000/status

use std::io::Read;
use std::sync::{Arc, Mutex};

use labserv::wsgi::{self, BodyIter, Environ, StartResponse, WsgiConfig};

fn main() -> anyhow::Result<()> {
    let last = Arc::new(Mutex::new(String::from("no report yet\n")));
    let app = move |env: &Environ,
                    input: &mut dyn Read,
                    start: &mut StartResponse|
          -> std::io::Result<BodyIter> {
        let mut last = last.lock().map_err(|_| std::io::Error::other("poisoned"))?;
        if env.get("REQUEST_METHOD").map(String::as_str) == Some("POST") {
            last.clear();
            input.read_to_string(&mut last)?;
            last.push('\n');
        }
        start.start("200 OK", vec![("Content-Type".into(), "text/plain".into())]);
        Ok(wsgi::once(last.clone()))
    };

    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:8000").await?;
        println!("listening on http://{}/status", listener.local_addr()?);
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
