//! Actions: the comma-separated list in the last argument of `SecRule`,
//! `SecAction` and `SecDefaultAction`, parsed into typed [`Action`]s.
//!
//! Syntax: `name` or `name:value`, where the value may be wrapped in single
//! quotes to protect commas (`msg:'a, b'`); inside those quotes `\'` stands
//! for a quote. Names are case-insensitive. Free text (`msg`, `logdata`,
//! `tag`, `setvar` values ...) is kept as a macro [`Template`].

use super::ctl::{parse_ctl, Ctl};
use super::error::{AtError, ErrorKind, PResult};
use super::macros::Template;
use super::values::number;
use super::variables::Variable;
use crate::transform::{self, Transformation};

/// Rule phase. ModSecurity names phases 2, 4 and 5 `request`, `response`
/// and `logging`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Phase {
    RequestHeaders = 1,
    RequestBody = 2,
    ResponseHeaders = 3,
    ResponseBody = 4,
    Logging = 5,
}

impl Phase {
    /// Every phase, in the order they run.
    pub const ALL: [Phase; 5] = [
        Phase::RequestHeaders,
        Phase::RequestBody,
        Phase::ResponseHeaders,
        Phase::ResponseBody,
        Phase::Logging,
    ];

    pub fn number(self) -> u8 {
        self as u8
    }

    fn parse(value: &str) -> Result<Phase, ErrorKind> {
        let phase = match value.to_ascii_lowercase().as_str() {
            "1" => Phase::RequestHeaders,
            "2" | "request" => Phase::RequestBody,
            "3" => Phase::ResponseHeaders,
            "4" | "response" => Phase::ResponseBody,
            "5" | "logging" => Phase::Logging,
            _ => {
                return Err(ErrorKind::invalid(
                    "phase",
                    value,
                    "expected 1-5, request, response or logging",
                ))
            }
        };
        Ok(phase)
    }
}

/// Syslog-style severity; lower is more severe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    Emergency = 0,
    Alert = 1,
    Critical = 2,
    Error = 3,
    Warning = 4,
    Notice = 5,
    Info = 6,
    Debug = 7,
}

impl Severity {
    const NAMES: [(&'static str, Severity); 8] = [
        ("EMERGENCY", Severity::Emergency),
        ("ALERT", Severity::Alert),
        ("CRITICAL", Severity::Critical),
        ("ERROR", Severity::Error),
        ("WARNING", Severity::Warning),
        ("NOTICE", Severity::Notice),
        ("INFO", Severity::Info),
        ("DEBUG", Severity::Debug),
    ];

    pub fn number(self) -> u8 {
        self as u8
    }

    fn parse(value: &str) -> Result<Severity, ErrorKind> {
        let by_number = value.parse::<usize>().ok().and_then(|n| Self::NAMES.get(n));
        let by_name = || {
            Self::NAMES
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(value))
        };
        by_number.or_else(by_name).map(|&(_, s)| s).ok_or_else(|| {
            ErrorKind::invalid("severity", value, "expected 0-7 or EMERGENCY..DEBUG")
        })
    }
}

/// What `allow` lets through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AllowScope {
    /// `allow`: stop processing the whole transaction (logging still runs).
    All,
    /// `allow:phase`: skip the rest of the current phase.
    Phase,
    /// `allow:request`: skip the rest of the request phases.
    Request,
}

/// Collections that `setvar`, `expirevar` and `initcol` can write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Collection {
    Tx,
    Ip,
    Global,
    Session,
    User,
    Resource,
}

impl Collection {
    fn parse(name: &str) -> Result<Collection, ErrorKind> {
        let table = [
            ("tx", Collection::Tx),
            ("ip", Collection::Ip),
            ("global", Collection::Global),
            ("session", Collection::Session),
            ("user", Collection::User),
            ("resource", Collection::Resource),
        ];
        super::values::keyword("collection", name, &table)
    }

