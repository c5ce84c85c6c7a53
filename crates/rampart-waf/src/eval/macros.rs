//! Macro expansion: `%{tx.score}`, `%{MATCHED_VAR}`, `%{rule.id}` in
//! action and operator arguments, resolved against the transaction.

use std::ops::Deref;

use crate::parser::{MacroRef, Template, TemplatePart, Variable};

use super::vars::Shared;
use super::Transaction;

/// An expanded template's bytes. A template that is one macro (`%{tx.x}`,
/// the common case in operator arguments and `setvar` values) shares the
/// variable's bytes instead of copying them into a new buffer.
pub(super) enum Expanded {
    /// The value of the template's only macro; `None` when it is unset.
    Single(Option<Shared>),
    /// Literal text and macros concatenated.
    Built(Vec<u8>),
}

impl Deref for Expanded {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Expanded::Single(Some(value)) => value,
            Expanded::Single(None) => &[],
            Expanded::Built(bytes) => bytes,
        }
    }
}

impl<'r> Transaction<'r> {
    /// Expands a template; unknown or unset references expand to nothing.
    pub(super) fn expand(&self, template: &Template) -> Vec<u8> {
        // Sized for the source text plus a short value per macro: most
        // expansions then fit without growing.
        let mut out = Vec::with_capacity(template.raw().len() + 16);
        self.expand_into(template, &mut out);
        out
    }

    /// Appends the expansion of a template to `out`.
    pub(super) fn expand_into(&self, template: &Template, out: &mut Vec<u8>) {
        for part in template.parts() {
            match part {
                TemplatePart::Literal(text) => out.extend_from_slice(text.as_bytes()),
                TemplatePart::Macro(m) => {
                    if let Some(v) = self.lookup_macro(m) {
                        out.extend_from_slice(&v);
                    }
                }
            }
        }
    }

    /// Like [`Transaction::expand`], without a copy when the template is a
    /// single macro.
    pub(super) fn expand_shared(&self, template: &Template) -> Expanded {
        match template.parts() {
            [TemplatePart::Macro(m)] => Expanded::Single(self.lookup_macro(m)),
            _ => Expanded::Built(self.expand(template)),
        }
    }

    /// The value a macro reference stands for. `%{tx.x}` reads TX by the
    /// key hashed at load (the common case: CRS's thresholds and scores).
    pub(super) fn lookup_macro(&self, m: &MacroRef) -> Option<Shared> {
        if let (Variable::Tx, Some(key)) = (m.variable, &m.stored) {
            return self.tx.get_key(key).cloned().map(Shared::Bytes);
        }
        self.lookup(m.variable, m.key.as_deref())
    }

    /// Expands to text (lossy for non-UTF-8 bytes, which keys never need).
    pub(super) fn expand_str(&self, template: &Template) -> String {
        String::from_utf8(self.expand(template))
            .unwrap_or_else(|invalid| String::from_utf8_lossy(invalid.as_bytes()).into_owned())
    }
}
