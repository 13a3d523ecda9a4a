//! permessage-deflate (RFC 7692): choosing an offer from `Sec-WebSocket-Extensions`, and the
//! per-connection compressor and decompressor.
//!
//! tungstenite has no deflate (see the `ws` module doc), so this is ours, on flate2's raw deflate
//! streams. It knows nothing about frames: the session hands it whole message payloads and sets
//! or checks RSV1 itself.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use thiserror::Error;

/// The four bytes a sync flush ends with; RFC 7692 §7.2.1 removes them from each message and
/// the receiver appends them back before inflating.
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// What both sides agreed for one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateParams {
    /// We must compress every message with a fresh LZ77 context.
    pub server_no_context_takeover: bool,
    /// The client compresses each message with a fresh context (we may then reset too).
    pub client_no_context_takeover: bool,
    /// Our LZ77 window, 9 ..= 15.
    pub server_max_window_bits: u8,
}

impl Default for DeflateParams {
    fn default() -> Self {
        DeflateParams {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
        }
    }
}

/// Picks the first permessage-deflate offer we can honour (RFC 7692 §5) among the client's
/// extension entries; returns our `Sec-WebSocket-Extensions` value and the agreed parameters.
///
/// An offer with an unknown, repeated or malformed parameter is declined, as §7.1 requires, and
/// so is `server_max_window_bits=8`: zlib cannot make raw deflate streams with a 256-byte window.
pub fn negotiate(entries: &[String]) -> Option<(String, DeflateParams)> {
    entries.iter().find_map(|entry| accept_offer(entry))
}

fn accept_offer(entry: &str) -> Option<(String, DeflateParams)> {
    let mut parts = entry.split(';').map(str::trim);
    if !parts.next()?.eq_ignore_ascii_case("permessage-deflate") {
        return None;
    }
    let mut params = DeflateParams::default();
    let mut seen = Vec::new();
    let mut response = String::from("permessage-deflate");
    for part in parts {
        let (name, value) = match part.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim().trim_matches('"'))),
            None => (part, None),
        };
        let name = name.to_ascii_lowercase();
        if seen.contains(&name) {
            return None;
        }
        match (name.as_str(), value) {
            ("server_no_context_takeover", None) => {
                params.server_no_context_takeover = true;
                response.push_str("; server_no_context_takeover");
            }
            ("client_no_context_takeover", None) => {
                params.client_no_context_takeover = true;
                response.push_str("; client_no_context_takeover");
            }
            ("server_max_window_bits", Some(v)) => {
                let bits = window_bits(v)?;
                if bits < 9 {
                    return None;
                }
                params.server_max_window_bits = bits;
                response.push_str("; server_max_window_bits=");
                response.push_str(v);
            }
            // The client tells us it can limit its window; we inflate with the largest window,
            // which reads any smaller one, so we need not answer it.
            ("client_max_window_bits", None) => {}
            ("client_max_window_bits", Some(v)) => {
                window_bits(v)?;
            }
            _ => return None,
        }
        seen.push(name);
    }
    Some((response, params))
}

/// `8` ..= `15`, digits only (RFC 7692 §7.1.2).
fn window_bits(v: &str) -> Option<u8> {
    if v.is_empty() || v.len() > 2 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok().filter(|b| (8..=15).contains(b))
}

/// Why a compressed message could not be read.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum InflateError {
    #[error("decompressed message larger than {0} bytes")]
    TooBig(usize),
    #[error("invalid deflate data")]
    Corrupt,
}

/// One connection's compression state, both directions.
pub struct Codec {
    params: DeflateParams,
    compress: Compress,
    decompress: Decompress,
}

impl Codec {
    pub fn new(params: DeflateParams) -> Self {
        Codec {
            params,
            compress: new_compress(params),
            decompress: new_decompress(),
        }
    }

    /// The payload of one outgoing compressed message (RSV1 set on its frame).
    pub fn compress(&mut self, data: &[u8]) -> Vec<u8> {
        // A sync flush with no new input makes no progress, so zlib writes nothing, and an
        // empty payload would not inflate. An empty stored block (RFC 7692 §7.2.3.6) needs no
        // context and leaves the window as it was.
        if data.is_empty() {
            return vec![0x00];
        }
        let mut out = Vec::with_capacity(data.len() / 2 + 64);
        let mut input = data;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(1024));
            }
            let before = self.compress.total_in();
            // Errors only come from misuse (a stream already finished), never from data.
            if self
                .compress
                .compress_vec(input, &mut out, FlushCompress::Sync)
                .is_err()
            {
                break;
            }
            let used = usize::try_from(self.compress.total_in() - before).unwrap_or(input.len());
            input = &input[used.min(input.len())..];
            // a sync flush is complete once it leaves output space unused
            if input.is_empty() && out.len() < out.capacity() {
                break;
            }
        }
        if out.ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        }
        if self.params.server_no_context_takeover {
            self.compress = new_compress(self.params);
        }
        out
    }

    /// Inflates one incoming message, refusing to produce more than `max` bytes.
    pub fn decompress(&mut self, data: &[u8], max: usize) -> Result<Vec<u8>, InflateError> {
        let mut out = Vec::with_capacity((data.len() * 3).max(256).min(max.saturating_add(1)));
        for input in [data, &TAIL[..]] {
            let mut input = input;
            loop {
                if out.len() > max {
                    return Err(InflateError::TooBig(max));
                }
                if out.capacity() == out.len() {
                    out.reserve(
                        out.capacity()
                            .min(max.saturating_add(1) - out.len())
                            .max(256),
                    );
                }
                let before = self.decompress.total_in();
                let status = self
                    .decompress
                    .decompress_vec(input, &mut out, FlushDecompress::Sync)
                    .map_err(|_| InflateError::Corrupt)?;
                let used = usize::try_from(self.decompress.total_in() - before)
                    .map_err(|_| InflateError::Corrupt)?;
                input = &input[used.min(input.len())..];
                match status {
                    // the message may not end the deflate stream (RFC 7692 §7.2.2 says a final
                    // block is allowed, but then the context cannot continue)
                    Status::StreamEnd => {
                        self.decompress = new_decompress();
                        break;
                    }
                    Status::Ok | Status::BufError => {
                        if input.is_empty() && out.len() < out.capacity() {
                            break;
                        }
                        if used == 0 && out.len() < out.capacity() {
                            return Err(InflateError::Corrupt);
                        }
                    }
                }
            }
        }
        if out.len() > max {
            return Err(InflateError::TooBig(max));
        }
        if self.params.client_no_context_takeover {
            self.decompress = new_decompress();
        }
        Ok(out)
    }
}

