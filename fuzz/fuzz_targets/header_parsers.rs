#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| statuscope_fuzz::header_parsers(data));
