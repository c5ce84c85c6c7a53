//! Small value parsers shared by directives and actions: `On`/`Off`,
//! numbers, octal modes, rule-id lists and the engine mode keywords.
//! Keywords are case-insensitive, as in ModSecurity.

use super::ast::{AuditEngineMode, BodyLimitAction, EngineMode, IdRange, UploadKeepFiles};
use super::error::ErrorKind;

/// Matches `value` against `(keyword, result)` pairs, ignoring ASCII case.
pub(crate) fn keyword<T: Copy>(
    what: &'static str,
    value: &str,
    table: &[(&str, T)],
) -> Result<T, ErrorKind> {
    table
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(value))
        .map(|&(_, v)| v)
        .ok_or_else(|| {
            let expected: Vec<&str> = table.iter().map(|(k, _)| *k).collect();
            ErrorKind::invalid(
                what,
                value,
                format!("expected one of {}", expected.join(", ")),
            )
        })
}

pub(crate) fn on_off(what: &'static str, value: &str) -> Result<bool, ErrorKind> {
    keyword(what, value, &[("On", true), ("Off", false)])
}

pub(crate) fn engine_mode(value: &str) -> Result<EngineMode, ErrorKind> {
    let table = [
        ("On", EngineMode::On),
        ("Off", EngineMode::Off),
        ("DetectionOnly", EngineMode::DetectionOnly),
    ];
    keyword("rule engine mode", value, &table)
}

pub(crate) fn audit_engine_mode(value: &str) -> Result<AuditEngineMode, ErrorKind> {
    let table = [
        ("On", AuditEngineMode::On),
        ("Off", AuditEngineMode::Off),
        ("RelevantOnly", AuditEngineMode::RelevantOnly),
    ];
    keyword("audit engine mode", value, &table)
}

pub(crate) fn body_limit_action(value: &str) -> Result<BodyLimitAction, ErrorKind> {
    let table = [
        ("Reject", BodyLimitAction::Reject),
        ("ProcessPartial", BodyLimitAction::ProcessPartial),
    ];
    keyword("body limit action", value, &table)
}

pub(crate) fn upload_keep_files(value: &str) -> Result<UploadKeepFiles, ErrorKind> {
    let table = [
        ("On", UploadKeepFiles::On),
        ("Off", UploadKeepFiles::Off),
        ("RelevantOnly", UploadKeepFiles::RelevantOnly),
    ];
    keyword("upload keep-files mode", value, &table)
}

/// A non-negative decimal number.
pub(crate) fn number<T: std::str::FromStr>(
    what: &'static str,
    value: &str,
) -> Result<T, ErrorKind> {
    let digits_only = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
    match value.parse() {
        Ok(n) if digits_only => Ok(n),
        _ => Err(ErrorKind::invalid(
            what,
            value,
            "expected a non-negative number in range",
        )),
    }
}

/// An octal file mode such as `0640`.
pub(crate) fn octal_mode(what: &'static str, value: &str) -> Result<u32, ErrorKind> {
    match u32::from_str_radix(value, 8) {
        Ok(mode) if mode <= 0o7777 && !value.starts_with('+') => Ok(mode),
        _ => Err(ErrorKind::invalid(
            what,
            value,
            "expected an octal mode such as 0640",
        )),
    }
}

/// A list of rule ids and ranges: `1 2 3`, `1,2`, `941000-941999`.
pub(crate) fn id_ranges(value: &str) -> Result<Vec<IdRange>, ErrorKind> {
    let items: Vec<&str> = value
        .split(|c: char| c == ',' || c.is_ascii_whitespace())
        .filter(|s| !s.is_empty())
        .collect();
    if items.is_empty() {
        return Err(ErrorKind::invalid(
            "rule id list",
            value,
            "no rule id given",
        ));
    }
    items.into_iter().map(id_range).collect()
}

fn id_range(item: &str) -> Result<IdRange, ErrorKind> {
    let range = match item.split_once('-') {
        Some((start, end)) => IdRange {
            start: number("rule id", start)?,
            end: number("rule id", end)?,
        },
        None => IdRange::single(number("rule id", item)?),
    };
    if range.start > range.end {
        return Err(ErrorKind::invalid(
            "rule id range",
            item,
            "start is after end",
        ));
    }
    Ok(range)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_ignore_case() {
        assert_eq!(on_off("x", "on"), Ok(true));
        assert_eq!(on_off("x", "OFF"), Ok(false));
        assert!(on_off("x", "yes").is_err());
        assert_eq!(engine_mode("detectiononly"), Ok(EngineMode::DetectionOnly));
        assert_eq!(
            audit_engine_mode("RelevantOnly"),
            Ok(AuditEngineMode::RelevantOnly)
        );
        assert_eq!(
            body_limit_action("processpartial"),
            Ok(BodyLimitAction::ProcessPartial)
        );
    }

    #[test]
    fn numbers_and_modes() {
        assert_eq!(number::<u64>("n", "13107200"), Ok(13_107_200));
        assert!(number::<u64>("n", "-1").is_err());
        assert!(number::<u64>("n", "+1").is_err());
        assert!(number::<u8>("n", "300").is_err());
        assert!(number::<u64>("n", "").is_err());
        assert_eq!(octal_mode("m", "0640"), Ok(0o640));
        assert!(octal_mode("m", "0980").is_err());
    }

    #[test]
    fn id_lists() {
        let ids = id_ranges("911100 941000-942999,1").unwrap();
        assert_eq!(
            ids,
            [
                IdRange::single(911_100),
                IdRange {
                    start: 941_000,
                    end: 942_999
                },
                IdRange::single(1)
            ]
        );
        assert!(ids[1].contains(941_500) && !ids[1].contains(943_000));
        assert!(id_ranges("5-1").is_err());
        assert!(id_ranges("abc").is_err());
        assert!(id_ranges(" ").is_err());
    }
}
