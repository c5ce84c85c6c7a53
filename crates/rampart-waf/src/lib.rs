//! rampart-waf: the ModSecurity SecLang engine (parse → compile → evaluate),
//! with ModSecurity v3 semantics and no networking.
//!
//! * [`parser`]: SecLang text (and `Include`d files) to a typed AST of
//!   [`Directive`]s, each carrying its file and line;
//! * [`transform`]: the `t:xxx` transformation functions and their registry;
//! * [`compile`]: directives to an immutable [`RuleSet`] (chains, defaults,
//!   markers, exclusions, compiled operators, an unsupported-rule report);
//! * [`eval`]: a [`Transaction`] that runs a rule set over one exchange;
//! * [`conformance`]: runs CRS's go-ftw regression tests through the engine.

pub mod builtin;
pub mod compile;
pub mod conformance;
pub mod eval;
mod inthash;
pub mod parser;
pub mod transform;

pub use compile::{LoadError, RuleSet, Unsupported};
pub use eval::{Intervention, MatchedRule, Transaction};
pub use parser::{parse_file, parse_str, Directive, DirectiveKind, ParseError};
pub use transform::Transformation;
