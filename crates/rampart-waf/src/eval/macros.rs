//! Macro expansion: `%{tx.score}`, `%{MATCHED_VAR}`, `%{rule.id}` in
//! action and operator arguments, resolved against the transaction.

use crate::parser::{Template, TemplatePart};

use super::Transaction;

impl<'r> Transaction<'r> {
    /// Expands a template; unknown or unset references expand to nothing.
    pub(super) fn expand(&self, template: &Template) -> Vec<u8> {
        let mut out = Vec::new();
        for part in template.parts() {
            match part {
                TemplatePart::Literal(text) => out.extend_from_slice(text.as_bytes()),
                TemplatePart::Macro(m) => {
                    if let Some(v) = self.lookup(m.variable, m.key.as_deref()) {
                        out.extend_from_slice(&v);
                    }
                }
            }
        }
        out
    }

    /// Expands to text (lossy for non-UTF-8 bytes, which keys never need).
    pub(super) fn expand_str(&self, template: &Template) -> String {
        String::from_utf8_lossy(&self.expand(template)).into_owned()
    }
}
