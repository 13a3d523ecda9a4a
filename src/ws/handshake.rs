//! The opening handshake (RFC 6455 §4.2): is a parsed request an upgrade, is it a valid one, and
//! the exact `101 Switching Protocols` bytes that accept it.
//!
//! Works on [`RequestHead`] and returns bytes: no socket, so tests feed it heads. It decides
//! nothing the app should decide (accept or refuse, which subprotocol, extra headers); it only
//! checks that what the client and the app chose is well-formed.

use bytes::Bytes;
use thiserror::Error;
use tungstenite::handshake::derive_accept_key;

use super::deflate::{negotiate, DeflateParams};
use super::WsConfig;
use crate::http::request::{RequestHead, Version};

/// A malformed upgrade attempt. The caller answers it with [`status`](Self::status) and closes.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum HandshakeError {
    #[error("a WebSocket upgrade must use GET")]
    NotGet,
    #[error("a WebSocket upgrade needs HTTP/1.1")]
    NotHttp11,
    #[error("missing or repeated Sec-WebSocket-Key")]
    MissingKey,
    #[error("Sec-WebSocket-Key is not 16 base64-encoded bytes")]
    BadKey,
    #[error("unsupported Sec-WebSocket-Version (this server speaks 13)")]
    UnsupportedVersion,
}

impl HandshakeError {
    /// 426 for a version we do not speak (RFC 6455 §4.2.2 wants the versions we do speak sent
    /// back, see [`extra_headers`](Self::extra_headers)); 400 for everything else.
    pub fn status(&self) -> u16 {
        match self {
            HandshakeError::UnsupportedVersion => 426,
            _ => 400,
        }
    }

    /// Header lines (`name: value\r\n`) the error response must carry.
    pub fn extra_headers(&self) -> &'static [u8] {
        match self {
            HandshakeError::UnsupportedVersion => b"Sec-WebSocket-Version: 13\r\n",
            _ => b"",
        }
    }
}

/// The app's accept cannot be turned into a valid `101`: an error in the app, not the client.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum AcceptError {
    #[error("subprotocol {0:?} was not offered by the client")]
    SubprotocolNotOffered(String),
    #[error("header {0:?} is set by the server and may not be given by the app")]
    ReservedHeader(String),
    #[error("invalid header name or value {0:?}")]
    BadHeader(String),
}

/// A valid upgrade request, waiting for the app's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeRequest {
    key: Bytes,
    subprotocols: Vec<String>,
    extensions: Vec<String>,
}

impl UpgradeRequest {
    /// `Sec-WebSocket-Protocol` offers in the client's order of preference (ASGI's
    /// `scope["subprotocols"]`).
    pub fn subprotocols(&self) -> &[String] {
        &self.subprotocols
    }

    /// Whether the client offered permessage-deflate (in any of its parameter variants).
    #[cfg(test)]
    pub fn deflate_offered(&self) -> bool {
        self.extensions.iter().any(|e| {
            e.split(';')
                .next()
                .is_some_and(|name| name.trim().eq_ignore_ascii_case("permessage-deflate"))
        })
    }
}

/// What the `101` agreed on; the session needs it to speak the same protocol.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Negotiated {
    pub subprotocol: Option<String>,
    /// permessage-deflate's parameters when it was agreed.
    pub deflate: Option<DeflateParams>,
}

/// Is this request a WebSocket upgrade, and is it a valid one?
///
/// `Ok(None)`: not an upgrade attempt (no `Upgrade: websocket` with `Connection: upgrade`), so
/// it is an ordinary HTTP request. `Err`: an attempt that is malformed; answer it with the
/// error's status. Both headers are required for an attempt, as in uvicorn: `Upgrade` without
/// the `Connection` option must be ignored by a server (RFC 9110 §7.8).
pub fn upgrade_request(head: &RequestHead) -> Result<Option<UpgradeRequest>, HandshakeError> {
    let wants_websocket = header_values(head, b"upgrade")
        .flat_map(tokens)
        .any(|t| t.eq_ignore_ascii_case(b"websocket"));
    let connection_upgrade = header_values(head, b"connection")
        .flat_map(tokens)
        .any(|t| t.eq_ignore_ascii_case(b"upgrade"));
    if !(wants_websocket && connection_upgrade) {
        return Ok(None);
    }
    if &head.method[..] != b"GET" {
        return Err(HandshakeError::NotGet);
    }
    if head.version != Version::Http11 {
        return Err(HandshakeError::NotHttp11);
    }
    let mut versions = header_values(head, b"sec-websocket-version");
    if versions.next().map(|v| &v[..]) != Some(b"13") || versions.next().is_some() {
        return Err(HandshakeError::UnsupportedVersion);
    }
    let mut keys = header_values(head, b"sec-websocket-key");
    let (Some(key), None) = (keys.next(), keys.next()) else {
        return Err(HandshakeError::MissingKey);
    };
    if !is_base64_of_16_bytes(key) {
        return Err(HandshakeError::BadKey);
    }
    let subprotocols = header_values(head, b"sec-websocket-protocol")
        .flat_map(tokens)
        .map(|t| String::from_utf8_lossy(t).into_owned())
        .collect();
    // each entry is `name; param; param=value`, offers in order of preference
    let extensions = header_values(head, b"sec-websocket-extensions")
        .flat_map(tokens)
        .map(|t| String::from_utf8_lossy(t).into_owned())
        .collect();
    Ok(Some(UpgradeRequest {
        key: key.clone(),
        subprotocols,
        extensions,
    }))
}

