//! Macro templates: text such as `Matched %{MATCHED_VAR} in %{tx.0}`,
//! pre-split into literal pieces and variable references so that expanding
//! it per request is a simple concatenation.

use std::fmt;

use super::error::{AtError, ErrorKind, PResult};
use super::variables::Variable;

/// A reference inside `%{...}`: `MATCHED_VAR`, `tx.score`, `REQUEST_HEADERS.host`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MacroRef {
    pub variable: Variable,
    /// The collection key after `.` (or `:`), if any.
    pub key: Option<String>,
    /// `key` in lower case and hashed, made once at load: `%{tx.x}` is
    /// then read without hashing per request (see `eval::StoreKey`).
    pub(crate) stored: Option<crate::eval::StoreKey>,
}

impl MacroRef {
    pub fn new(variable: Variable, key: Option<&str>) -> MacroRef {
        MacroRef {
            variable,
            key: key.map(str::to_string),
            // Only TX macros are read by key (see `lookup_macro`).
            stored: key
                .filter(|_| variable == Variable::Tx)
                .map(crate::eval::StoreKey::new),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TemplatePart {
    Literal(String),
    Macro(MacroRef),
}

/// Parsed text with `%{...}` macros.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Template {
    raw: String,
    parts: Vec<TemplatePart>,
}

/// How to treat `%{name}` when `name` is not a known variable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unknown {
    /// A load error (action arguments: a typo must not go unnoticed).
    Reject,
    /// Literal text (operator arguments, where `%{` can be regex syntax).
    Keep,
}

impl Template {
    /// Parses `raw`, rejecting references to unknown variables.
    pub fn parse(raw: &str) -> Result<Template, ErrorKind> {
        Self::parse_with(raw, Unknown::Reject).map_err(|e| e.kind)
    }

    /// A template without macros.
    pub fn literal(text: &str) -> Template {
        let parts = if text.is_empty() {
            Vec::new()
        } else {
            vec![TemplatePart::Literal(text.to_string())]
        };
        Template {
            raw: text.to_string(),
            parts,
        }
    }

    pub(crate) fn parse_with(raw: &str, unknown: Unknown) -> PResult<Template> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = raw;
        while let Some(open) = rest.find("%{") {
            literal.push_str(&rest[..open]);
            let after = &rest[open + 2..];
            let offset = raw.len() - rest.len() + open;
            match parse_reference(after, unknown).map_err(|e| e.shift(offset))? {
                Some((reference, used)) => {
                    if !literal.is_empty() {
                        parts.push(TemplatePart::Literal(std::mem::take(&mut literal)));
                    }
                    parts.push(TemplatePart::Macro(reference));
                    rest = &after[used..];
                }
                None => {
                    literal.push_str("%{");
                    rest = after;
                }
            }
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(TemplatePart::Literal(literal));
        }
        Ok(Template {
            raw: raw.to_string(),
            parts,
        })
    }

    /// The source text, macros unexpanded.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    pub fn parts(&self) -> &[TemplatePart] {
        &self.parts
    }

    /// True when there is nothing to expand.
    pub fn is_literal(&self) -> bool {
        self.parts
            .iter()
            .all(|p| matches!(p, TemplatePart::Literal(_)))
    }

    /// The macro references, in order.
    pub fn macros(&self) -> impl Iterator<Item = &MacroRef> {
        self.parts.iter().filter_map(|p| match p {
            TemplatePart::Macro(m) => Some(m),
            TemplatePart::Literal(_) => None,
        })
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// Parses `NAME[.key]}` (the text after `%{`). `Ok(None)` means "not a
/// macro, keep as text"; on success returns the reference and the number
/// of bytes consumed, closing brace included.
fn parse_reference(after: &str, unknown: Unknown) -> PResult<Option<(MacroRef, usize)>> {
    let Some(close) = after.find('}') else {
        return Ok(None);
    };
    let body = &after[..close];
    let (name, key) = match body.find(['.', ':']) {
        Some(dot) => (&body[..dot], Some(&body[dot + 1..])),
        None => (body, None),
    };
    let well_formed = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && key.is_none_or(|k| !k.is_empty());
    if !well_formed {
        return Ok(None);
    }
    let Some(variable) = Variable::from_name(name) else {
        return match unknown {
            Unknown::Keep => Ok(None),
            Unknown::Reject => Err(AtError::new(
                2,
                ErrorKind::UnknownVariable(name.to_string()),
            )),
        };
    };
    if key.is_some() && !variable.is_collection() {
        let reason = format!("{variable} is not a collection");
        return Err(AtError::new(2, ErrorKind::invalid("macro", body, reason)));
    }
    let reference = MacroRef::new(variable, key);
    Ok(Some((reference, close + 1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(variable: Variable, key: Option<&str>) -> TemplatePart {
        TemplatePart::Macro(MacroRef::new(variable, key))
    }

    #[test]
    fn splits_literals_and_references() {
        let t = Template::parse(
            "Matched Data: %{TX.0} found within %{MATCHED_VAR_NAME}: %{MATCHED_VAR}",
        )
        .unwrap();
        assert_eq!(
            t.parts(),
            [
                TemplatePart::Literal("Matched Data: ".into()),
                reference(Variable::Tx, Some("0")),
                TemplatePart::Literal(" found within ".into()),
                reference(Variable::MatchedVarName, None),
                TemplatePart::Literal(": ".into()),
                reference(Variable::MatchedVar, None),
            ]
        );
        assert!(!t.is_literal());
        assert_eq!(
            t.raw(),
            "Matched Data: %{TX.0} found within %{MATCHED_VAR_NAME}: %{MATCHED_VAR}"
        );
    }

    #[test]
    fn lowercase_names_and_header_keys() {
        let t = Template::parse("http://%{request_headers.host}/").unwrap();
        assert_eq!(t.macros().next().unwrap().key.as_deref(), Some("host"));
        assert_eq!(
            t.macros().next().unwrap().variable,
            Variable::RequestHeaders
        );
    }

    #[test]
    fn plain_text_and_non_macros_stay_literal() {
        assert!(Template::parse("100% sure {x} %{").unwrap().is_literal());
        assert!(Template::parse("%{}").unwrap().is_literal());
        assert!(Template::parse("").unwrap().parts().is_empty());
        assert_eq!(
            Template::literal("a").parts(),
            [TemplatePart::Literal("a".into())]
        );
    }

    #[test]
    fn unknown_variables_are_rejected_or_kept() {
        assert_eq!(
            Template::parse("%{nope.x}"),
            Err(ErrorKind::UnknownVariable("nope".into()))
        );
        let kept = Template::parse_with("a%{2}b", Unknown::Keep).unwrap();
        assert!(kept.is_literal());
        assert!(Template::parse("%{MATCHED_VAR.x}").is_err());
    }

    #[test]
    fn adjacent_macros() {
        let t = Template::parse("%{tx.a}%{tx.b}").unwrap();
        assert_eq!(t.parts().len(), 2);
    }
}
