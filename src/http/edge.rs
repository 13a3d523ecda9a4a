//! The edge of the network: what a connection must get past before its requests reach the app.
//! The PROXY protocol preamble (`open`), the scheme a trusted front end vouches for and the body
//! size limit (`admit`), and the slow-client deadlines (`header_timeout`, `body_timeout`).
//!
//! `http::conn` calls in here at a few well-marked points; the decisions live here (and in
//! `forwarded` / `proxy_protocol`, which are pure) so the connection loop stays about framing.
//! Nothing here holds a Python thread: every wait is on the I/O thread, bounded by a deadline.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::time::Instant;

use super::error::RequestError;
use super::forwarded::{AllowList, SecureSchemes};
use super::proxy_protocol::{self, Mode, Parse};
use super::request::{Framing, RequestHead};
use super::socket::{read_more, Socket};
use crate::exchange::ConnInfo;
use crate::settings::{registry, SettingError, Value, Values};

/// The settings this module applies, typed once at startup.
#[derive(Debug, Clone, PartialEq)]
pub struct EdgeOptions {
    /// `--forwarded-allow-ips`: peers whose secure-scheme headers count.
    pub forwarded_allow: AllowList,
    /// `secure_scheme_headers`.
    pub secure_schemes: SecureSchemes,
    /// `--proxy-protocol`.
    pub proxy_protocol: Mode,
    /// `--proxy-allow-from`: peers that may send a PROXY header.
    pub proxy_allow: AllowList,
    /// `--limit-request-body` in bytes; 0 = unlimited.
    pub limit_request_body: u64,
    /// `--header-timeout`: how long a request head may take to arrive; `None` = forever.
    pub header_timeout: Option<Duration>,
    /// `--body-timeout`: longest silence while the app waits for request body; `None` =
    /// forever.
    pub body_timeout: Option<Duration>,
    /// Which protocols a connection may speak, and HTTP/2's SETTINGS (`http::h2`).
    pub http2: super::h2::Http2Options,
    /// `--protocol uwsgi`: the peers allowed to speak it (`--uwsgi-allow-from`); `None` when
    /// the protocol is http.
    pub uwsgi: Option<AllowList>,
}

impl Default for EdgeOptions {
    /// gunicorn's defaults, and ferricorn's for its own settings.
    fn default() -> Self {
        EdgeOptions {
            forwarded_allow: AllowList::loopback(),
            secure_schemes: SecureSchemes::default(),
            proxy_protocol: Mode::Off,
            proxy_allow: AllowList::loopback(),
            limit_request_body: 0,
            header_timeout: Some(Duration::from_secs(10)),
            body_timeout: Some(Duration::from_secs(30)),
            http2: super::h2::Http2Options::default(),
            uwsgi: None,
        }
    }
}

impl EdgeOptions {
    pub fn from_values(v: &Values) -> Result<Self, SettingError> {
        let invalid = |name: &'static str, value: Value, reason: String| {
            let setting = registry::find(name).expect("edge settings are declared");
            SettingError::invalid(setting, value, reason)
        };
        let allow = |name: &'static str| {
            let items = v.list(name)?;
            AllowList::parse(items).map_err(|e| invalid(name, Value::List(items.to_vec()), e))
        };
        let repr = v.object("secure_scheme_headers")?;
        let secure_schemes = SecureSchemes::from_repr(repr)
            .map_err(|e| invalid("secure_scheme_headers", Value::Object(repr.to_owned()), e))?;
        let mode = v.str("proxy_protocol")?;
        let proxy_protocol = Mode::from_setting(mode).ok_or_else(|| {
            invalid(
                "proxy_protocol",
                Value::Str(mode.to_owned()),
                "expected off, auto, v1 or v2".into(),
            )
        })?;
        let secs = |name: &'static str| {
            v.seconds(name)
                .map(|s| (s > 0.0).then(|| Duration::from_secs_f64(s)))
        };
        Ok(EdgeOptions {
            forwarded_allow: allow("forwarded_allow_ips")?,
            secure_schemes,
            proxy_protocol,
            proxy_allow: allow("proxy_allow_ips")?,
            // the validator keeps it non-negative
            limit_request_body: u64::try_from(v.int("limit_request_body")?).unwrap_or(0),
            header_timeout: secs("header_timeout")?,
            body_timeout: secs("body_timeout")?,
            http2: super::h2::Http2Options::from_values(v)?,
            uwsgi: match v.str("protocol")? {
                "uwsgi" => Some(allow("uwsgi_allow_ips")?),
                _ => None,
            },
        })
    }

    /// When the head now starting must be complete, if there is a limit.
    pub fn head_deadline(&self) -> Option<Instant> {
        self.header_timeout.map(|t| Instant::now() + t)
    }

    /// The per-request facts both bridges read, or the refusal (400 for contradictory scheme
    /// headers, 413 for a Content-Length over `--limit-request-body`). Chunked bodies are held
    /// to the limit by the body decoder as they arrive.
    pub fn admit(&self, conn: &ConnInfo, head: &RequestHead) -> Result<bool, RequestError> {
        self.check_length(head)?;
        // https on a TLS connection, http otherwise, unless a trusted front end says otherwise
        // (as in gunicorn, its headers win either way)
        self.secure_schemes
            .secure(&head.headers, conn.tls.is_some(), conn.forwarded_trusted)
    }

    /// 413 for a Content-Length over `--limit-request-body`.
    pub fn check_length(&self, head: &RequestHead) -> Result<(), RequestError> {
        match head.framing {
            Framing::Length(n) if self.limit_request_body > 0 && n > self.limit_request_body => {
                Err(RequestError::BodyTooLarge {
                    limit: self.limit_request_body,
                })
            }
            _ => Ok(()),
        }
    }
}

