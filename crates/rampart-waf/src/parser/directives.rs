//! Directive dispatch: maps a directive name (case-insensitive) to the
//! function that parses its arguments into a [`DirectiveKind`].
//!
//! Unknown names are errors, never ignored: a misspelt `SecRuleEngine`
//! silently skipped would leave the WAF in a state nobody asked for.
//! Directives ModSecurity knows but rampart deliberately does not implement
//! get their own error saying why.

use super::actions::parse_actions;
use super::ast::{AuditLogSetting, DirectiveKind, Rule, RuleSelector};
use super::ctl::audit_parts;
use super::error::{AtError, ErrorKind, PResult};
use super::lexer::Token;
use super::operators::parse_operator;
use super::values::{
    audit_engine_mode, body_limit_action, engine_mode, id_ranges, number, octal_mode, on_off,
    upload_keep_files,
};
use super::variables::{parse_targets, Target};

/// The arguments of one directive, with their positions for error reports.
pub(crate) struct Args<'a> {
    pub name: &'a str,
    pub tokens: &'a [Token],
}

impl Args<'_> {
    fn count(&self, min: usize, max: usize, expected: &'static str) -> PResult<()> {
        let got = self.tokens.len();
        if got < min || got > max {
            let kind = ErrorKind::ArgumentCount {
                directive: self.name.to_string(),
                expected,
                got,
            };
            return Err(AtError::new(0, kind));
        }
        Ok(())
    }

    /// Runs `parse` on argument `i`, placing its errors at that argument.
    fn arg<T>(&self, i: usize, parse: impl FnOnce(&str) -> PResult<T>) -> PResult<T> {
        let token = &self.tokens[i];
        parse(&token.text).map_err(|e| e.shift(token.offset))
    }

    /// Exactly one argument, parsed by `parse`.
    fn single<T>(&self, parse: impl FnOnce(&str) -> Result<T, ErrorKind>) -> PResult<T> {
        self.count(1, 1, "one argument")?;
        self.arg(0, |s| parse(s).map_err(AtError::from))
    }

    fn string(&self) -> PResult<String> {
        self.single(|s| {
            if s.is_empty() {
                return Err(ErrorKind::invalid("argument", s, "must not be empty"));
            }
            Ok(s.to_string())
        })
    }

    fn number(&self) -> PResult<u64> {
        self.single(|s| number("number", s))
    }

    fn flag(&self) -> PResult<bool> {
        self.single(|s| on_off("On/Off value", s))
    }

    /// All arguments joined by a space (for directives taking lists).
    fn joined(&self) -> String {
        let texts: Vec<&str> = self.tokens.iter().map(|t| t.text.as_str()).collect();
        texts.join(" ")
    }
}

