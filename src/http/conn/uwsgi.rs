//! `--protocol uwsgi`: the connection loop for a front end speaking uwsgi (nginx's
//! `uwsgi_pass`). Each request is one packet (`http::uwsgi::parse`) then its body; the app's
//! response goes back framed as for HTTP/1.0 — a status line, headers, then the body with its
//! Content-Length or up to the close — which is what the front end reads.
//!
//! Everything after the packet (the job, the body pump, the response writer, keep-alive) is the
//! HTTP/1 path's `exchange`; this file only replaces reading a head.

use std::sync::Arc;

use super::{Conn, ConnError};
use crate::exchange::ConnInfo;
use crate::http::error::RequestError;
use crate::http::request::Version;
use crate::http::socket::Socket;
use crate::http::uwsgi;

impl<S: Socket> Conn<S> {
    /// Serves packets until the front end closes the connection or a response ends it.
    pub(super) async fn run_uwsgi(&mut self) -> Result<(), ConnError> {
        // gunicorn checks --uwsgi-allow-from against the peer's IP; unix peers always pass
        let allowed = self
            .cfg
            .edge
            .uwsgi
            .as_ref()
            .is_some_and(|allow| allow.allows(self.info.peer.map(|p| p.ip())));
        if !allowed {
            log::warn!(
                "uwsgi request from {} refused: not in --uwsgi-allow-from",
                self.peer()
            );
            return Err(self.refuse(RequestError::UwsgiForbidden).await);
        }
        let socket_info = self.info.clone();
        loop {
            let Some(packet) = self.read_message(uwsgi::parse).await? else {
                if self.rbuf.is_empty() {
                    return Ok(());
                }
                // the front end closed its side mid-packet
                let e = RequestError::BadUwsgiPacket("the connection ended inside a packet");
                return Err(self.refuse(e).await);
            };
            // the packet says who the client is and which server it asked for
            self.info = Arc::new(ConnInfo {
                peer: packet.client.or(socket_info.peer),
                server_name: packet
                    .server_name
                    .unwrap_or_else(|| socket_info.server_name.clone()),
                server_port: packet
                    .server_port
                    .unwrap_or_else(|| socket_info.server_port.clone()),
                forwarded_trusted: socket_info.forwarded_trusted,
                proxy: socket_info.proxy.clone(),
                tls: socket_info.tls.clone(),
                cgi_vars: packet.vars,
            });
            let head = packet.head;
            if crate::http::health::is_probe(&head, self.cfg.health_path.as_deref()) {
                if !self.answer_probe(&head).await? {
                    return Ok(());
                }
                continue;
            }
            // edge: --limit-request-body. Not secure_scheme_headers: the HTTP_* vars are the
            // end client's own headers, passed through; the scheme is what the packet says (as
            // in gunicorn)
            if let Err(e) = self.cfg.edge.check_length(&head) {
                return Err(self.refuse(e).await);
            }
            let keep_alive = self.exchange(head, packet.secure, Version::Http10).await?;
            self.served += 1;
            // as in `Conn::run`: a kept-alive response promised the connection
            if !keep_alive {
                return Ok(());
            }
        }
    }
}