/// Waits for `fut`, up to `deadline` (`None` = no limit); `None` when the time ran out.
pub async fn before<F: std::future::Future>(
    deadline: Option<Instant>,
    fut: F,
) -> Option<F::Output> {
    match deadline {
        Some(d) => tokio::time::timeout_at(d, fut).await.ok(),
        None => Some(fut.await),
    }
}

/// Reads for up to `idle` (`None` = no limit); a silence that long is `RequestError::Timeout`.
pub async fn read_body<S: Socket>(
    sock: &S,
    buf: &mut BytesMut,
    idle: Option<Duration>,
) -> Result<std::io::Result<usize>, RequestError> {
    before(idle.map(|t| Instant::now() + t), read_more(sock, buf))
        .await
        .ok_or(RequestError::Timeout)
}

/// Why a connection was not let in.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Answer this and close.
    #[error("{0}")]
    Refused(RequestError),
    /// The client left, or sent nothing in time: close quietly.
    #[error("the client left before its first request")]
    Gone,
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// Runs at connection start, before the first request: with `--proxy-protocol`, takes a PROXY
/// header off the front of the stream (leaving any HTTP after it in `rbuf`). Returns the
/// connection's facts as requests must see them: with a PROXY header, the client it names is
/// the peer. Waits at most `--header-timeout` for the header to complete.
pub async fn open<S: Socket>(
    sock: &S,
    rbuf: &mut BytesMut,
    mut info: Arc<ConnInfo>,
    opts: &EdgeOptions,
) -> Result<Arc<ConnInfo>, OpenError> {
    // `info.forwarded_trusted` was decided at accept from the socket peer; a PROXY header
    // changes who the client is, not whom we trust (gunicorn checks the socket peer too)
    let peer_ip = info.peer.map(|p| p.ip());
    // on a TLS connection the header came before the handshake, and `http::tls` took it then
    if opts.proxy_protocol == Mode::Off || info.tls.is_some() {
        return Ok(info);
    }
    let deadline = opts.head_deadline();
    let (len, header) = loop {
        match proxy_protocol::parse(rbuf, opts.proxy_protocol) {
            Ok(Parse::NotProxy) => return Ok(info),
            Ok(Parse::Header { len, header }) => break (len, header),
            Ok(Parse::NeedMore) => {}
            Err(e) => return Err(refusal(rbuf, opts, peer_ip, e)),
        }
        // gunicorn checks the source as soon as it knows a header has started
        if proxy_protocol::is_header_start(rbuf, opts.proxy_protocol)
            && !opts.proxy_allow.allows(peer_ip)
        {
            return Err(OpenError::Refused(RequestError::ProxyForbidden));
        }
        match before(deadline, read_more(sock, rbuf)).await {
            Some(Ok(0)) | None => return Err(OpenError::Gone),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
        }
    };
    if !opts.proxy_allow.allows(peer_ip) {
        return Err(OpenError::Refused(RequestError::ProxyForbidden));
    }
    let _ = rbuf.split_to(len);
    if let Some((client, proxy)) = header.addresses {
        let mut next = (*info).clone();
        next.peer = Some(client);
        next.proxy = Some(ProxyInfo {
            protocol: header.protocol,
            proxy,
        });
        info = Arc::new(next);
    }
    Ok(info)
}