type Handler = fn(&Args<'_>) -> PResult<DirectiveKind>;

/// Directive names and their parsers.
const DIRECTIVES: &[(&str, Handler)] = &[
    ("SecRule", sec_rule),
    ("SecAction", |a| {
        actions_only(a).map(DirectiveKind::SecAction)
    }),
    ("SecDefaultAction", |a| {
        actions_only(a).map(DirectiveKind::SecDefaultAction)
    }),
    ("SecMarker", |a| a.string().map(DirectiveKind::SecMarker)),
    ("SecRuleEngine", |a| {
        a.single(engine_mode).map(DirectiveKind::RuleEngine)
    }),
    ("SecRequestBodyAccess", |a| {
        a.flag().map(DirectiveKind::RequestBodyAccess)
    }),
    ("SecResponseBodyAccess", |a| {
        a.flag().map(DirectiveKind::ResponseBodyAccess)
    }),
    ("SecResponseBodyMimeType", mime_types),
    ("SecResponseBodyMimeTypesClear", |a| {
        a.count(0, 0, "no arguments")
            .map(|()| DirectiveKind::ResponseBodyMimeTypesClear)
    }),
    ("SecRequestBodyLimit", |a| {
        a.number().map(DirectiveKind::RequestBodyLimit)
    }),
    ("SecRequestBodyNoFilesLimit", |a| {
        a.number().map(DirectiveKind::RequestBodyNoFilesLimit)
    }),
    ("SecRequestBodyInMemoryLimit", |a| {
        a.number().map(DirectiveKind::RequestBodyInMemoryLimit)
    }),
    ("SecRequestBodyLimitAction", |a| {
        a.single(body_limit_action)
            .map(DirectiveKind::RequestBodyLimitAction)
    }),
    ("SecResponseBodyLimit", |a| {
        a.number().map(DirectiveKind::ResponseBodyLimit)
    }),
    ("SecResponseBodyLimitAction", |a| {
        a.single(body_limit_action)
            .map(DirectiveKind::ResponseBodyLimitAction)
    }),
    ("SecRequestBodyJsonDepthLimit", |a| {
        a.number().map(DirectiveKind::RequestBodyJsonDepthLimit)
    }),
    ("SecArgumentsLimit", |a| {
        a.number().map(DirectiveKind::ArgumentsLimit)
    }),
    ("SecArgumentSeparator", |a| {
        a.single(separator).map(DirectiveKind::ArgumentSeparator)
    }),
    ("SecCookieFormat", |a| {
        a.single(cookie_format).map(DirectiveKind::CookieFormat)
    }),
    ("SecUnicodeMapFile", unicode_map_file),
    ("SecRuleRemoveById", |a| {
        remove_by_id(a).map(DirectiveKind::RuleRemove)
    }),
    ("SecRuleRemoveByTag", |a| {
        a.string()
            .map(|s| DirectiveKind::RuleRemove(RuleSelector::Tag(s)))
    }),
    ("SecRuleRemoveByMsg", |a| {
        a.string()
            .map(|s| DirectiveKind::RuleRemove(RuleSelector::Msg(s)))
    }),
    ("SecRuleUpdateTargetById", |a| {
        update_target(a, |s| Ok(RuleSelector::Ids(id_ranges(s)?)))
    }),
    ("SecRuleUpdateTargetByTag", |a| {
        update_target(a, |s| Ok(RuleSelector::Tag(s.to_string())))
    }),
    ("SecRuleUpdateTargetByMsg", |a| {
        update_target(a, |s| Ok(RuleSelector::Msg(s.to_string())))
    }),
    ("SecRuleUpdateActionById", update_action),
    ("SecComponentSignature", |a| {
        a.string().map(DirectiveKind::ComponentSignature)
    }),
    ("SecCollectionTimeout", |a| {
        a.number().map(DirectiveKind::CollectionTimeout)
    }),
    ("SecTmpDir", |a| a.string().map(DirectiveKind::TmpDir)),
    ("SecDataDir", |a| a.string().map(DirectiveKind::DataDir)),
    ("SecDebugLog", |a| a.string().map(DirectiveKind::DebugLog)),
    ("SecDebugLogLevel", |a| {
        a.single(debug_level).map(DirectiveKind::DebugLogLevel)
    }),
    ("SecAuditEngine", |a| {
        a.single(audit_engine_mode).map(DirectiveKind::AuditEngine)
    }),
    ("SecAuditLog", |a| {
        audit(a.string().map(AuditLogSetting::Path))
    }),
    ("SecAuditLog2", |a| {
        audit(a.string().map(AuditLogSetting::Path2))
    }),
    ("SecAuditLogParts", |a| {
        audit(a.single(audit_parts).map(AuditLogSetting::Parts))
    }),
    ("SecAuditLogType", |a| {
        audit(a.string().map(AuditLogSetting::Type))
    }),
    ("SecAuditLogFormat", |a| {
        audit(a.string().map(AuditLogSetting::Format))
    }),
    ("SecAuditLogStorageDir", |a| {
        audit(a.string().map(AuditLogSetting::StorageDir))
    }),
    ("SecAuditLogDirMode", |a| {
        audit(
            a.single(|s| octal_mode("mode", s))
                .map(AuditLogSetting::DirMode),
        )
    }),
    ("SecAuditLogFileMode", |a| {
        audit(
            a.single(|s| octal_mode("mode", s))
                .map(AuditLogSetting::FileMode),
        )
    }),
    ("SecAuditLogRelevantStatus", |a| {
        audit(a.string().map(AuditLogSetting::RelevantStatus))
    }),
    ("SecStatusEngine", |a| {
        a.flag().map(DirectiveKind::StatusEngine)
    }),
    ("SecPcreMatchLimit", |a| {
        a.number().map(DirectiveKind::PcreMatchLimit)
    }),
    ("SecPcreMatchLimitRecursion", |a| {
        a.number().map(DirectiveKind::PcreMatchLimitRecursion)
    }),
    ("SecHttpBlKey", |a| a.string().map(DirectiveKind::HttpBlKey)),
    ("SecWebAppId", |a| a.string().map(DirectiveKind::WebAppId)),
    ("SecServerSignature", |a| {
        a.string().map(DirectiveKind::ServerSignature)
    }),
    ("SecUploadDir", |a| a.string().map(DirectiveKind::UploadDir)),
    ("SecUploadKeepFiles", |a| {
        a.single(upload_keep_files)
            .map(DirectiveKind::UploadKeepFiles)
    }),
    ("SecUploadFileMode", |a| {
        a.single(|s| octal_mode("mode", s))
            .map(DirectiveKind::UploadFileMode)
    }),
    ("SecUploadFileLimit", |a| {
        a.number().map(DirectiveKind::UploadFileLimit)
    }),
    ("SecXmlExternalEntity", |a| {
        a.flag().map(DirectiveKind::XmlExternalEntity)
    }),
];

/// Directives ModSecurity knows that rampart refuses, with the reason.
const UNSUPPORTED: &[(&str, &str)] = &[
    (
        "SecRemoteRules",
        "rampart never fetches rules over the network",
    ),
    (
        "SecRemoteRulesFailAction",
        "rampart never fetches rules over the network",
    ),
    ("SecRuleScript", "Lua rules are not supported"),
    ("SecGeoLookupDb", "GeoIP databases are not supported"),
    ("SecGsbLookupDb", "Google Safe Browsing is not supported"),
    ("SecGuardianLog", "ModSecurity v2 only"),
    ("SecChrootDir", "ModSecurity v2 only"),
    ("SecConnEngine", "ModSecurity v2 only"),
    ("SecConnReadStateLimit", "ModSecurity v2 only"),
    ("SecConnWriteStateLimit", "ModSecurity v2 only"),
    ("SecContentInjection", "ModSecurity v2 only"),
    ("SecStreamInBodyInspection", "ModSecurity v2 only"),
    ("SecStreamOutBodyInspection", "ModSecurity v2 only"),
    ("SecDisableBackendCompression", "ModSecurity v2 only"),
    ("SecCacheTransformations", "ModSecurity v2 only"),
    ("SecHashEngine", "ModSecurity v2 only"),
    ("SecHashKey", "ModSecurity v2 only"),
    ("SecHashParam", "ModSecurity v2 only"),
    ("SecHashMethodRx", "ModSecurity v2 only"),
    ("SecHashMethodPm", "ModSecurity v2 only"),
    ("SecRuleInheritance", "ModSecurity v2 only"),
    ("SecRulePerfTime", "ModSecurity v2 only"),
    ("SecSensorId", "ModSecurity v2 only"),
    ("SecInterceptOnError", "ModSecurity v2 only"),
    (
        "SecTmpSaveUploadedFiles",
        "uploaded files are never written to disk",
    ),
];

/// Parses one (non-`Include`) directive.
pub(crate) fn parse_directive(args: &Args<'_>) -> PResult<DirectiveKind> {
    if let Some((_, handler)) = DIRECTIVES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(args.name))
    {
        return handler(args);
    }
    if let Some((name, why)) = UNSUPPORTED
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(args.name))
    {
        return Err(AtError::new(
            0,
            ErrorKind::UnsupportedDirective(name.to_string(), why),
        ));
    }
    Err(AtError::new(
        0,
        ErrorKind::UnknownDirective(args.name.to_string()),
    ))
}