    /// The variable that reads this collection back.
    pub fn variable(self) -> Variable {
        match self {
            Collection::Tx => Variable::Tx,
            Collection::Ip => Variable::Ip,
            Collection::Global => Variable::Global,
            Collection::Session => Variable::Session,
            Collection::User => Variable::User,
            Collection::Resource => Variable::Resource,
        }
    }
}

/// `collection.key`, where the key may contain macros (`tx.rfi_%{MATCHED_VAR_NAME}`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VarName {
    pub collection: Collection,
    pub key: Template,
}

/// `setvar` operations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SetVarOp {
    /// `tx.a=value`
    Set(Template),
    /// `tx.a` with no `=`: ModSecurity sets the variable to 1.
    SetToOne,
    /// `tx.a=+value`
    Add(Template),
    /// `tx.a=-value`
    Sub(Template),
    /// `!tx.a`
    Delete,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetVar {
    pub var: VarName,
    pub op: SetVarOp,
}

/// Every action SecLang accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    // Metadata.
    Id(u64),
    Phase(Phase),
    Msg(Template),
    LogData(Template),
    Tag(Template),
    Ver(String),
    Rev(String),
    Severity(Severity),
    Maturity(u8),
    Accuracy(u8),
    // Flow.
    Chain,
    Skip(u32),
    SkipAfter(String),
    // Disruptive.
    Allow(AllowScope),
    Block,
    Deny,
    Drop,
    Pass,
    Pause(u64),
    Proxy(Template),
    Redirect(Template),
    Status(u16),
    // Matching.
    Transform(&'static Transformation),
    Capture,
    MultiMatch,
    // Data.
    SetVar(SetVar),
    SetEnv {
        name: String,
        value: Template,
    },
    SetUid(Template),
    SetSid(Template),
    SetRsc(Template),
    ExpireVar {
        var: VarName,
        seconds: Template,
    },
    DeprecateVar {
        var: VarName,
        value: Template,
    },
    InitCol {
        collection: Collection,
        key: Template,
    },
    Ctl(Ctl),
    // Logging.
    Log,
    NoLog,
    AuditLog,
    NoAuditLog,
    SanitiseArg(String),
    SanitiseMatched,
    /// `sanitiseMatchedBytes[:keep_start/keep_end]`
    SanitiseMatchedBytes(Option<(u32, u32)>),
    SanitiseRequestHeader(String),
    SanitiseResponseHeader(String),
    // Rarely used.
    Exec(String),
    Append(Template),
    Prepend(Template),
    Xmlns {
        prefix: String,
        uri: String,
    },
}

/// One `name[:value]` item of an action list, before interpretation.
struct RawAction<'a> {
    name: &'a str,
    value: Option<String>,
    offset: usize,
    value_offset: usize,
}

/// Parses a whole action list such as `"id:1,phase:2,deny,msg:'x'"`.
pub(crate) fn parse_actions(text: &str) -> PResult<Vec<Action>> {
    split_actions(text)?
        .into_iter()
        .map(|raw| interpret(&raw))
        .collect()
}

fn split_actions(text: &str) -> PResult<Vec<RawAction<'_>>> {
    let mut items = Vec::new();
    let mut pos = 0;
    while pos < text.len() {
        let (item, next) = split_one(text, pos)?;
        items.extend(item);
        pos = next;
    }
    Ok(items)
}

/// Reads the action starting at `start`; returns it (None for a blank
/// list) and the position after its terminating comma.
fn split_one(text: &str, start: usize) -> PResult<(Option<RawAction<'_>>, usize)> {
    let bytes = text.as_bytes();
    let begin = start + leading_blanks(&text[start..]);
    let name_end = text[begin..]
        .find([':', ','])
        .map_or(text.len(), |n| begin + n);
    let name = text[begin..name_end].trim_end();
    if name.is_empty() {
        // Only trailing blanks (an empty list, or a final comma) are allowed.
        if begin == text.len() {
            return Ok((None, text.len()));
        }
        return Err(AtError::new(
            begin,
            ErrorKind::invalid("action list", snippet(&text[begin..]), "empty action"),
        ));
    }
    let mut raw = RawAction {
        name,
        value: None,
        offset: begin,
        value_offset: name_end,
    };
    if bytes.get(name_end) != Some(&b':') {
        return Ok((Some(raw), name_end + 1));
    }
    let value_start = name_end + 1 + leading_blanks(&text[name_end + 1..]);
    raw.value_offset = value_start;
    let (value, next) = if bytes.get(value_start) == Some(&b'\'') {
        quoted_value(text, value_start)?
    } else {
        let end = text[value_start..]
            .find(',')
            .map_or(text.len(), |n| value_start + n);
        (text[value_start..end].trim_end().to_string(), end + 1)
    };
    raw.value = Some(value);
    Ok((Some(raw), next))
}

