//! `--health-path`: a liveness/readiness answer from the connection itself, never entering
//! Python, so probes cost nothing and still answer while the app is busy. During a graceful
//! stop it says 503, so a load balancer stops sending new requests to a draining worker.

use crate::exchange::ResponseHead;
use crate::http::request::{Framing, RequestHead, Version};
use crate::http::response::{encode_head, BodyFraming};

/// Whether `head` is a probe of `path` this module answers (GET or HEAD without a body).
pub fn is_probe(head: &RequestHead, path: Option<&str>) -> bool {
    path.is_some_and(|p| head.path[..] == *p.as_bytes())
        && head.framing == Framing::Empty
        && matches!(&head.method[..], b"GET" | b"HEAD")
}

/// The probe's head and body, for either protocol.
pub fn response(stopping: bool) -> (ResponseHead, &'static [u8]) {
    let (code, status, body): (u16, &'static [u8], &'static [u8]) = if stopping {
        (503, b"503 Service Unavailable", b"stopping\n")
    } else {
        (200, b"200 OK", b"OK\n")
    };
    let head = ResponseHead {
        code,
        status: bytes::Bytes::from_static(status),
        headers: b"Content-Type: text/plain\r\nCache-Control: no-store\r\n".to_vec(),
        content_length: None,
        close: false,
    };
    (head, body)
}

/// The probe's whole response.
pub fn answer(out: &mut Vec<u8>, head: &RequestHead, stopping: bool, keep_alive: bool) {
    let (response, body) = response(stopping);
    let len = body.len() as u64;
    let version = head.version;
    encode_head(
        out,
        version,
        &response,
        BodyFraming::Length(len),
        Some(len),
        keep_alive && !stopping && version == Version::Http11,
    );
    if !head.is_head() {
        out.extend_from_slice(body);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::request::{parse_head, Limits};

    fn head(raw: &[u8]) -> RequestHead {
        let mut buf = bytes::BytesMut::from(raw);
        parse_head(&mut buf, &Limits::default()).unwrap().unwrap()
    }

    #[test]
    fn only_bodiless_gets_and_heads_of_the_exact_path_are_probes() {
        let get = head(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n");
        assert!(is_probe(&get, Some("/healthz")));
        assert!(!is_probe(&get, Some("/health")));
        assert!(!is_probe(&get, None));
        let post = head(b"POST /healthz HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx");
        assert!(!is_probe(&post, Some("/healthz")));
    }

    #[test]
    fn a_stopping_worker_answers_503_and_closes() {
        let get = head(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n");
        let mut out = Vec::new();
        answer(&mut out, &get, true, true);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
            "{text}"
        );
        assert!(text.contains("Connection: close\r\n"), "{text}");
        assert!(text.ends_with("stopping\n"), "{text}");
    }
}