/// The canonical names of every supported directive (plus `Include`).
pub fn directive_names() -> impl Iterator<Item = &'static str> {
    DIRECTIVES.iter().map(|(n, _)| *n).chain(["Include"])
}

fn sec_rule(a: &Args<'_>) -> PResult<DirectiveKind> {
    a.count(2, 3, "VARIABLES OPERATOR [ACTIONS]")?;
    let targets = a.arg(0, target_list)?;
    let operator = a.arg(1, parse_operator)?;
    let actions = match a.tokens.len() {
        3 => a.arg(2, parse_actions)?,
        _ => Vec::new(),
    };
    let rule = Rule {
        targets,
        operator,
        actions,
    };
    Ok(DirectiveKind::SecRule(Box::new(rule)))
}

fn target_list(text: &str) -> PResult<Vec<Target>> {
    if text.trim().is_empty() {
        return Err(ErrorKind::invalid("target list", text, "no variable given").into());
    }
    parse_targets(text)
}

fn actions_only(a: &Args<'_>) -> PResult<Vec<super::actions::Action>> {
    a.count(1, 1, "one quoted action list")?;
    a.arg(0, parse_actions)
}

fn mime_types(a: &Args<'_>) -> PResult<DirectiveKind> {
    a.count(1, usize::MAX, "one or more MIME types")?;
    let joined = a.joined();
    let types = joined.split_whitespace().map(str::to_string).collect();
    Ok(DirectiveKind::ResponseBodyMimeType(types))
}

