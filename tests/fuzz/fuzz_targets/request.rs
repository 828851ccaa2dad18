#![no_main]
libfuzzer_sys::fuzz_target!(
    |data: &[u8]| tidegate_fuzz::request_tolerating_known_reservations(data)
);
