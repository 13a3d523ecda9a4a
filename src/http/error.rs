//! Why a request was refused before (or while) it reached the app, and the status each reason earns.
//!
//! Every variant maps to exactly one status line; the connection is always closed after the error
//! response because the framing of whatever follows can no longer be trusted.

use thiserror::Error;

/// A client sent something we will not pass to the application.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum RequestError {
    #[error("invalid request line")]
    BadRequestLine,
    #[error("invalid HTTP method")]
    BadMethod,
    #[error("invalid request target")]
    BadTarget,
    #[error("request line is longer than {limit} bytes (--limit-request-line)")]
    RequestLineTooLong { limit: usize },
    #[error("invalid header: {0}")]
    BadHeader(&'static str),
    #[error("more than {limit} header fields (--limit-request-fields)")]
    TooManyHeaders { limit: usize },
    #[error("header field longer than {limit} bytes (--limit-request-field_size)")]
    HeaderTooLarge { limit: usize },
    #[error("request head larger than {limit} bytes")]
    HeadTooLarge { limit: usize },
    #[error("unsupported HTTP version")]
    UnsupportedVersion,
    #[error("unsupported expectation (only Expect: 100-continue is)")]
    ExpectationFailed,
    #[error("unsupported transfer coding {0:?}")]
    UnsupportedTransferCoding(String),
    #[error("invalid message framing: {0}")]
    BadFraming(&'static str),
    #[error("invalid chunked body: {0}")]
    BadChunk(&'static str),
    #[error("request body ended before its declared length")]
    IncompleteBody,
    #[error("request body larger than {limit} bytes (--limit-request-body)")]
    BodyTooLarge { limit: u64 },
    #[error("the client was too slow sending its request (--header-timeout / --body-timeout)")]
    Timeout,
    #[error("contradictory scheme headers (--secure-scheme-headers)")]
    ContradictoryScheme,
    #[error("invalid PROXY protocol header: {0}")]
    BadProxyHeader(&'static str),
    #[error("PROXY protocol header from an address outside --proxy-allow-from")]
    ProxyForbidden,
    #[error("expected the HTTP/2 connection preface (--http2-cleartext prior-knowledge)")]
    NotHttp2,
    #[error("invalid uwsgi packet: {0}")]
    BadUwsgiPacket(&'static str),
    #[error("unsupported uwsgi modifier1 {0} (only 0, a WSGI request, is served)")]
    UwsgiModifier(u8),
    #[error("uwsgi request from an address outside --uwsgi-allow-from")]
    UwsgiForbidden,
}

impl RequestError {
    /// Status code and reason phrase of the error response.
    pub fn status(&self) -> (u16, &'static str) {
        match self {
            RequestError::RequestLineTooLong { .. } => (414, "Request-URI Too Long"),
            RequestError::TooManyHeaders { .. }
            | RequestError::HeaderTooLarge { .. }
            | RequestError::HeadTooLarge { .. } => (431, "Request Header Fields Too Large"),
            RequestError::UnsupportedVersion => (505, "HTTP Version Not Supported"),
            RequestError::UnsupportedTransferCoding(_) => (501, "Not Implemented"),
            RequestError::ExpectationFailed => (417, "Expectation Failed"),
            RequestError::BodyTooLarge { .. } => (413, "Request Entity Too Large"),
            RequestError::Timeout => (408, "Request Timeout"),
            // gunicorn's ForbiddenProxyRequest
            RequestError::ProxyForbidden | RequestError::UwsgiForbidden => (403, "Forbidden"),
            RequestError::UwsgiModifier(_) => (501, "Not Implemented"),
            _ => (400, "Bad Request"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_class_has_its_status() {
        assert_eq!(RequestError::BadRequestLine.status().0, 400);
        assert_eq!(
            RequestError::RequestLineTooLong { limit: 1 }.status().0,
            414
        );
        assert_eq!(RequestError::TooManyHeaders { limit: 1 }.status().0, 431);
        assert_eq!(RequestError::HeaderTooLarge { limit: 1 }.status().0, 431);
        assert_eq!(RequestError::UnsupportedVersion.status().0, 505);
        assert_eq!(
            RequestError::UnsupportedTransferCoding("gzip".into())
                .status()
                .0,
            501
        );
        assert_eq!(RequestError::BadChunk("x").status().0, 400);
        assert_eq!(RequestError::ExpectationFailed.status().0, 417);
        assert_eq!(RequestError::BodyTooLarge { limit: 1 }.status().0, 413);
        assert_eq!(RequestError::Timeout.status().0, 408);
        assert_eq!(RequestError::ContradictoryScheme.status().0, 400);
        assert_eq!(RequestError::BadProxyHeader("x").status().0, 400);
        assert_eq!(RequestError::ProxyForbidden.status().0, 403);
    }
}
