#![no_main]
//! `_ferricorn::fuzz_api::wsgi_environ`: see fuzz/README.md for what it asserts.

libfuzzer_sys::fuzz_target!(|data: &[u8]| _ferricorn::fuzz_api::wsgi_environ(data));
