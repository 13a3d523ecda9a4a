//! A minimal HTTP/1.1 server: every request gets `200 text/plain` with `Hello, World!`.
//!
//! It runs Python nowhere, so its throughput is the ceiling that a Python server on the same
//! core and the same load generator could reach. One thread (tokio current_thread), keep-alive on,
//! like the one-worker setups it is compared with. It must stay this small: anything added here
//! (logging, routing) would lower the ceiling and flatter the servers measured against it.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

static BODY: &[u8] = b"Hello, World!";

async fn hello(_req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut resp = Response::new(Full::new(Bytes::from_static(BODY)));
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    Ok(resp)
}

fn main() {
    let arg = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8000".to_owned());
    let addr: SocketAddr = match arg.parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!(
                "hyper-hello: bad address {arg:?}: {e}; expected HOST:PORT, e.g. 127.0.0.1:8000"
            );
            std::process::exit(2);
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .expect("tokio runtime");
    rt.block_on(serve(addr));
}

async fn serve(addr: SocketAddr) {
    let listener = match TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("hyper-hello: cannot bind {addr}: {e}");
            std::process::exit(1);
        }
    };
    // Same readiness line as gunicorn and ferricorn, so the harness could wait on either.
    eprintln!(
        "Listening at: http://{}",
        listener.local_addr().unwrap_or(addr)
    );
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            // Accept errors (EMFILE, ECONNABORTED) are transient under load: back off briefly
            // instead of exiting or spinning on the same error.
            Err(_) => {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::task::spawn(async move {
            let _ = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service_fn(hello))
                .await;
        });
    }
}