/// The start of `s`, short enough for an error message.
fn snippet(s: &str) -> &str {
    let end = s.char_indices().nth(60).map_or(s.len(), |(i, _)| i);
    &s[..end]
}

fn leading_blanks(s: &str) -> usize {
    s.len() - s.trim_start().len()
}

/// Reads `'...'` at `open`; returns the unescaped value and the position
/// after the following comma.
fn quoted_value(text: &str, open: usize) -> PResult<(String, usize)> {
    let bytes = text.as_bytes();
    let mut value = String::new();
    let mut i = open + 1;
    loop {
        match bytes.get(i) {
            None => return Err(AtError::new(open, ErrorKind::UnbalancedQuotes('\''))),
            Some(b'\\') if bytes.get(i + 1) == Some(&b'\'') => {
                value.push('\'');
                i += 2;
            }
            Some(b'\'') => break,
            Some(_) => {
                let ch = text[i..].chars().next().expect("in bounds");
                value.push(ch);
                i += ch.len_utf8();
            }
        }
    }
    let after = i + 1 + leading_blanks(&text[i + 1..]);
    match bytes.get(after) {
        None => Ok((value, text.len())),
        Some(b',') => Ok((value, after + 1)),
        Some(_) => Err(AtError::new(
            after,
            ErrorKind::invalid(
                "action value",
                snippet(&text[open..]),
                "text after closing quote",
            ),
        )),
    }
}

/// Turns a raw item into an [`Action`], attributing errors to its offset.
fn interpret(raw: &RawAction<'_>) -> PResult<Action> {
    let name = raw.name.to_ascii_lowercase();
    let result = match raw.value.as_deref() {
        None => flag_action(&name),
        Some(value) => valued_action(&name, value),
    };
    result.map_err(|kind| {
        let at = match kind {
            ErrorKind::UnknownAction(_) => raw.offset,
            _ => raw.value_offset,
        };
        AtError::new(at, kind)
    })
}

/// Actions written without a value.
fn flag_action(name: &str) -> Result<Action, ErrorKind> {
    Ok(match name {
        "chain" => Action::Chain,
        "capture" => Action::Capture,
        "multimatch" => Action::MultiMatch,
        "block" => Action::Block,
        "deny" => Action::Deny,
        "drop" => Action::Drop,
        "pass" => Action::Pass,
        "allow" => Action::Allow(AllowScope::All),
        "log" => Action::Log,
        "nolog" => Action::NoLog,
        "auditlog" => Action::AuditLog,
        "noauditlog" => Action::NoAuditLog,
        "sanitisematched" => Action::SanitiseMatched,
        "sanitisematchedbytes" => Action::SanitiseMatchedBytes(None),
        _ if is_valued(name) => return Err(ErrorKind::invalid("action", name, "requires a value")),
        _ => return Err(ErrorKind::UnknownAction(name.to_string())),
    })
}

/// Names of actions that take a value.
fn is_valued(name: &str) -> bool {
    const VALUED: &[&str] = &[
        "id",
        "phase",
        "msg",
        "logdata",
        "tag",
        "ver",
        "rev",
        "severity",
        "maturity",
        "accuracy",
        "skip",
        "skipafter",
        "pause",
        "proxy",
        "redirect",
        "status",
        "t",
        "setvar",
        "setenv",
        "setuid",
        "setsid",
        "setrsc",
        "expirevar",
        "deprecatevar",
        "initcol",
        "ctl",
        "sanitisearg",
        "sanitiserequestheader",
        "sanitiseresponseheader",
        "exec",
        "append",
        "prepend",
        "xmlns",
    ];
    VALUED.contains(&name)
}