fn separator(value: &str) -> Result<char, ErrorKind> {
    let mut chars = value.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => Ok(c),
        _ => Err(ErrorKind::invalid(
            "argument separator",
            value,
            "expected a single character",
        )),
    }
}

fn cookie_format(value: &str) -> Result<u8, ErrorKind> {
    match number::<u8>("cookie format", value)? {
        f @ (0 | 1) => Ok(f),
        _ => Err(ErrorKind::invalid(
            "cookie format",
            value,
            "expected 0 or 1",
        )),
    }
}

fn debug_level(value: &str) -> Result<u8, ErrorKind> {
    match number::<u8>("debug log level", value)? {
        l @ 0..=9 => Ok(l),
        _ => Err(ErrorKind::invalid("debug log level", value, "expected 0-9")),
    }
}

fn unicode_map_file(a: &Args<'_>) -> PResult<DirectiveKind> {
    a.count(1, 2, "a path and an optional code page")?;
    let code_page = match a.tokens.len() {
        2 => Some(a.arg(1, |s| number("code page", s).map_err(AtError::from))?),
        _ => None,
    };
    Ok(DirectiveKind::UnicodeMapFile {
        path: a.tokens[0].text.clone(),
        code_page,
    })
}

fn remove_by_id(a: &Args<'_>) -> PResult<RuleSelector> {
    a.count(1, usize::MAX, "one or more rule ids or ranges")?;
    let mut ids = Vec::new();
    for i in 0..a.tokens.len() {
        ids.extend(a.arg(i, |s| id_ranges(s).map_err(AtError::from))?);
    }
    Ok(RuleSelector::Ids(ids))
}

fn update_target(
    a: &Args<'_>,
    selector: fn(&str) -> Result<RuleSelector, ErrorKind>,
) -> PResult<DirectiveKind> {
    a.count(
        2,
        3,
        "a rule selector, targets and an optional replaced target",
    )?;
    let selector = a.arg(0, |s| selector(s).map_err(AtError::from))?;
    let targets = a.arg(1, target_list)?;
    let replacing = match a.tokens.len() {
        3 => Some(a.arg(2, target_list)?),
        _ => None,
    };
    Ok(DirectiveKind::RuleUpdateTarget {
        selector,
        targets,
        replacing,
    })
}

fn update_action(a: &Args<'_>) -> PResult<DirectiveKind> {
    a.count(2, 2, "a rule id and an action list")?;
    let (id, chain_offset) = a.arg(0, |s| rule_ref(s).map_err(AtError::from))?;
    let actions = a.arg(1, parse_actions)?;
    Ok(DirectiveKind::RuleUpdateAction {
        id,
        chain_offset,
        actions,
    })
}

/// `ID` or `ID:offset` (the offset selects a rule inside a chain).
fn rule_ref(value: &str) -> Result<(u64, Option<u32>), ErrorKind> {
    match value.split_once(':') {
        Some((id, offset)) => Ok((
            number("rule id", id)?,
            Some(number("chain offset", offset)?),
        )),
        None => Ok((number("rule id", value)?, None)),
    }
}

fn audit(setting: PResult<AuditLogSetting>) -> PResult<DirectiveKind> {
    setting.map(DirectiveKind::AuditLog)
}
