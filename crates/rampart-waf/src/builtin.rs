//! rampart's own compact rule set, used when no CRS folder is configured.
//!
//! Written for JSON APIs in CRS's style (anomaly scoring: each detection
//! adds points to `TX:inbound_anomaly_score`, one rule blocks with 403 at
//! the threshold, 5 by default), from `rules/*.conf` in this crate:
//! protocol abuse, SQL injection (`@detectSQLi`), XSS (`@detectXSS`),
//! command and code injection, path traversal, RFI/SSRF, Log4Shell,
//! template injection, XXE, NoSQL/LDAP injection, with Base64-wrapped
//! values decoded first. The texts are embedded at build time.

use crate::compile::Source;
use crate::{LoadError, RuleSet};

/// The rule files, in load order: (file name, SecLang text).
pub const SOURCES: &[(&str, &str)] = &[
    ("00-setup.conf", include_str!("../rules/00-setup.conf")),
    ("05-decode.conf", include_str!("../rules/05-decode.conf")),
    (
        "10-protocol.conf",
        include_str!("../rules/10-protocol.conf"),
    ),
    ("20-sqli.conf", include_str!("../rules/20-sqli.conf")),
    ("21-xss.conf", include_str!("../rules/21-xss.conf")),
    ("22-rce.conf", include_str!("../rules/22-rce.conf")),
    ("23-lfi.conf", include_str!("../rules/23-lfi.conf")),
    (
        "24-rfi-ssrf.conf",
        include_str!("../rules/24-rfi-ssrf.conf"),
    ),
    (
        "25-java-log4shell.conf",
        include_str!("../rules/25-java-log4shell.conf"),
    ),
    (
        "26-template-injection.conf",
        include_str!("../rules/26-template-injection.conf"),
    ),
    ("27-xxe.conf", include_str!("../rules/27-xxe.conf")),
    (
        "28-nosql-ldap.conf",
        include_str!("../rules/28-nosql-ldap.conf"),
    ),
    ("90-scoring.conf", include_str!("../rules/90-scoring.conf")),
];

/// The directive that sets the paranoia level (1 to 4; higher levels add
/// stricter, noisier rules). Loaded right after `00-setup.conf`.
pub fn paranoia_directive(paranoia: u8) -> String {
    let level = paranoia.clamp(1, 4);
    format!("SecAction \"id:200004,phase:1,pass,nolog,setvar:tx.paranoia_level={level}\"\n")
}

/// Compiles the built-in rule set at the given paranoia level.
pub fn builtin_rule_set(paranoia: u8) -> Result<RuleSet, LoadError> {
    let level = paranoia_directive(paranoia);
    let mut sources = Vec::with_capacity(SOURCES.len() + 1);
    for (i, (name, text)) in SOURCES.iter().enumerate() {
        sources.push(Source::Text { text, origin: name });
        if i == 0 {
            sources.push(Source::Text {
                text: &level,
                origin: "<paranoia>",
            });
        }
    }
    RuleSet::from_sources(&sources)
}

#[cfg(test)]
mod tests;
