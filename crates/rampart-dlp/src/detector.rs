//! The detector catalogue: stable ids, what each one looks for, and the
//! action taken when it fires.
//!
//! Each detector is a bounded, linear-time `regex` pattern that finds
//! *candidates*; [`crate::validate`] then confirms them (checksums, issuer
//! ranges, structure) so that the pattern alone never decides.

use std::fmt;

/// What to do with a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    /// Record the finding (metric, log line, security event); change nothing.
    Log,
    /// Replace the sensitive bytes in the response (see [`crate::mask`]).
    Mask,
    /// Refuse the whole response: the client gets a generic 502.
    Block,
}

impl Action {
    /// The snake_case name used in config, logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Log => "log",
            Action::Mask => "mask",
            Action::Block => "block",
        }
    }

    /// Parses `log`, `mask` or `block`.
    pub fn parse(name: &str) -> Option<Action> {
        match name {
            "log" => Some(Action::Log),
            "mask" => Some(Action::Mask),
            "block" => Some(Action::Block),
            _ => None,
        }
    }
}

macro_rules! detectors {
    ($($variant:ident => $id:literal, $action:ident, $doc:literal;)*) => {
        /// A detector's stable identity. `as_str` is the snake_case id used in
        /// configuration, findings, security events and metric labels.
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum DetectorId {
            $(#[doc = $doc] $variant,)*
        }

        impl DetectorId {
            /// Every detector, in catalogue order.
            pub const ALL: &'static [DetectorId] = &[$(DetectorId::$variant,)*];

            /// The snake_case id.
            pub fn as_str(self) -> &'static str {
                match self { $(DetectorId::$variant => $id,)* }
            }

            /// The action used when configuration does not name one.
            pub fn default_action(self) -> Action {
                match self { $(DetectorId::$variant => Action::$action,)* }
            }

            /// Looks a detector up by its snake_case id.
            pub fn parse(id: &str) -> Option<DetectorId> {
                match id { $($id => Some(DetectorId::$variant),)* _ => None }
            }
        }
    };
}

detectors! {
    Card => "card", Mask, "Payment card numbers (Luhn, issuer prefix and length).";
    Iban => "iban", Mask, "International bank account numbers (length table, mod 97).";
    Ssn => "ssn", Mask, "US social security numbers written `AAA-GG-SSSS`.";
    Email => "email", Log, "E-mail addresses.";
    Phone => "phone", Log, "Phone numbers: E.164 with `+`, or separated national formats.";
    Jwt => "jwt", Mask, "JSON Web Tokens whose header decodes to JSON with `alg`.";
    PrivateKey => "private_key", Block, "PEM `BEGIN ... PRIVATE KEY` blocks.";
    AwsKey => "aws_key", Mask, "AWS access key ids (AKIA, ASIA, ...).";
    AwsSecret => "aws_secret", Mask, "AWS secret access keys, near a key id or an `aws_secret` label.";
    GithubToken => "github_token", Mask, "GitHub tokens (ghp_, gho_, ghu_, ghs_, ghr_, github_pat_).";
    SlackToken => "slack_token", Mask, "Slack tokens (xoxa-, xoxb-, xoxp-, xoxr-).";
    SlackWebhook => "slack_webhook", Mask, "Slack incoming webhook URLs.";
    StripeKey => "stripe_key", Mask, "Stripe live secret and restricted keys.";
    GoogleApiKey => "google_api_key", Mask, "Google API keys (AIza...).";
    RampartKey => "rampart_key", Mask, "rampart's own API keys (rk_live_/rk_test_).";
    StackTrace => "stack_trace", Block, "Stack traces (Java, Python, .NET, Node, Go, PHP).";
    SqlError => "sql_error", Block, "Database error messages (MySQL, PostgreSQL, MSSQL, Oracle, SQLite).";
    DebugPage => "debug_page", Block, "Framework debug pages (Django, Werkzeug, Rails, Laravel, Spring).";
}

impl fmt::Debug for DetectorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for DetectorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Number of detectors, for per-detector tables.
pub const DETECTOR_COUNT: usize = DetectorId::ALL.len();

impl DetectorId {
    /// Index into per-detector tables.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The candidate pattern. Every repetition is bounded so that a match is
    /// never longer than [`MAX_TOKEN_LEN`] (PEM blocks excepted: their pattern
    /// only finds the BEGIN line, the scanner looks for END itself).
    ///
    /// `None` for detectors found by the scanner's context pass only.
    pub(crate) fn pattern(self) -> Option<&'static str> {
        Some(match self {
            DetectorId::Card => r"(?-u)\b\d(?:[ -]?\d){12,18}\b",
            DetectorId::Iban => r"(?-u)\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b",
            DetectorId::Ssn => r"(?-u)\b\d{3}-\d{2}-\d{4}\b",
            DetectorId::Email => {
                r"(?-u)[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?){0,8}\.[A-Za-z]{2,24}\b"
            }
            DetectorId::Phone => {
                r"(?-u)(?:\+[1-9]\d{0,2}[ .-]?)?(?:\(\d{1,4}\)[ .-]?|\d{1,4}[ .-])\d{2,4}[ .-]\d{2,5}(?:[ .-]\d{2,5})?\b|\+[1-9]\d{7,14}\b"
            }
            DetectorId::Jwt => {
                r"(?-u)\beyJ[A-Za-z0-9_-]{5,2000}\.[A-Za-z0-9_-]{2,8000}\.[A-Za-z0-9_-]{0,2000}"
            }
            DetectorId::PrivateKey => {
                r"(?-u)-----BEGIN (?:[A-Z0-9]{1,12} ){0,3}PRIVATE KEY(?: BLOCK)?-----"
            }
            DetectorId::AwsKey => r"(?-u)\b(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z2-7]{16}\b",
            DetectorId::AwsSecret => {
                r#"(?i-u)aws_?secret(?:_?access)?(?:_?key)?["']?\s{0,3}[:=]\s{0,3}["']?[A-Za-z0-9/+]{40}"#
            }
            DetectorId::GithubToken => {
                r"(?-u)\b(?:gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{22,251})\b"
            }
            DetectorId::SlackToken => r"(?-u)\bxox[abpr]-[A-Za-z0-9-]{10,250}",
            DetectorId::SlackWebhook => {
                r"(?-u)https://hooks\.slack\.com/services/T[A-Z0-9]{6,12}/B[A-Z0-9]{6,12}/[A-Za-z0-9]{20,40}"
            }
            DetectorId::StripeKey => r"(?-u)\b[sr]k_live_[A-Za-z0-9]{20,247}\b",
            DetectorId::GoogleApiKey => r"(?-u)\bAIza[0-9A-Za-z_-]{35}",
            DetectorId::RampartKey => r"(?-u)\brk_(?:live|test)_[A-Za-z0-9]{40,200}\b",
            DetectorId::StackTrace => STACK_TRACE,
            DetectorId::SqlError => SQL_ERROR,
            DetectorId::DebugPage => DEBUG_PAGE,
        })
    }
}

