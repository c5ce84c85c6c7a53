//! Fuzzes the config loader: any text must give a config or errors, never a
//! panic, and every error must render.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        match rampart_config::parse(text, None, |name| (name == "SET").then(|| "v\"al\\ue".to_string())) {
            Ok(loaded) => {
                let _ = rampart_config::validate::validate(&loaded.config);
            }
            Err(errors) => {
                let _ = errors.to_string();
            }
        }
    }
});