fn new_compress(params: DeflateParams) -> Compress {
    let bits = params.server_max_window_bits.clamp(9, 15);
    // level 6, zlib's default: uvicorn/websockets use the same trade-off
    Compress::new_with_window_bits(Compression::default(), false, bits)
}

fn new_decompress() -> Decompress {
    Decompress::new_with_window_bits(false, 15)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offers(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn plain_offer_is_accepted_as_is() {
        let (resp, params) = negotiate(&offers(&["permessage-deflate"])).expect("accepted");
        assert_eq!(resp, "permessage-deflate");
        assert_eq!(params, DeflateParams::default());
    }

    #[test]
    fn browser_offer_needs_no_client_window_answer() {
        let (resp, _) =
            negotiate(&offers(&["permessage-deflate; client_max_window_bits"])).expect("ok");
        assert_eq!(resp, "permessage-deflate");
    }

    #[test]
    fn context_takeover_and_window_parameters_are_answered() {
        let (resp, params) = negotiate(&offers(&[
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=10; client_max_window_bits=12",
        ]))
        .expect("accepted");
        assert_eq!(
            resp,
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=10"
        );
        assert_eq!(
            params,
            DeflateParams {
                server_no_context_takeover: true,
                client_no_context_takeover: true,
                server_max_window_bits: 10,
            }
        );
    }

    #[test]
    fn bad_offers_are_declined_and_the_next_one_is_tried() {
        for bad in [
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=8",
            "permessage-deflate; server_max_window_bits=0x0f",
            "permessage-deflate; client_max_window_bits=7",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; mystery",
            "x-webkit-deflate-frame",
        ] {
            assert_eq!(negotiate(&offers(&[bad])), None, "{bad}");
            let (resp, _) =
                negotiate(&offers(&[bad, "permessage-deflate"])).expect("fallback offer");
            assert_eq!(resp, "permessage-deflate", "{bad}");
        }
    }

    #[test]
    fn quoted_window_bits_are_read() {
        let (_, params) = negotiate(&offers(&[
            "permessage-deflate; server_max_window_bits=\"11\"",
        ]))
        .expect("ok");
        assert_eq!(params.server_max_window_bits, 11);
    }

    #[test]
    fn rfc_7692_example_hello_inflates() {
        // RFC 7692 §7.2.3.1: "Hello" compressed in one block
        let mut codec = Codec::new(DeflateParams::default());
        let hello = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        assert_eq!(codec.decompress(&hello, 100).expect("valid"), b"Hello");
        // §7.2.3.2: a second "Hello" reusing the first one's context
        assert_eq!(
            codec
                .decompress(&[0xf2, 0x00, 0x11, 0x00, 0x00], 100)
                .expect("valid"),
            b"Hello"
        );
    }

    #[test]
    fn round_trip_with_and_without_context_takeover() {
        for takeover in [false, true] {
            let params = DeflateParams {
                server_no_context_takeover: !takeover,
                client_no_context_takeover: !takeover,
                server_max_window_bits: 9,
            };
            let mut sender = Codec::new(params);
            let mut receiver = Codec::new(params);
            let text = "ferricorn ".repeat(500);
            for _ in 0..3 {
                let packed = sender.compress(text.as_bytes());
                assert!(packed.len() < text.len() / 10);
                assert_eq!(
                    receiver.decompress(&packed, 1 << 20).expect("valid"),
                    text.as_bytes()
                );
            }
            // an empty message compresses to the single byte RFC 7692 §7.2.3.6 shows
            assert_eq!(sender.compress(b""), [0x00]);
        }
    }

    #[test]
    fn decompression_stops_at_the_size_limit() {
        let mut codec = Codec::new(DeflateParams::default());
        let bomb = codec.compress(&vec![0u8; 1 << 20]);
        assert!(bomb.len() < 2048);
        let mut receiver = Codec::new(DeflateParams::default());
        assert_eq!(
            receiver.decompress(&bomb, 4096),
            Err(InflateError::TooBig(4096))
        );
    }

    #[test]
    fn garbage_is_corrupt() {
        let mut codec = Codec::new(DeflateParams::default());
        assert_eq!(
            codec.decompress(&[0xff, 0xff, 0xff, 0xff, 0x00], 100),
            Err(InflateError::Corrupt)
        );
    }
}