/// Actions written as `name:value`.
fn valued_action(name: &str, value: &str) -> Result<Action, ErrorKind> {
    let text = || Template::parse(value);
    Ok(match name {
        "id" => Action::Id(rule_id(value)?),
        "phase" => Action::Phase(Phase::parse(value)?),
        "msg" => Action::Msg(text()?),
        "logdata" => Action::LogData(text()?),
        "tag" => Action::Tag(text()?),
        "ver" => Action::Ver(value.to_string()),
        "rev" => Action::Rev(value.to_string()),
        "severity" => Action::Severity(Severity::parse(value)?),
        "maturity" => Action::Maturity(digit("maturity", value)?),
        "accuracy" => Action::Accuracy(digit("accuracy", value)?),
        "skip" => Action::Skip(positive("skip", value)?),
        "skipafter" => Action::SkipAfter(non_empty("skipAfter marker", value)?),
        "allow" => Action::Allow(allow_scope(value)?),
        "pause" => Action::Pause(number("pause", value)?),
        "proxy" => Action::Proxy(text()?),
        "redirect" => Action::Redirect(text()?),
        "status" => Action::Status(status(value)?),
        "t" => Action::Transform(transformation(value)?),
        "setvar" => Action::SetVar(set_var(value)?),
        "setenv" => set_env(value)?,
        "setuid" => Action::SetUid(text()?),
        "setsid" => Action::SetSid(text()?),
        "setrsc" => Action::SetRsc(text()?),
        "expirevar" => expire_var(value)?,
        "deprecatevar" => deprecate_var(value)?,
        "initcol" => init_col(value)?,
        "ctl" => Action::Ctl(parse_ctl(value)?),
        "sanitisearg" => Action::SanitiseArg(value.to_string()),
        "sanitisematchedbytes" => Action::SanitiseMatchedBytes(Some(byte_window(value)?)),
        "sanitiserequestheader" => Action::SanitiseRequestHeader(value.to_string()),
        "sanitiseresponseheader" => Action::SanitiseResponseHeader(value.to_string()),
        "exec" => Action::Exec(value.to_string()),
        "append" => Action::Append(text()?),
        "prepend" => Action::Prepend(text()?),
        "xmlns" => xmlns(value)?,
        _ if !is_valued(name) && flag_action(name).is_ok() => {
            return Err(ErrorKind::invalid("action", name, "takes no value"));
        }
        _ => return Err(ErrorKind::UnknownAction(name.to_string())),
    })
}

fn rule_id(value: &str) -> Result<u64, ErrorKind> {
    match number::<u64>("rule id", value)? {
        0 => Err(ErrorKind::invalid("rule id", value, "must be positive")),
        id => Ok(id),
    }
}

fn digit(what: &'static str, value: &str) -> Result<u8, ErrorKind> {
    match number::<u8>(what, value)? {
        n @ 0..=9 => Ok(n),
        _ => Err(ErrorKind::invalid(what, value, "expected 0-9")),
    }
}

fn positive(what: &'static str, value: &str) -> Result<u32, ErrorKind> {
    match number::<u32>(what, value)? {
        0 => Err(ErrorKind::invalid(what, value, "must be at least 1")),
        n => Ok(n),
    }
}

fn non_empty(what: &'static str, value: &str) -> Result<String, ErrorKind> {
    if value.is_empty() {
        return Err(ErrorKind::invalid(what, value, "must not be empty"));
    }
    Ok(value.to_string())
}

fn allow_scope(value: &str) -> Result<AllowScope, ErrorKind> {
    let table = [
        ("phase", AllowScope::Phase),
        ("request", AllowScope::Request),
    ];
    super::values::keyword("allow scope", value, &table)
}

fn status(value: &str) -> Result<u16, ErrorKind> {
    match number::<u16>("status", value)? {
        code @ 100..=999 => Ok(code),
        _ => Err(ErrorKind::invalid(
            "status",
            value,
            "expected an HTTP status code",
        )),
    }
}

