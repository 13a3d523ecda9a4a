//! ws-load: websocket echo load for bench/run.py.
//!
//! `ws-load ws://HOST:PORT/PATH [-c CONNS] [-d SECONDS] [-s BYTES] [--binary]` opens CONNS
//! connections, then every connection sends one message of BYTES bytes and waits for its echo, in a
//! loop, until SECONDS have passed since all of them were connected. It prints the messages echoed
//! within that window per second and the round-trip latency percentiles, one `key: value` per line
//! (bench/harness/wsload.py parses them). One thread (tokio current_thread), like `wrk -t1`, so
//! that pinning it to one core gives the load generator exactly one core.
//!
//! `ws-load URL --check` sends one text and one binary message on one connection and exits 0 only
//! when both come back unchanged: the harness's correctness check before any load.
//!
//! Latencies are kept one per message (8 bytes each) and sorted at the end: a 10 s run at 100k
//! msgs/s keeps 8 MB, which is cheaper than anything cleverer in the hot loop.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{client_async, WebSocketStream};

type Ws = WebSocketStream<TcpStream>;

struct Opts {
    url: String,
    conns: usize,
    seconds: f64,
    size: usize,
    binary: bool,
    check: bool,
}

const USAGE: &str =
    "usage: ws-load ws://HOST:PORT/[PATH] [-c CONNS] [-d SECONDS] [-s BYTES] [--binary] [--check]";

fn fail(msg: &str) -> ! {
    eprintln!("ws-load: {msg}\n{USAGE}");
    std::process::exit(2);
}

fn parse_opts() -> Opts {
    let mut o = Opts {
        url: String::new(),
        conns: 32,
        seconds: 10.0,
        size: 64,
        binary: false,
        check: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .unwrap_or_else(|| fail(&format!("{name} needs a value")))
        };
        match a.as_str() {
            "-c" => {
                o.conns = value("-c")
                    .parse()
                    .unwrap_or_else(|_| fail("-c: not a number"))
            }
            "-d" => {
                o.seconds = value("-d")
                    .parse()
                    .unwrap_or_else(|_| fail("-d: not a number"))
            }
            "-s" => {
                o.size = value("-s")
                    .parse()
                    .unwrap_or_else(|_| fail("-s: not a number"))
            }
            "--binary" => o.binary = true,
            "--check" => o.check = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            _ if a.starts_with("ws://") && o.url.is_empty() => o.url = a,
            _ => fail(&format!("unexpected argument {a:?}")),
        }
    }
    if o.url.is_empty() {
        fail("no ws:// URL given");
    }
    if o.conns == 0 || o.seconds <= 0.0 {
        fail("-c and -d must be > 0");
    }
    o
}

/// `host:port` out of `ws://host:port/path`.
fn authority(url: &str) -> &str {
    let rest = &url["ws://".len()..];
    rest.split('/').next().unwrap_or(rest)
}

async fn connect(url: &str) -> Result<Ws, String> {
    let stream = TcpStream::connect(authority(url))
        .await
        .map_err(|e| format!("connect {}: {e}", authority(url)))?;
    let _ = stream.set_nodelay(true);
    let (ws, _resp) = client_async(url, stream)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    Ok(ws)
}

/// Send `msg` and wait for the next data message; pings and pongs in between are skipped
/// (tungstenite answers pings by itself).
async fn round_trip(ws: &mut Ws, msg: Message) -> Result<Message, String> {
    ws.send(msg).await.map_err(|e| format!("send: {e}"))?;
    loop {
        match ws.next().await {
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
            Some(Ok(m)) => return Ok(m),
            Some(Err(e)) => return Err(format!("receive: {e}")),
            None => return Err("connection closed by the server".into()),
        }
    }
}

async fn close(mut ws: Ws) {
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        let _ = ws.close(None).await;
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
}

