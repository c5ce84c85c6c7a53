//! Engine settings from configuration directives (`SecRuleEngine`,
//! `SecRequestBodyAccess`, limits …), with ModSecurity's defaults.

use crate::parser::{BodyLimitAction, DirectiveKind, EngineMode};

/// Settings that apply to every transaction (some can be changed per
/// transaction with `ctl:`).
#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub rule_engine: EngineMode,
    pub request_body_access: bool,
    pub response_body_access: bool,
    /// Lower-case MIME types whose response bodies are inspected.
    pub response_mime_types: Vec<String>,
    pub request_body_limit: u64,
    pub request_body_no_files_limit: u64,
    pub request_body_limit_action: BodyLimitAction,
    pub response_body_limit: u64,
    pub response_body_limit_action: BodyLimitAction,
    pub json_depth_limit: u64,
    pub arguments_limit: u64,
    pub argument_separator: u8,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            rule_engine: EngineMode::On,
            request_body_access: false,
            response_body_access: false,
            response_mime_types: vec!["text/plain".into(), "text/html".into()],
            request_body_limit: 13_107_200,
            request_body_no_files_limit: 131_072,
            request_body_limit_action: BodyLimitAction::Reject,
            response_body_limit: 524_288,
            response_body_limit_action: BodyLimitAction::ProcessPartial,
            json_depth_limit: 1024,
            arguments_limit: 1000,
            argument_separator: b'&',
        }
    }
}

impl EngineConfig {
    /// Applies a configuration directive; returns false for directives
    /// that are not engine settings.
    pub(crate) fn apply(&mut self, kind: &DirectiveKind) -> bool {
        match kind {
            DirectiveKind::RuleEngine(mode) => self.rule_engine = *mode,
            DirectiveKind::RequestBodyAccess(on) => self.request_body_access = *on,
            DirectiveKind::ResponseBodyAccess(on) => self.response_body_access = *on,
            DirectiveKind::ResponseBodyMimeType(types) => self
                .response_mime_types
                .extend(types.iter().map(|t| t.to_ascii_lowercase())),
            DirectiveKind::ResponseBodyMimeTypesClear => self.response_mime_types.clear(),
            DirectiveKind::RequestBodyLimit(n) => self.request_body_limit = *n,
            DirectiveKind::RequestBodyNoFilesLimit(n) => self.request_body_no_files_limit = *n,
            DirectiveKind::RequestBodyLimitAction(a) => self.request_body_limit_action = *a,
            DirectiveKind::ResponseBodyLimit(n) => self.response_body_limit = *n,
            DirectiveKind::ResponseBodyLimitAction(a) => self.response_body_limit_action = *a,
            DirectiveKind::RequestBodyJsonDepthLimit(n) => self.json_depth_limit = *n,
            DirectiveKind::ArgumentsLimit(n) => self.arguments_limit = *n,
            DirectiveKind::ArgumentSeparator(c) => self.argument_separator = *c as u8,
            _ => return false,
        }
        true
    }
}