/// The complete `101 Switching Protocols` response accepting `req`, and what it negotiated.
///
/// `subprotocol` must be one the client offered (RFC 6455 §4.2.2 step 5); `extra_headers` are
/// the app's `(name, value)` pairs, which may not replace the headers that make the handshake.
pub fn accept_response(
    req: &UpgradeRequest,
    subprotocol: Option<&str>,
    extra_headers: &[(Vec<u8>, Vec<u8>)],
    cfg: &WsConfig,
) -> Result<(Vec<u8>, Negotiated), AcceptError> {
    if let Some(p) = subprotocol {
        if !req.subprotocols.iter().any(|offered| offered == p) {
            return Err(AcceptError::SubprotocolNotOffered(p.to_owned()));
        }
    }
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n",
    );
    out.extend_from_slice(b"Sec-WebSocket-Accept: ");
    out.extend_from_slice(derive_accept_key(&req.key).as_bytes());
    out.extend_from_slice(b"\r\n");
    if let Some(p) = subprotocol {
        out.extend_from_slice(b"Sec-WebSocket-Protocol: ");
        out.extend_from_slice(p.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let deflate = if cfg.per_message_deflate {
        negotiate(&req.extensions)
    } else {
        None
    };
    if let Some((answer, _)) = &deflate {
        out.extend_from_slice(b"Sec-WebSocket-Extensions: ");
        out.extend_from_slice(answer.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Server: ferricorn\r\nDate: ");
    crate::http::response::with_date(|d| out.extend_from_slice(d));
    out.extend_from_slice(b"\r\n");
    for (name, value) in extra_headers {
        check_extra_header(name, value)?;
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Ok((
        out,
        Negotiated {
            subprotocol: subprotocol.map(str::to_owned),
            deflate: deflate.map(|(_, params)| params),
        },
    ))
}

/// Headers that define the handshake itself, or that a 1xx response may not carry (RFC 9110
/// §8.6: no Content-Length on 1xx). `Server`/`Date` we write once ourselves.
const RESERVED: &[&str] = &[
    "upgrade",
    "connection",
    "sec-websocket-accept",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
    "content-length",
    "transfer-encoding",
    "server",
    "date",
];

fn check_extra_header(name: &[u8], value: &[u8]) -> Result<(), AcceptError> {
    let lossy = || String::from_utf8_lossy(name).into_owned();
    let token = |b: &u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b);
    if name.is_empty() || !name.iter().all(token) {
        return Err(AcceptError::BadHeader(lossy()));
    }
    // The bridge validates values already; a stray CR/LF here would split the response.
    if value.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0) {
        return Err(AcceptError::BadHeader(lossy()));
    }
    if RESERVED
        .iter()
        .any(|r| name.eq_ignore_ascii_case(r.as_bytes()))
    {
        return Err(AcceptError::ReservedHeader(lossy()));
    }
    Ok(())
}

fn header_values<'a>(head: &'a RequestHead, name: &'a [u8]) -> impl Iterator<Item = &'a Bytes> {
    head.headers
        .iter()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// The comma-separated members of a list-valued field, trimmed, empty members skipped.
fn tokens(value: &Bytes) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim)
        .filter(|t| !t.is_empty())
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// RFC 6455 §4.1: the key is a random 16-byte value, base64-encoded: 22 characters and `==`.
fn is_base64_of_16_bytes(key: &[u8]) -> bool {
    let b64 = |b: &u8| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/';
    key.len() == 24 && key[..22].iter().all(b64) && &key[22..] == b"=="
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;
    use crate::http::request::{parse_head, Limits};

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

    fn head(raw: &str) -> RequestHead {
        let mut buf = BytesMut::from(raw.replace('\n', "\r\n").as_bytes());
        parse_head(&mut buf, &Limits::default())
            .expect("valid HTTP")
            .expect("complete head")
    }

    fn upgrade(extra: &str) -> String {
        format!(
            "GET /chat HTTP/1.1\nHost: example.com\nUpgrade: websocket\nConnection: Upgrade\n\
             Sec-WebSocket-Version: 13\nSec-WebSocket-Key: {KEY}\n{extra}\n"
        )
    }

    fn valid(extra: &str) -> UpgradeRequest {
        upgrade_request(&head(&upgrade(extra)))
            .expect("valid upgrade")
            .expect("an upgrade attempt")
    }

    fn response_text(resp: &[u8]) -> String {
        String::from_utf8(resp.to_vec()).expect("ascii response")
    }

    #[test]
    fn accept_key_matches_rfc_6455_example() {
        let (resp, negotiated) =
            accept_response(&valid(""), None, &[], &WsConfig::default()).expect("accepted");
        let text = response_text(&resp);
        assert!(text.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
        assert!(text.contains("\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        assert!(text.contains("\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"));
        assert!(text.ends_with("\r\n\r\n"));
        assert!(!text.contains("Sec-WebSocket-Protocol"));
        assert_eq!(negotiated, Negotiated::default());
    }

    #[test]
    fn plain_requests_are_not_upgrades() {
        let plain = head("GET / HTTP/1.1\nHost: x\n\n");
        assert_eq!(upgrade_request(&plain), Ok(None));
        // h2c and other protocols are not ours to answer
        let h2c = head("GET / HTTP/1.1\nHost: x\nUpgrade: h2c\nConnection: Upgrade\n\n");
        assert_eq!(upgrade_request(&h2c), Ok(None));
        // Upgrade without the Connection option must be ignored (RFC 9110 §7.8)
        let no_conn = head("GET / HTTP/1.1\nHost: x\nUpgrade: websocket\n\n");
        assert_eq!(upgrade_request(&no_conn), Ok(None));
    }

    #[test]
    fn connection_and_upgrade_are_token_lists_in_any_case() {
        let raw = format!(
            "GET / HTTP/1.1\nHost: x\nUpgrade: foo, WebSocket\nConnection: keep-alive, UPGRADE\n\
             Sec-WebSocket-Version: 13\nSec-WebSocket-Key: {KEY}\n\n"
        );
        assert!(matches!(upgrade_request(&head(&raw)), Ok(Some(_))));
    }

    #[test]
    fn bad_method_version_and_key_are_refused() {
        let post = upgrade("").replacen("GET", "POST", 1);
        assert_eq!(upgrade_request(&head(&post)), Err(HandshakeError::NotGet));
        let http10 = upgrade("").replacen("HTTP/1.1", "HTTP/1.0", 1);
        assert_eq!(
            upgrade_request(&head(&http10)),
            Err(HandshakeError::NotHttp11)
        );
        let no_key = upgrade("").replace(&format!("Sec-WebSocket-Key: {KEY}\n"), "");
        assert_eq!(
            upgrade_request(&head(&no_key)),
            Err(HandshakeError::MissingKey)
        );
        let two_keys = upgrade(&format!("Sec-WebSocket-Key: {KEY}\n"));
        assert_eq!(
            upgrade_request(&head(&two_keys)),
            Err(HandshakeError::MissingKey)
        );
        for bad in [
            "abc",
            "dGhlIHNhbXBsZSBub25jZQ=",
            "dGhlIHNhbXBsZSBub25j*Q==",
            "dGhlIHNhbXBsZSBub25jZQ",
        ] {
            let raw = upgrade("").replace(KEY, bad);
            assert_eq!(
                upgrade_request(&head(&raw)),
                Err(HandshakeError::BadKey),
                "{bad}"
            );
        }
    }

    #[test]
    fn unsupported_version_earns_426_naming_13() {
        for v in ["8", "14", "13, 8", ""] {
            let raw = upgrade("").replace(
                "Sec-WebSocket-Version: 13",
                &format!("Sec-WebSocket-Version: {v}"),
            );
            let err = upgrade_request(&head(&raw)).expect_err(v);
            assert_eq!(err, HandshakeError::UnsupportedVersion);
            assert_eq!(err.status(), 426);
            assert_eq!(err.extra_headers(), b"Sec-WebSocket-Version: 13\r\n");
        }
        let missing = upgrade("").replace("Sec-WebSocket-Version: 13\n", "");
        assert_eq!(
            upgrade_request(&head(&missing)),
            Err(HandshakeError::UnsupportedVersion)
        );
        assert_eq!(HandshakeError::BadKey.status(), 400);
        assert_eq!(HandshakeError::BadKey.extra_headers(), b"");
    }

    #[test]
    fn subprotocols_are_offered_in_order_across_fields() {
        let req =
            valid("Sec-WebSocket-Protocol: chat, superchat\nSec-WebSocket-Protocol: wamp.2.json\n");
        assert_eq!(req.subprotocols(), ["chat", "superchat", "wamp.2.json"]);
        assert!(valid("").subprotocols().is_empty());
    }

    #[test]
    fn chosen_subprotocol_is_sent_back() {
        let req = valid("Sec-WebSocket-Protocol: chat, superchat\n");
        let (resp, negotiated) =
            accept_response(&req, Some("superchat"), &[], &WsConfig::default()).expect("accepted");
        assert!(response_text(&resp).contains("\r\nSec-WebSocket-Protocol: superchat\r\n"));
        assert_eq!(negotiated.subprotocol.as_deref(), Some("superchat"));
    }

    #[test]
    fn subprotocol_the_client_did_not_offer_is_an_app_error() {
        let req = valid("Sec-WebSocket-Protocol: chat\n");
        assert_eq!(
            accept_response(&req, Some("mqtt"), &[], &WsConfig::default()),
            Err(AcceptError::SubprotocolNotOffered("mqtt".into()))
        );
    }

    #[test]
    fn deflate_offer_is_answered_when_enabled() {
        let req = valid(
            "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=8, \
             permessage-deflate; client_max_window_bits\n",
        );
        assert!(req.deflate_offered());
        assert!(!valid("").deflate_offered());
        assert!(!valid("Sec-WebSocket-Extensions: x-webkit-deflate-frame\n").deflate_offered());
        // the first offer asks for a window zlib cannot do, so the second one is taken
        let (resp, negotiated) =
            accept_response(&req, None, &[], &WsConfig::default()).expect("accepted");
        assert!(
            response_text(&resp).contains("\r\nSec-WebSocket-Extensions: permessage-deflate\r\n")
        );
        assert_eq!(negotiated.deflate, Some(DeflateParams::default()));
    }

    #[test]
    fn deflate_is_not_negotiated_when_disabled_or_not_offered() {
        let off = WsConfig {
            per_message_deflate: false,
            ..WsConfig::default()
        };
        let offered = valid("Sec-WebSocket-Extensions: permessage-deflate\n");
        for (req, cfg) in [(&offered, &off), (&valid(""), &WsConfig::default())] {
            let (resp, negotiated) = accept_response(req, None, &[], cfg).expect("accepted");
            assert!(!response_text(&resp).contains("Sec-WebSocket-Extensions"));
            assert_eq!(negotiated.deflate, None);
        }
    }

    #[test]
    fn app_headers_are_appended_but_cannot_replace_the_handshake() {
        let req = valid("");
        let extra = [(b"Set-Cookie".to_vec(), b"a=b".to_vec())];
        let (resp, _) = accept_response(&req, None, &extra, &WsConfig::default()).expect("ok");
        assert!(response_text(&resp).ends_with("\r\nSet-Cookie: a=b\r\n\r\n"));
        for name in [
            "Sec-WebSocket-Accept",
            "connection",
            "Sec-WebSocket-Protocol",
            "Content-Length",
        ] {
            let extra = [(name.as_bytes().to_vec(), b"x".to_vec())];
            assert_eq!(
                accept_response(&req, None, &extra, &WsConfig::default()),
                Err(AcceptError::ReservedHeader(name.into()))
            );
        }
        let split = [(b"X-A".to_vec(), b"1\r\nX-B: 2".to_vec())];
        assert!(matches!(
            accept_response(&req, None, &split, &WsConfig::default()),
            Err(AcceptError::BadHeader(_))
        ));
        let bad_name = [(b"X A".to_vec(), b"1".to_vec())];
        assert!(matches!(
            accept_response(&req, None, &bad_name, &WsConfig::default()),
            Err(AcceptError::BadHeader(_))
        ));
    }
}
