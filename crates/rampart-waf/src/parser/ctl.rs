//! `ctl:option=value` actions: per-transaction configuration changes, most
//! importantly the runtime rule exclusions CRS plugins and exclusion files
//! are built from (`ctl:ruleRemoveTargetById=942100;ARGS:password`).

use super::ast::{AuditEngineMode, BodyProcessor, EngineMode, RuleSelector};
use super::error::ErrorKind;
use super::values::{audit_engine_mode, engine_mode, id_ranges, keyword, number, on_off};
use super::variables::{parse_targets, Target};

/// A parsed `ctl:` action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ctl {
    AuditEngine(AuditEngineMode),
    /// `ctl:auditLogParts=+E` (kept verbatim, including `+`/`-`).
    AuditLogParts(String),
    DebugLogLevel(u8),
    ForceRequestBodyVariable(bool),
    HashEngine(bool),
    ParseXmlIntoArgs(String),
    RequestBodyAccess(bool),
    RequestBodyLimit(u64),
    RequestBodyProcessor(BodyProcessor),
    ResponseBodyAccess(bool),
    ResponseBodyLimit(u64),
    RuleEngine(EngineMode),
    /// `ruleRemoveById` / `ruleRemoveByTag` / `ruleRemoveByMsg`.
    RuleRemove(RuleSelector),
    /// `ruleRemoveTargetById` / `ByTag` / `ByMsg`: `selector;TARGETS`.
    RuleRemoveTarget {
        selector: RuleSelector,
        targets: Vec<Target>,
    },
}

/// Parses the text after `ctl:`.
pub(crate) fn parse_ctl(text: &str) -> Result<Ctl, ErrorKind> {
    let (option, value) = text
        .split_once('=')
        .ok_or_else(|| ErrorKind::invalid("ctl", text, "expected option=value"))?;
    let value = value.trim();
    Ok(match option.trim().to_ascii_lowercase().as_str() {
        "auditengine" => Ctl::AuditEngine(audit_engine_mode(value)?),
        "auditlogparts" => Ctl::AuditLogParts(audit_parts(value)?),
        "debugloglevel" => Ctl::DebugLogLevel(number("debug log level", value)?),
        "forcerequestbodyvariable" => {
            Ctl::ForceRequestBodyVariable(on_off("forceRequestBodyVariable", value)?)
        }
        "hashengine" => Ctl::HashEngine(on_off("hashEngine", value)?),
        "parsexmlintoargs" => Ctl::ParseXmlIntoArgs(value.to_string()),
        "requestbodyaccess" => Ctl::RequestBodyAccess(on_off("requestBodyAccess", value)?),
        "requestbodylimit" => Ctl::RequestBodyLimit(number("requestBodyLimit", value)?),
        "requestbodyprocessor" => Ctl::RequestBodyProcessor(body_processor(value)?),
        "responsebodyaccess" => Ctl::ResponseBodyAccess(on_off("responseBodyAccess", value)?),
        "responsebodylimit" => Ctl::ResponseBodyLimit(number("responseBodyLimit", value)?),
        "ruleengine" => Ctl::RuleEngine(engine_mode(value)?),
        "ruleremovebyid" => Ctl::RuleRemove(RuleSelector::Ids(id_ranges(value)?)),
        "ruleremovebytag" => Ctl::RuleRemove(RuleSelector::Tag(value.to_string())),
        "ruleremovebymsg" => Ctl::RuleRemove(RuleSelector::Msg(value.to_string())),
        "ruleremovetargetbyid" => remove_target(value, |s| Ok(RuleSelector::Ids(id_ranges(s)?)))?,
        "ruleremovetargetbytag" => remove_target(value, |s| Ok(RuleSelector::Tag(s.to_string())))?,
        "ruleremovetargetbymsg" => remove_target(value, |s| Ok(RuleSelector::Msg(s.to_string())))?,
        other => return Err(ErrorKind::UnknownCtl(other.to_string())),
    })
}

/// `selector;TARGET[|TARGET...]`.
fn remove_target(
    value: &str,
    selector: impl Fn(&str) -> Result<RuleSelector, ErrorKind>,
) -> Result<Ctl, ErrorKind> {
    let (sel, targets) = value.split_once(';').ok_or_else(|| {
        ErrorKind::invalid("ctl rule target removal", value, "expected selector;TARGET")
    })?;
    Ok(Ctl::RuleRemoveTarget {
        selector: selector(sel.trim())?,
        targets: parse_targets(targets.trim()).map_err(|e| e.kind)?,
    })
}