fn transformation(value: &str) -> Result<&'static Transformation, ErrorKind> {
    transform::lookup(value).ok_or_else(|| ErrorKind::UnknownTransformation(value.to_string()))
}

/// `collection.key` with a macro-capable key.
fn var_name(text: &str) -> Result<VarName, ErrorKind> {
    let Some((collection, key)) = text.split_once('.') else {
        return Err(ErrorKind::invalid(
            "variable",
            text,
            "expected collection.name",
        ));
    };
    let key = key.trim();
    if key.is_empty() {
        return Err(ErrorKind::invalid(
            "variable",
            text,
            "missing variable name",
        ));
    }
    Ok(VarName {
        collection: Collection::parse(collection.trim())?,
        key: Template::parse(key)?,
    })
}

fn set_var(value: &str) -> Result<SetVar, ErrorKind> {
    if let Some(name) = value.strip_prefix('!') {
        return Ok(SetVar {
            var: var_name(name)?,
            op: SetVarOp::Delete,
        });
    }
    let Some((name, rhs)) = value.split_once('=') else {
        return Ok(SetVar {
            var: var_name(value)?,
            op: SetVarOp::SetToOne,
        });
    };
    let op = if let Some(n) = rhs.strip_prefix('+') {
        SetVarOp::Add(Template::parse(n)?)
    } else if let Some(n) = rhs.strip_prefix('-') {
        SetVarOp::Sub(Template::parse(n)?)
    } else {
        SetVarOp::Set(Template::parse(rhs)?)
    };
    Ok(SetVar {
        var: var_name(name)?,
        op,
    })
}

fn set_env(value: &str) -> Result<Action, ErrorKind> {
    let (name, rhs) = value
        .split_once('=')
        .ok_or_else(|| ErrorKind::invalid("setenv", value, "expected name=value"))?;
    Ok(Action::SetEnv {
        name: non_empty("environment variable name", name.trim())?,
        value: Template::parse(rhs)?,
    })
}

fn expire_var(value: &str) -> Result<Action, ErrorKind> {
    let (name, seconds) = value.split_once('=').ok_or_else(|| {
        ErrorKind::invalid("expirevar", value, "expected collection.name=seconds")
    })?;
    Ok(Action::ExpireVar {
        var: var_name(name)?,
        seconds: Template::parse(seconds)?,
    })
}

fn deprecate_var(value: &str) -> Result<Action, ErrorKind> {
    let (name, rate) = value.split_once('=').ok_or_else(|| {
        ErrorKind::invalid(
            "deprecatevar",
            value,
            "expected collection.name=amount/seconds",
        )
    })?;
    Ok(Action::DeprecateVar {
        var: var_name(name)?,
        value: Template::parse(rate)?,
    })
}

fn init_col(value: &str) -> Result<Action, ErrorKind> {
    let (name, key) = value
        .split_once('=')
        .ok_or_else(|| ErrorKind::invalid("initcol", value, "expected collection=key"))?;
    let collection = Collection::parse(name.trim())?;
    if collection == Collection::Tx {
        return Err(ErrorKind::invalid(
            "initcol",
            value,
            "TX is not a persistent collection",
        ));
    }
    Ok(Action::InitCol {
        collection,
        key: Template::parse(key)?,
    })
}

fn byte_window(value: &str) -> Result<(u32, u32), ErrorKind> {
    let (start, end) = value
        .split_once('/')
        .ok_or_else(|| ErrorKind::invalid("sanitiseMatchedBytes", value, "expected start/end"))?;
    Ok((number("byte count", start)?, number("byte count", end)?))
}

fn xmlns(value: &str) -> Result<Action, ErrorKind> {
    let (prefix, uri) = value
        .split_once('=')
        .ok_or_else(|| ErrorKind::invalid("xmlns", value, "expected prefix=uri"))?;
    Ok(Action::Xmlns {
        prefix: non_empty("xmlns prefix", prefix)?,
        uri: non_empty("xmlns uri", uri)?,
    })
}
