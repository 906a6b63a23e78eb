#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| scry::fuzzing::template(data));
