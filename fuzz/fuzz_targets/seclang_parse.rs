//! Fuzzes the SecLang parser: any text gives directives or an error with a
//! location, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(e) = rampart_waf::parser::parse_str(text, "fuzz.conf") {
            let _ = e.to_string();
        }
    }
});