/// Longest match any pattern above can produce (bytes), PEM blocks aside.
pub const MAX_TOKEN_LEN: usize = 8_300;

const STACK_TRACE: &str = concat!(
    r"(?-u)",
    // Java / Kotlin / Scala frames.
    r"\bat [A-Za-z_$][\w$]{0,100}(?:\.[\w$<>]{1,100}){1,30}\((?:[\w$]{1,100}\.(?:java|kt|scala):\d{1,6}|Native Method|Unknown Source)\)",
    r"|\bException in thread \x22[^\x22\n]{1,100}\x22 [\w.$]{1,200}(?:Exception|Error)",
    // Python.
    r"|Traceback \(most recent call last\):",
    r#"|\bFile \\?"[^"\n]{1,300}\.py\\?", line \d{1,6}, in "#,
    // .NET.
    r"|\bat [\w.`<>\[\],]{1,300}\([^()\n]{0,300}\) in [^\n\x22]{1,300}:line \d{1,6}",
    r"|--- End of stack trace from previous location",
    // Node.js.
    r"|\bat Object\.<anonymous> \(",
    r"|\bat (?:async )?[\w.$<>]{1,200} \((?:/|node:|file://|[A-Za-z]:\\)[^\s()\x22]{1,300}:\d{1,6}:\d{1,6}\)",
    // Go and PHP.
    r"|\bgoroutine \d{1,9} \[running\]:",
    r"|\bPHP (?:Fatal|Parse) error: ",
    r"|Stack trace:(?:\\n|\r?\n)#0 ",
);

const SQL_ERROR: &str = concat!(
    r"(?-u)",
    // MySQL / MariaDB.
    r"You have an error in your SQL syntax",
    r"|\bWarning: mysqli?_\w{1,40}\(",
    r"|\bcom\.mysql\.jdbc\.exceptions",
    r"|SQLSTATE\[[0-9A-Z]{5}\]",
    // PostgreSQL.
    r"|\bERROR: {1,3}(?:syntax error at or near|relation \x22|column \x22|unterminated quoted string)",
    r"|\bPG::[A-Z]\w{1,40}Error",
    r"|\borg\.postgresql\.util\.PSQLException",
    r"|\bpsycopg2?\.(?:errors\.)?\w{1,40}Error",
    // Microsoft SQL Server.
    r"|Unclosed quotation mark after the character string",
    r"|Microsoft OLE DB Provider for (?:SQL Server|ODBC Drivers)",
    r"|\[Microsoft\]\[ODBC SQL Server Driver\]",
    r"|\bSystem\.Data\.SqlClient\.SqlException",
    // Oracle.
    r"|\bORA-\d{5}: ",
    r"|\boracle\.jdbc\.driver",
    // SQLite.
    r"|\bSQLite3?::(?:SQL)?Exception",
    r"|\bsqlite3\.OperationalError",
    r"|\bSQLITE_ERROR\b",
    r#"|\bnear \\?"[^"\n]{1,60}\\?": syntax error"#,
);

const DEBUG_PAGE: &str = concat!(
    r"(?-u)",
    // Django.
    r"You're seeing this error because you have <code>DEBUG = True</code>",
    r"|\bDEBUG = True\b[^\n]{0,40}Django settings file",
    // Flask / Werkzeug.
    r"|Werkzeug Debugger",
    r"|The debugger caught an exception in your WSGI application",
    // Rails.
    r"|Action Controller: Exception caught",
    // Laravel (Whoops / Ignition).
    r"|Whoops! There was an error\.",
    r"|\bclass=\\?\x22Whoops container",
    // Spring Boot.
    r"|Whitelabel Error Page",
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_are_snake_case() {
        for &d in DetectorId::ALL {
            assert_eq!(DetectorId::parse(d.as_str()), Some(d));
            assert!(d
                .as_str()
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_'));
        }
        assert_eq!(DetectorId::parse("nope"), None);
    }

    #[test]
    fn every_pattern_compiles() {
        for &d in DetectorId::ALL {
            if let Some(p) = d.pattern() {
                assert!(regex::bytes::Regex::new(p).is_ok(), "{d}");
            }
        }
    }

    #[test]
    fn action_names_round_trip() {
        for a in [Action::Log, Action::Mask, Action::Block] {
            assert_eq!(Action::parse(a.as_str()), Some(a));
        }
        assert!(Action::Block > Action::Mask && Action::Mask > Action::Log);
    }
}
