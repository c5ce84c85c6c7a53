//! Parsing of IP list files: plain IP/CIDR lists, FireHOL netsets and Spamhaus DROP/EDROP.
//!
//! Every format is line based. A line that cannot be understood is recorded as a [`BadLine`]
//! (file, line number, reason) and skipped: one typo in a 50 000-line feed must not drop the
//! other 49 999 entries, nor stop the gateway.

use std::fmt;
use std::sync::Arc;

use ipnet::IpNet;

use crate::trie::parse_net;

/// How a feed file is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FeedFormat {
    /// Guess from the content: Spamhaus when a data line carries a `;` annotation, else plain.
    #[default]
    Auto,
    /// One IP or CIDR per line; `#` starts a comment (whole line or trailing).
    Plain,
    /// FireHOL `.netset`/`.ipset`: like plain, `#` comments carry the list's metadata.
    Netset,
    /// Spamhaus DROP/EDROP: `1.2.3.0/24 ; SBL123`; `;` starts a comment, the text after the
    /// `;` on a data line is kept as the entry's reason.
    Spamhaus,
}

impl FeedFormat {
    /// Parses a config spelling: `auto`, `plain`, `netset` (or `firehol`), `spamhaus` (or `drop`).
    pub fn from_name(name: &str) -> Option<FeedFormat> {
        match name.to_ascii_lowercase().as_str() {
            "auto" => Some(FeedFormat::Auto),
            "plain" | "cidr" | "ip" => Some(FeedFormat::Plain),
            "netset" | "ipset" | "firehol" => Some(FeedFormat::Netset),
            "spamhaus" | "drop" | "edrop" => Some(FeedFormat::Spamhaus),
            _ => None,
        }
    }
}

/// One accepted entry of a feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedEntry {
    /// The network, host bits cleared.
    pub net: IpNet,
    /// The annotation the feed gives for it (Spamhaus SBL id), if any.
    pub reason: Option<Arc<str>>,
}

/// A skipped line: where it was and what was wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadLine {
    /// Feed file (or source label) the line came from.
    pub source: Arc<str>,
    /// 1-based line number.
    pub line: usize,
    /// What was wrong, with the offending text shortened to keep logs bounded.
    pub problem: String,
}

impl fmt::Display for BadLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.source, self.line, self.problem)
    }
}

/// The outcome of parsing one feed.
#[derive(Clone, Debug, Default)]
pub struct ParsedFeed {
    /// Accepted entries in file order (duplicates kept; the trie dedups).
    pub entries: Vec<FeedEntry>,
    /// Number of lines that were skipped as malformed.
    pub bad_line_count: usize,
    /// The first [`MAX_REPORTED_BAD_LINES`] bad lines, for logs.
    pub bad_lines: Vec<BadLine>,
    /// The format actually used (resolved when `Auto` was asked).
    pub format: FeedFormat,
}

/// Bad lines kept in detail per feed; the rest are only counted so a garbage file cannot
/// flood memory or logs.
pub const MAX_REPORTED_BAD_LINES: usize = 20;

/// Longest text quoted back in a [`BadLine`].
const QUOTE_LIMIT: usize = 60;

/// Parses feed text. `source` names the file in bad-line reports.
pub fn parse_feed(text: &str, format: FeedFormat, source: &str) -> ParsedFeed {
    let format = match format {
        FeedFormat::Auto => detect_format(text),
        explicit => explicit,
    };
    let source: Arc<str> = Arc::from(source);
    let mut parsed = ParsedFeed {
        format,
        ..ParsedFeed::default()
    };
    for (index, raw) in text.lines().enumerate() {
        match parse_line(raw, format) {
            Ok(None) => {}
            Ok(Some(entry)) => parsed.entries.push(entry),
            Err(problem) => {
                parsed.bad_line_count += 1;
                if parsed.bad_lines.len() < MAX_REPORTED_BAD_LINES {
                    parsed.bad_lines.push(BadLine {
                        source: source.clone(),
                        line: index + 1,
                        problem,
                    });
                }
            }
        }
    }
    parsed
}

/// Spamhaus files annotate data lines with `; SBL…`; plain and netset files never use `;`.
fn detect_format(text: &str) -> FeedFormat {
    let spamhaus_like = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .take(50)
        .any(|line| line.contains(';'));
    if spamhaus_like {
        FeedFormat::Spamhaus
    } else {
        FeedFormat::Plain
    }
}

/// `Ok(None)` for blank and comment lines, `Err(problem)` for malformed ones.
fn parse_line(raw: &str, format: FeedFormat) -> Result<Option<FeedEntry>, String> {
    let (data, reason) = match format {
        FeedFormat::Spamhaus => split_spamhaus(raw),
        _ => (strip_hash_comment(raw), None),
    };
    let data = data.trim();
    if data.is_empty() {
        return Ok(None);
    }
    if data.split_whitespace().nth(1).is_some() {
        return Err(format!("more than one token: {}", quote(data)));
    }
    let net = parse_net(data).map_err(|_| format!("not an IP address or CIDR: {}", quote(data)))?;
    Ok(Some(FeedEntry {
        net: net.trunc(),
        reason,
    }))
}

fn strip_hash_comment(line: &str) -> &str {
    line.split_once('#').map_or(line, |(data, _)| data)
}

/// Splits `1.2.3.0/24 ; SBL123` into the network text and the annotation.
fn split_spamhaus(line: &str) -> (&str, Option<Arc<str>>) {
    match line.split_once(';') {
        None => (line, None),
        Some((data, note)) => {
            let note = note.trim();
            let reason = (!note.is_empty() && !data.trim().is_empty()).then(|| Arc::from(note));
            (data, reason)
        }
    }
}

/// Shortens attacker- or operator-supplied text before it goes into a log line.
fn quote(text: &str) -> String {
    let mut shown: String = text.chars().take(QUOTE_LIMIT).collect();
    if shown.len() < text.len() {
        shown.push('…');
    }
    format!("{shown:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_names_parse() {
        assert_eq!(FeedFormat::from_name("FireHOL"), Some(FeedFormat::Netset));
        assert_eq!(FeedFormat::from_name("drop"), Some(FeedFormat::Spamhaus));
        assert_eq!(FeedFormat::from_name("xml"), None);
    }

    #[test]
    fn long_bad_text_is_shortened() {
        let parsed = parse_feed(&"x".repeat(500), FeedFormat::Plain, "f");
        assert!(parsed.bad_lines[0].problem.len() < 100);
    }

    #[test]
    fn bad_line_detail_is_capped_but_all_are_counted() {
        let text = "junk\n".repeat(MAX_REPORTED_BAD_LINES + 5);
        let parsed = parse_feed(&text, FeedFormat::Plain, "f");
        assert_eq!(parsed.bad_line_count, MAX_REPORTED_BAD_LINES + 5);
        assert_eq!(parsed.bad_lines.len(), MAX_REPORTED_BAD_LINES);
    }
}