fn body_processor(value: &str) -> Result<BodyProcessor, ErrorKind> {
    let table = [
        ("URLENCODED", BodyProcessor::UrlEncoded),
        ("MULTIPART", BodyProcessor::Multipart),
        ("XML", BodyProcessor::Xml),
        ("JSON", BodyProcessor::Json),
    ];
    keyword("request body processor", value, &table)
}

/// Audit log part letters, optionally prefixed by `+` or `-`.
pub(crate) fn audit_parts(value: &str) -> Result<String, ErrorKind> {
    let letters = value.strip_prefix(['+', '-']).unwrap_or(value);
    let valid = !letters.is_empty() && letters.bytes().all(|b| b"ABCDEFGHIJKZ".contains(&b));
    if !valid {
        return Err(ErrorKind::invalid(
            "audit log parts",
            value,
            "expected letters from ABCDEFGHIJKZ",
        ));
    }
    Ok(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::ast::IdRange;
    use crate::parser::variables::{Selector, Variable};

    #[test]
    fn simple_options() {
        assert_eq!(
            parse_ctl("ruleEngine=Off"),
            Ok(Ctl::RuleEngine(EngineMode::Off))
        );
        assert_eq!(
            parse_ctl("auditEngine=Off"),
            Ok(Ctl::AuditEngine(AuditEngineMode::Off))
        );
        assert_eq!(
            parse_ctl("forceRequestBodyVariable=On"),
            Ok(Ctl::ForceRequestBodyVariable(true))
        );
        assert_eq!(
            parse_ctl("requestBodyProcessor=JSON"),
            Ok(Ctl::RequestBodyProcessor(BodyProcessor::Json))
        );
        assert_eq!(
            parse_ctl("requestBodyProcessor=URLENCODED"),
            Ok(Ctl::RequestBodyProcessor(BodyProcessor::UrlEncoded))
        );
        assert_eq!(
            parse_ctl("auditLogParts=+E"),
            Ok(Ctl::AuditLogParts("+E".into()))
        );
        assert_eq!(
            parse_ctl("requestBodyAccess=off"),
            Ok(Ctl::RequestBodyAccess(false))
        );
    }

    #[test]
    fn rule_removal() {
        let ctl = parse_ctl("ruleRemoveById=941000-942999").unwrap();
        assert_eq!(
            ctl,
            Ctl::RuleRemove(RuleSelector::Ids(vec![IdRange {
                start: 941_000,
                end: 942_999
            }]))
        );
        assert_eq!(
            parse_ctl("ruleRemoveByTag=attack-sqli"),
            Ok(Ctl::RuleRemove(RuleSelector::Tag("attack-sqli".into())))
        );
        let Ctl::RuleRemoveTarget { selector, targets } =
            parse_ctl("ruleRemoveTargetById=942100;ARGS:password").unwrap()
        else {
            panic!("expected a target removal");
        };
        assert_eq!(selector, RuleSelector::Ids(vec![IdRange::single(942_100)]));
        assert_eq!(targets[0].variable, Variable::Args);
        assert_eq!(targets[0].selector, Some(Selector::Key("password".into())));
        let Ctl::RuleRemoveTarget { selector, .. } =
            parse_ctl("ruleRemoveTargetByTag=xss-perf-disable;REQUEST_FILENAME").unwrap()
        else {
            panic!("expected a target removal");
        };
        assert_eq!(selector, RuleSelector::Tag("xss-perf-disable".into()));
    }

    #[test]
    fn errors() {
        assert_eq!(
            parse_ctl("bogus=1"),
            Err(ErrorKind::UnknownCtl("bogus".into()))
        );
        assert!(parse_ctl("ruleEngine").is_err());
        assert!(parse_ctl("ruleEngine=Maybe").is_err());
        assert!(parse_ctl("ruleRemoveTargetById=1").is_err());
        assert!(parse_ctl("ruleRemoveTargetById=1;NOPE").is_err());
        assert!(parse_ctl("requestBodyProcessor=YAML").is_err());
        assert!(parse_ctl("auditLogParts=XYZ").is_err());
    }
}
