//! TLS termination for one accepted connection: the handshake (bounded by `--header-timeout`),
//! the facts requests see (`TlsInfo`: scheme https, the ASGI `tls` extension), then the
//! protocol the client chose by ALPN. The encrypted stream itself is `socket::TlsSocket`;
//! the rustls config comes from `net::tls`.

mod socket;

use std::sync::Arc;

use bytes::BytesMut;
use tokio::sync::watch;

use super::conn::{self, ConnConfig};
use super::socket::Socket;
use crate::exchange::ConnInfo;
pub use socket::TlsSocket;

/// What the handshake settled, as requests see it.
#[derive(Debug, Clone)]
pub struct TlsInfo {
    /// The protocol version's code point (0x0303 = TLS 1.2, 0x0304 = TLS 1.3).
    pub version: u16,
    /// The IANA code of the negotiated cipher suite.
    pub cipher_suite: u16,
    /// The client's certificates (DER), leaf first; empty when it sent none.
    pub client_chain: Vec<Vec<u8>>,
}

/// Handshakes on `sock`, then serves the protocol negotiated by ALPN. A failed or silent
/// handshake (a plain-HTTP client, an unknown CA, a missing client certificate) ends the
/// connection with a debug line: it is the client's problem, not the server's.
pub async fn serve<S: Socket>(
    sock: S,
    config: Arc<rustls::ServerConfig>,
    info: Arc<ConnInfo>,
    cfg: Arc<ConnConfig>,
    shutdown: watch::Receiver<bool>,
) {
    let session = match rustls::ServerConnection::new(config) {
        Ok(s) => s,
        Err(e) => return log::error!("cannot start a TLS session: {e}"),
    };
    let peer = info
        .peer
        .map_or_else(|| "unix socket".to_owned(), |p| p.to_string());
    // a PROXY header precedes the TLS handshake on the wire (as HAProxy's `send-proxy` with
    // `ssl` sends it); what is read past it is the start of the ClientHello
    let mut early = BytesMut::new();
    let info = match super::edge::open(&sock, &mut early, info, &cfg.edge).await {
        Ok(info) => info,
        Err(e) => return log::debug!("connection from {peer} closed before TLS: {e}"),
    };
    let tls = TlsSocket::new(sock, session, early);
    match super::edge::before(cfg.edge.head_deadline(), tls.handshake()).await {
        Some(Ok(())) => {}
        Some(Err(e)) => {
            log::debug!("TLS handshake with {peer} failed: {e}");
            return tls.shutdown_write().await;
        }
        None => return log::debug!("TLS handshake with {peer} timed out"),
    }
    let (alpn, facts) = tls.with_connection(|c| {
        let facts = TlsInfo {
            version: c.protocol_version().map_or(0, u16::from),
            cipher_suite: c
                .negotiated_cipher_suite()
                .map_or(0, |s| u16::from(s.suite())),
            client_chain: c
                .peer_certificates()
                .map(|chain| chain.iter().map(|c| c.to_vec()).collect())
                .unwrap_or_default(),
        };
        (c.alpn_protocol().map(<[u8]>::to_vec), facts)
    });
    let mut with_tls = (*info).clone();
    with_tls.tls = Some(Arc::new(facts));
    let info = Arc::new(with_tls);
    // ALPN dispatch: `net::tls::TlsSettings::alpn_protocols` decides what is offered
    match alpn.as_deref() {
        Some(b"h2") => crate::http::h2::serve(tls, info, cfg, shutdown).await,
        Some(b"http/1.1") | None => conn::serve(tls, info, cfg, shutdown).await,
        Some(other) => log::debug!(
            "{peer} negotiated ALPN {:?}, which nothing serves",
            String::from_utf8_lossy(other)
        ),
    }
}

/// PEM text of a DER certificate, as the ASGI TLS extension hands certificates to apps.
pub fn pem_certificate(der: &[u8]) -> String {
    let b64 = data_encoding::BASE64.encode(der);
    let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 64);
    out.push_str("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        // base64 output is ASCII
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

#[cfg(test)]
mod tests;
