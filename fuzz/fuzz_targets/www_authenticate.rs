#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| scry::fuzzing::www_authenticate(data));
