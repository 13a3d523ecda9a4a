#![no_main]
//! `_ferricorn::fuzz_api::proxy_protocol`: see fuzz/README.md for what it asserts.

libfuzzer_sys::fuzz_target!(|data: &[u8]| _ferricorn::fuzz_api::proxy_protocol(data));
