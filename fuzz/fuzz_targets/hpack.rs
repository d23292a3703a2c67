#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| statuscope_fuzz::hpack(data));
