//! rampart-waf: the ModSecurity SecLang engine (parse → compile → evaluate),
//! with ModSecurity v3 semantics and no networking.
//!
//! This first layer provides:
//! * [`parser`]: SecLang text (and `Include`d files) to a typed AST of
//!   [`Directive`]s, each carrying its file and line;
//! * [`transform`]: the `t:xxx` transformation functions and their registry.

pub mod parser;
pub mod transform;

pub use parser::{parse_file, parse_str, Directive, DirectiveKind, ParseError};
pub use transform::Transformation;
