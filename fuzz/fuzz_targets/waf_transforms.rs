//! Fuzzes every WAF transformation on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for t in rampart_waf::transform::all() {
        let _ = t.apply(data);
    }
});