/// A malformed header from a peer that may not send one at all is refused as forbidden, as
/// gunicorn checks the source before parsing.
fn refusal(
    rbuf: &[u8],
    opts: &EdgeOptions,
    peer: Option<std::net::IpAddr>,
    e: RequestError,
) -> OpenError {
    if proxy_protocol::is_header_start(rbuf, opts.proxy_protocol) && !opts.proxy_allow.allows(peer)
    {
        return OpenError::Refused(RequestError::ProxyForbidden);
    }
    OpenError::Refused(e)
}

/// What a PROXY header said besides the client: gunicorn's PROXY_PROTOCOL / PROXY_ADDR /
/// PROXY_PORT environ keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyInfo {
    /// "TCP4" or "TCP6".
    pub protocol: &'static str,
    /// The address the client connected to (the balancer's front).
    pub proxy: SocketAddr,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{parse_args_with_env, Env, Parsed};

    fn settings(args: &[&str]) -> EdgeOptions {
        let argv: Vec<String> = std::iter::once("ferricorn")
            .chain(args.iter().copied())
            .chain(["a:app"])
            .map(String::from)
            .collect();
        match parse_args_with_env(&argv, Env::from_fn(&|_| None)) {
            Parsed::Run(s) => s.edge,
            other => panic!("expected Run, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_gunicorns_plus_our_timeouts() {
        assert_eq!(settings(&[]), EdgeOptions::default());
    }

    #[test]
    fn flags_reach_the_typed_options() {
        let o = settings(&[
            "--forwarded-allow-ips",
            "10.0.0.0/8",
            "--proxy-protocol",
            "v2",
            "--proxy-allow-from",
            "*",
            "--limit-request-body",
            "1024",
            "--header-timeout",
            "0.5",
            "--body-timeout",
            "0",
        ]);
        assert!(o.forwarded_allow.allows(Some("10.1.2.3".parse().unwrap())));
        assert!(!o.forwarded_allow.allows(Some("127.0.0.1".parse().unwrap())));
        assert_eq!(o.proxy_protocol, Mode::V2);
        assert!(o.proxy_allow.allows(Some("203.0.113.1".parse().unwrap())));
        assert_eq!(o.limit_request_body, 1024);
        assert_eq!(o.header_timeout, Some(Duration::from_millis(500)));
        assert_eq!(o.body_timeout, None);
        assert_eq!(o.uwsgi, None);
    }

    #[test]
    fn protocol_uwsgi_brings_its_allow_list() {
        let o = settings(&["--protocol", "uwsgi", "--uwsgi-allow-from", "10.0.0.0/8"]);
        let allow = o.uwsgi.expect("uwsgi on");
        assert!(allow.allows(Some("10.9.9.9".parse().unwrap())));
        assert!(!allow.allows(Some("127.0.0.1".parse().unwrap())));
        assert!(allow.allows(None));
        let o = settings(&["--protocol", "uwsgi"]);
        assert_eq!(o.uwsgi, Some(AllowList::loopback()));
    }

    fn head(raw: &[u8]) -> RequestHead {
        let mut buf = BytesMut::from(raw);
        super::super::request::parse_head(&mut buf, &Default::default())
            .unwrap()
            .unwrap()
    }

    fn conn(trusted: bool) -> ConnInfo {
        ConnInfo {
            peer: Some("127.0.0.1:5000".parse().unwrap()),
            server_name: "127.0.0.1".into(),
            server_port: "8000".into(),
            forwarded_trusted: trusted,
            proxy: None,
            tls: None,
            cgi_vars: Vec::new(),
        }
    }

    #[test]
    fn admit_refuses_a_content_length_over_the_limit() {
        let opts = EdgeOptions {
            limit_request_body: 4,
            ..EdgeOptions::default()
        };
        let at = head(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\n");
        assert_eq!(opts.admit(&conn(true), &at), Ok(false));
        let over = head(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n");
        assert_eq!(
            opts.admit(&conn(true), &over),
            Err(RequestError::BodyTooLarge { limit: 4 })
        );
        let unlimited = EdgeOptions::default();
        assert_eq!(unlimited.admit(&conn(true), &over), Ok(false));
    }

    #[test]
    fn admit_applies_scheme_headers_from_trusted_peers_only() {
        let opts = EdgeOptions::default();
        let h = head(b"GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-Proto: https\r\n\r\n");
        assert_eq!(opts.admit(&conn(true), &h), Ok(true));
        assert_eq!(opts.admit(&conn(false), &h), Ok(false));
    }
}
