//! The typed AST: one [`Directive`] per configuration directive, in file
//! order, with `Include`s already expanded in place.
//!
//! Chains are *not* grouped here: a `SecRule` carrying `chain` is followed
//! by its chained `SecRule` directives, exactly as in the file. The compiler
//! links them (it has to track `SecDefaultAction` and markers anyway).

use super::actions::Action;
use super::error::Location;
use super::operators::Operator;
use super::variables::Target;

/// A directive and where it was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Directive {
    pub location: Location,
    pub kind: DirectiveKind,
}

/// `SecRule VARIABLES OPERATOR [ACTIONS]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub targets: Vec<Target>,
    pub operator: Operator,
    pub actions: Vec<Action>,
}

impl Rule {
    /// The `id:` action, if present (chained rules usually have none).
    pub fn id(&self) -> Option<u64> {
        actions_id(&self.actions)
    }

    /// True when the next `SecRule` is chained to this one.
    pub fn is_chained(&self) -> bool {
        self.actions.iter().any(|a| matches!(a, Action::Chain))
    }
}

/// The `id:` of an action list.
pub fn actions_id(actions: &[Action]) -> Option<u64> {
    actions.iter().find_map(|a| match a {
        Action::Id(id) => Some(*id),
        _ => None,
    })
}

/// Inclusive range of rule ids, as in `SecRuleRemoveById 941000-941999`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IdRange {
    pub start: u64,
    pub end: u64,
}

impl IdRange {
    pub fn single(id: u64) -> Self {
        IdRange { start: id, end: id }
    }

    pub fn contains(&self, id: u64) -> bool {
        (self.start..=self.end).contains(&id)
    }
}

/// Which rules a removal or target update applies to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RuleSelector {
    Ids(Vec<IdRange>),
    /// Matched against each rule's `tag:` values.
    Tag(String),
    /// Matched against each rule's `msg:`.
    Msg(String),
}

/// `SecRuleEngine` and `ctl:ruleEngine`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EngineMode {
    On,
    Off,
    DetectionOnly,
}

/// `SecAuditEngine` and `ctl:auditEngine`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuditEngineMode {
    On,
    Off,
    RelevantOnly,
}

/// `SecRequestBodyLimitAction` / `SecResponseBodyLimitAction`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BodyLimitAction {
    Reject,
    ProcessPartial,
}

/// `SecUploadKeepFiles`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UploadKeepFiles {
    On,
    Off,
    RelevantOnly,
}

/// `ctl:requestBodyProcessor`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BodyProcessor {
    UrlEncoded,
    Multipart,
    Xml,
    Json,
}

/// The `SecAuditLog*` family. Audit logging is configured but its values
/// are passed through untouched; their meaning belongs to the logger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuditLogSetting {
    /// `SecAuditLog path`
    Path(String),
    /// `SecAuditLog2 path`
    Path2(String),
    /// `SecAuditLogParts ABIJDEFHZ`
    Parts(String),
    /// `SecAuditLogType Serial|Concurrent|HTTPS`
    Type(String),
    /// `SecAuditLogFormat JSON|Native`
    Format(String),
    /// `SecAuditLogStorageDir path`
    StorageDir(String),
    /// `SecAuditLogDirMode 0750` (octal)
    DirMode(u32),
    /// `SecAuditLogFileMode 0640` (octal)
    FileMode(u32),
    /// `SecAuditLogRelevantStatus "^(?:5|4(?!04))"` (a regex)
    RelevantStatus(String),
}

/// Every directive rampart understands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DirectiveKind {
    SecRule(Box<Rule>),
    SecAction(Vec<Action>),
    SecMarker(String),
    SecDefaultAction(Vec<Action>),
    RuleEngine(EngineMode),
    RequestBodyAccess(bool),
    ResponseBodyAccess(bool),
    /// `SecResponseBodyMimeType`: adds to the list of inspected types.
    ResponseBodyMimeType(Vec<String>),
    ResponseBodyMimeTypesClear,
    RequestBodyLimit(u64),
    RequestBodyNoFilesLimit(u64),
    RequestBodyInMemoryLimit(u64),
    RequestBodyLimitAction(BodyLimitAction),
    ResponseBodyLimit(u64),
    ResponseBodyLimitAction(BodyLimitAction),
    RequestBodyJsonDepthLimit(u64),
    ArgumentsLimit(u64),
    ArgumentSeparator(char),
    /// `SecCookieFormat 0|1` (Netscape or version 1 cookies).
    CookieFormat(u8),
    UnicodeMapFile {
        path: String,
        code_page: Option<u32>,
    },
    /// `SecRuleRemoveById` / `ByTag` / `ByMsg`.
    RuleRemove(RuleSelector),
    /// `SecRuleUpdateTargetById` / `ByTag` / `ByMsg`: adds (or, with `!`,
    /// excludes) targets; `replacing` is the optional third argument naming
    /// a target to replace instead.
    RuleUpdateTarget {
        selector: RuleSelector,
        targets: Vec<Target>,
        replacing: Option<Vec<Target>>,
    },
    /// `SecRuleUpdateActionById ID[:chain-offset] "actions"`.
    RuleUpdateAction {
        id: u64,
        chain_offset: Option<u32>,
        actions: Vec<Action>,
    },
    ComponentSignature(String),
    CollectionTimeout(u64),
    TmpDir(String),
    DataDir(String),
    DebugLog(String),
    DebugLogLevel(u8),
    AuditEngine(AuditEngineMode),
    AuditLog(AuditLogSetting),
    StatusEngine(bool),
    PcreMatchLimit(u64),
    PcreMatchLimitRecursion(u64),
    HttpBlKey(String),
    WebAppId(String),
    ServerSignature(String),
    UploadDir(String),
    UploadKeepFiles(UploadKeepFiles),
    /// Octal permission bits.
    UploadFileMode(u32),
    UploadFileLimit(u64),
    XmlExternalEntity(bool),
}
