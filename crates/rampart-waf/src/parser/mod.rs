//! SecLang parser: ModSecurity configuration text to a typed AST.
//!
//! Pipeline: `loader` reads files and expands `Include`; `lexer` joins
//! continuation lines, drops comments and splits arguments; `directives`
//! dispatches on the directive name; `variables`, `operators`, `actions`,
//! `ctl` and `macros` parse the pieces of a rule. Every [`Directive`] and
//! every [`ParseError`] carries the file and line it came from.
//!
//! The parser checks syntax and names (directives, variables, operators,
//! actions, transformations, ctl options); rule semantics — chains, default
//! actions, required ids, regex validity — are the compiler's job.
//!
//! ```
//! use rampart_waf::parser::{parse_str, Action, DirectiveKind, OperatorKind, Phase};
//!
//! let text = "SecRule ARGS|!ARGS:pw \"@rx attack\" \\\n    \"id:1,phase:2,deny,msg:'hit %{MATCHED_VAR}'\"";
//! let directives = parse_str(text, "inline.conf").unwrap();
//! let DirectiveKind::SecRule(rule) = &directives[0].kind else { unreachable!() };
//! assert_eq!(rule.operator.kind, OperatorKind::Rx);
//! assert_eq!(rule.actions[1], Action::Phase(Phase::RequestBody));
//! assert_eq!(directives[0].location.to_string(), "inline.conf:1");
//! ```

mod actions;
mod ast;
mod ctl;
mod directives;
mod error;
mod glob;
mod lexer;
mod loader;
mod macros;
mod operators;
mod values;
mod variables;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_crs;

pub use actions::{Action, AllowScope, Collection, Phase, SetVar, SetVarOp, Severity, VarName};
pub use ast::{
    actions_id, AuditEngineMode, AuditLogSetting, BodyLimitAction, BodyProcessor, Directive,
    DirectiveKind, EngineMode, IdRange, Rule, RuleSelector, UploadKeepFiles,
};
pub use ctl::Ctl;
pub use directives::directive_names;
pub use error::{ErrorKind, Location, ParseError};
pub use loader::{parse_file, parse_str};
pub use macros::{MacroRef, Template, TemplatePart};
pub use operators::{Operator, OperatorKind};
pub use variables::{Selector, Target, Variable, VariableKind};