async fn check(url: &str) -> Result<(), String> {
    let mut ws = connect(url).await?;
    let text = "ws-load check: h\u{e9}llo \u{2713}";
    match round_trip(&mut ws, Message::text(text)).await? {
        Message::Text(t) if t.as_str() == text => {}
        other => return Err(format!("text echo: got {other:?}")),
    }
    let bin = Bytes::from((0..=255u8).chain(0..=255u8).collect::<Vec<u8>>());
    match round_trip(&mut ws, Message::Binary(bin.clone())).await? {
        Message::Binary(b) if b == bin => {}
        other => return Err(format!("binary echo: got {other:?}")),
    }
    close(ws).await;
    Ok(())
}

struct Tally {
    messages: u64,
    errors: u64,
    latencies_ns: Vec<u64>,
}

/// One connection's loop: counts only the round trips that finished before `deadline`.
async fn drive(mut ws: Ws, msg: Message, deadline: tokio::time::Instant) -> Tally {
    let mut t = Tally {
        messages: 0,
        errors: 0,
        latencies_ns: Vec::with_capacity(1 << 14),
    };
    loop {
        let start = Instant::now();
        match tokio::time::timeout_at(deadline, round_trip(&mut ws, msg.clone())).await {
            Err(_) => break, // the window closed while this message was in flight
            Ok(Err(e)) => {
                if t.errors == 0 {
                    eprintln!("ws-load: {e}");
                }
                t.errors += 1;
                return t;
            }
            Ok(Ok(reply)) => {
                if reply != msg {
                    t.errors += 1;
                    if t.errors == 1 {
                        eprintln!("ws-load: echo differs from the message sent: {reply:?}");
                    }
                    continue;
                }
                t.messages += 1;
                t.latencies_ns.push(start.elapsed().as_nanos() as u64);
            }
        }
    }
    close(ws).await;
    t
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1e6
}

async fn load(o: &Opts) -> i32 {
    let msg = if o.binary {
        Message::Binary(Bytes::from(vec![b'x'; o.size]))
    } else {
        Message::text("x".repeat(o.size))
    };
    let mut socks = Vec::with_capacity(o.conns);
    let mut connect_errors = 0u64;
    for _ in 0..o.conns {
        match connect(&o.url).await {
            Ok(ws) => socks.push(ws),
            Err(e) => {
                if connect_errors == 0 {
                    eprintln!("ws-load: {e}");
                }
                connect_errors += 1;
            }
        }
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(o.seconds);
    let tasks: Vec<_> = socks
        .into_iter()
        .map(|ws| tokio::spawn(drive(ws, msg.clone(), deadline)))
        .collect();
    let mut messages = 0u64;
    let mut errors = connect_errors;
    let mut lat = Vec::new();
    for task in tasks {
        let t = task.await.expect("connection task panicked");
        messages += t.messages;
        errors += t.errors;
        lat.extend(t.latencies_ns);
    }
    // Only round trips that finished inside the window were counted, so the rate is over it.
    let window = o.seconds;
    lat.sort_unstable();
    let kind = if o.binary { "binary" } else { "text" };
    println!(
        "ws-load: {} {} connections, {}-byte {kind} messages, {:.2} s",
        o.url, o.conns, o.size, o.seconds
    );
    println!("connections: {}", o.conns as u64 - connect_errors);
    println!("messages: {messages}");
    println!("errors: {errors}");
    println!("msgs/sec: {:.2}", messages as f64 / window);
    for p in [50.0, 90.0, 99.0] {
        println!("latency p{p}: {:.3} ms", percentile(&lat, p));
    }
    if messages == 0 {
        1
    } else {
        0
    }
}

fn main() {
    let o = parse_opts();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .expect("tokio runtime");
    let code = if o.check {
        match rt.block_on(check(&o.url)) {
            Ok(()) => {
                println!("check: ok");
                0
            }
            Err(e) => {
                eprintln!("ws-load: check failed: {e}");
                1
            }
        }
    } else {
        rt.block_on(load(&o))
    };
    std::process::exit(code);
}
