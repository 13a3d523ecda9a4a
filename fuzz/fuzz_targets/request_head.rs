#![no_main]
//! `_ferricorn::fuzz_api::request_head`: see fuzz/README.md for what it asserts.

libfuzzer_sys::fuzz_target!(|data: &[u8]| _ferricorn::fuzz_api::request_head(data));
