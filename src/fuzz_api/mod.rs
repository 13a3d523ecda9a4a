//! What the fuzz targets in fuzz/ call (cargo feature `fuzzing`): one function per target,
//! taking the fuzzer's bytes, running one of our parsers on them and asserting what must hold
//! for every input. A panic is the finding. Not part of the server.
//!
//! The checks live here rather than in fuzz/ because they need the crate's private types; unit
//! tests compile this module too and replay every saved input of fuzz/corpus/ through it, so a
//! reproducer added there stays a regression test under plain `cargo test`.

mod bridge;
mod config;
mod wire;

pub use bridge::{asgi_scope, wsgi_environ};
pub use config::{access_log, bind, forwarded, settings, static_path};
pub use wire::{chunked_body, h2_head, proxy_protocol, request_head, uwsgi};

/// A target: the fuzzer's bytes in, a panic out when a check fails.
pub type Target = fn(&[u8]);

/// Every target, by its name in fuzz/fuzz_targets/ and fuzz/corpus/.
pub const TARGETS: &[(&str, Target)] = &[
    ("proxy_protocol", proxy_protocol),
    ("request_head", request_head),
    ("chunked_body", chunked_body),
    ("uwsgi", uwsgi),
    ("h2_head", h2_head),
    ("forwarded", forwarded),
    ("bind", bind),
    ("settings", settings),
    ("access_log", access_log),
    ("static_path", static_path),
    ("wsgi_environ", wsgi_environ),
    ("asgi_scope", asgi_scope),
];

/// Reads a fuzz input as a sequence of small decisions and length-prefixed pieces, so one
/// byte string can describe several arguments and mutations of one stay local.
pub(crate) struct Cursor<'a> {
    data: &'a [u8],
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Cursor { data }
    }

    /// The next byte, 0 once the input is used up.
    pub(crate) fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    /// A piece whose length is the next byte (capped by what is left).
    pub(crate) fn piece(&mut self) -> &'a [u8] {
        let n = usize::from(self.byte()).min(self.data.len());
        let (piece, rest) = self.data.split_at(n);
        self.data = rest;
        piece
    }

    /// Everything not read yet.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// Where to cut a buffer of `len` bytes when checking that a parser fed in pieces agrees with
/// one fed at once: every cut for short inputs, a spread of them for long ones.
pub(crate) fn cuts(len: usize) -> impl Iterator<Item = usize> {
    let step = if len <= 256 { 1 } else { len / 128 };
    (0..len).step_by(step.max(1))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::TARGETS;

    /// Runs `target` on every file of fuzz/corpus/<name>/ (seeds, and reproducers of fixed
    /// crashes); returns how many there were.
    fn replay(name: &str, target: super::Target) -> usize {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/corpus")
            .join(name);
        let mut n = 0;
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return 0;
        };
        for entry in entries {
            let path = entry.expect("read the corpus directory").path();
            let data = std::fs::read(&path).expect("read a corpus file");
            let outcome = std::panic::catch_unwind(|| target(&data));
            assert!(
                outcome.is_ok(),
                "{name}: {} fails its checks",
                path.display()
            );
            n += 1;
        }
        n
    }

    #[test]
    fn every_saved_fuzz_input_passes_its_targets_checks() {
        for (name, target) in TARGETS {
            assert!(replay(name, *target) > 0, "fuzz/corpus/{name} has no seeds");
        }
    }

    #[test]
    fn short_and_empty_inputs_pass_every_target() {
        for (_, target) in TARGETS {
            target(b"");
            target(b"\0");
            target(b"\xff\xff\xff");
        }
    }
}
