//! Parameters: compiled from the document, read from the request as
//! strings, coerced to their declared type, then validated by their schema.
//!
//! Supported serialisations: `simple` (path, header), `form` (query) with
//! `explode` true or false, `spaceDelimited` and `pipeDelimited` arrays,
//! `label` and `matrix` path values. Object-valued parameters (`deepObject`,
//! exploded form objects) and `content`-described parameters are checked for
//! presence only.

use std::borrow::Cow;

use jsonschema::Validator;
use serde_json::Value;

use crate::violation::{Place, Violation, ViolationKind};

/// Where a parameter is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamIn {
    Path,
    Query,
    Header,
    Cookie,
}

impl ParamIn {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "path" => ParamIn::Path,
            "query" => ParamIn::Query,
            "header" => ParamIn::Header,
            "cookie" => ParamIn::Cookie,
            _ => return None,
        })
    }

    fn place(self) -> Place {
        match self {
            ParamIn::Path => Place::Path,
            ParamIn::Query | ParamIn::Cookie => Place::Query,
            ParamIn::Header => Place::Header,
        }
    }
}

/// The JSON type a parameter's string form is coerced to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueKind {
    String,
    Integer,
    Number,
    Boolean,
    Array(Box<ValueKind>),
    /// Objects and anything without a usable `type`: presence-checked only.
    Unchecked,
}

impl ValueKind {
    /// Reads the kind from a (resolved) schema; `items` is resolved by `resolve_items`.
    pub fn of(schema: &Value, resolve_items: impl Fn(&Value) -> Value) -> ValueKind {
        match primary_type(schema) {
            Some("string") => ValueKind::String,
            Some("integer") => ValueKind::Integer,
            Some("number") => ValueKind::Number,
            Some("boolean") => ValueKind::Boolean,
            Some("array") => {
                let items = schema
                    .get("items")
                    .map(&resolve_items)
                    .unwrap_or(Value::Null);
                let inner = match primary_type(&items) {
                    Some("string") => ValueKind::String,
                    Some("integer") => ValueKind::Integer,
                    Some("number") => ValueKind::Number,
                    Some("boolean") => ValueKind::Boolean,
                    _ => ValueKind::String,
                };
                ValueKind::Array(Box::new(inner))
            }
            _ => ValueKind::Unchecked,
        }
    }
}

fn primary_type(schema: &Value) -> Option<&str> {
    match schema.get("type")? {
        Value::String(t) => Some(t),
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).find(|t| *t != "null"),
        _ => None,
    }
}

/// How an array parameter is serialised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Simple,
    Form,
    Label,
    Matrix,
    SpaceDelimited,
    PipeDelimited,
    DeepObject,
}

impl Style {
    pub fn parse(s: Option<&str>, location: ParamIn) -> Option<Style> {
        Some(match s {
            None => match location {
                ParamIn::Path | ParamIn::Header => Style::Simple,
                ParamIn::Query | ParamIn::Cookie => Style::Form,
            },
            Some("simple") => Style::Simple,
            Some("form") => Style::Form,
            Some("label") => Style::Label,
            Some("matrix") => Style::Matrix,
            Some("spaceDelimited") => Style::SpaceDelimited,
            Some("pipeDelimited") => Style::PipeDelimited,
            Some("deepObject") => Style::DeepObject,
            Some(_) => return None,
        })
    }
}

/// One compiled parameter.
pub struct Param {
    pub name: String,
    pub location: ParamIn,
    pub required: bool,
    pub kind: ValueKind,
    pub style: Style,
    pub explode: bool,
    pub validator: Option<Validator>,
}

impl std::fmt::Debug for Param {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Param")
            .field("name", &self.name)
            .field("location", &self.location)
            .field("required", &self.required)
            .field("kind", &self.kind)
            .field("style", &self.style)
            .field("explode", &self.explode)
            .finish_non_exhaustive()
    }
}

impl Param {
    /// Checks the raw occurrences of this parameter (several for a repeated
    /// query key; empty when absent).
    pub fn check(&self, raw: &[Cow<'_, str>]) -> Result<(), Violation> {
        let place = self.location.place();
        if raw.is_empty() {
            return if self.required {
                Err(Violation::new(ViolationKind::Missing, place).named(&self.name))
            } else {
                Ok(())
            };
        }
        if self.kind == ValueKind::Unchecked {
            return Ok(());
        }
        let value = self
            .coerce(raw)
            .ok_or_else(|| Violation::new(ViolationKind::BadType, place).named(&self.name))?;
        if let Some(validator) = &self.validator {
            if let Some(err) = validator.iter_errors(&value).next() {
                return Err(Violation::from_schema_error(place, &err).named(&self.name));
            }
        }
        Ok(())
    }

    fn coerce(&self, raw: &[Cow<'_, str>]) -> Option<Value> {
        let first = strip_style_prefix(raw.first()?, self.style, &self.name);
        match &self.kind {
            ValueKind::Array(item) => {
                let parts: Vec<&str> = if self.explode && self.style == Style::Form {
                    raw.iter().map(|r| r.as_ref()).collect()
                } else {
                    split_array(first, self.style, self.explode)
                };
                parts
                    .iter()
                    .map(|p| scalar(p, item))
                    .collect::<Option<Vec<_>>>()
                    .map(Value::Array)
            }
            kind => scalar(first, kind),
        }
    }
}

/// Removes the `.` (label) or `;name=` (matrix) prefix of path values.
fn strip_style_prefix<'s>(raw: &'s str, style: Style, name: &str) -> &'s str {
    match style {
        Style::Label => raw.strip_prefix('.').unwrap_or(raw),
        Style::Matrix => raw
            .strip_prefix(';')
            .and_then(|r| r.strip_prefix(name))
            .and_then(|r| r.strip_prefix('='))
            .unwrap_or(raw),
        _ => raw,
    }
}

fn split_array(value: &str, style: Style, explode: bool) -> Vec<&str> {
    if value.is_empty() {
        return Vec::new();
    }
    let sep = match style {
        Style::SpaceDelimited => ' ',
        Style::PipeDelimited => '|',
        Style::Label if explode => '.',
        _ => ',',
    };
    value.split(sep).collect()
}

/// Parses one string as `kind`; `None` when it is not that type.
fn scalar(s: &str, kind: &ValueKind) -> Option<Value> {
    match kind {
        ValueKind::String | ValueKind::Unchecked | ValueKind::Array(_) => {
            Some(Value::String(s.to_string()))
        }
        ValueKind::Integer => s
            .parse::<i64>()
            .map(Value::from)
            .or_else(|_| s.parse::<u64>().map(Value::from))
            .ok(),
        ValueKind::Number => {
            if let Ok(i) = s.parse::<i64>() {
                return Some(Value::from(i));
            }
            let f: f64 = s.parse().ok().filter(|f: &f64| f.is_finite())?;
            // `inf`, `NaN` and hex are not JSON numbers.
            if !s
                .bytes()
                .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b))
            {
                return None;
            }
            serde_json::Number::from_f64(f).map(Value::Number)
        }
        ValueKind::Boolean => match s {
            "true" => Some(Value::Bool(true)),
            "false" => Some(Value::Bool(false)),
            _ => None,
        },
    }
}

/// Splits a query string into percent-decoded pairs (`+` is a space).
pub fn parse_query(query: &str) -> Vec<(Cow<'_, str>, Cow<'_, str>)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode_form(k), decode_form(v))
        })
        .collect()
}

fn decode_form(s: &str) -> Cow<'_, str> {
    if !s.contains(['%', '+']) {
        return Cow::Borrowed(s);
    }
    let spaced = s.replace('+', " ");
    Cow::Owned(
        percent_encoding::percent_decode_str(&spaced)
            .decode_utf8_lossy()
            .into_owned(),
    )
}

/// Percent-decodes a path segment value (`+` stays a plus).
pub fn decode_path(s: &str) -> Cow<'_, str> {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn param(kind: ValueKind, style: Style, explode: bool, schema: Option<Value>) -> Param {
        Param {
            name: "p".into(),
            location: ParamIn::Query,
            required: true,
            kind,
            style,
            explode,
            validator: schema.map(|s| jsonschema::validator_for(&s).unwrap()),
        }
    }

    fn raw<'a>(v: &[&'a str]) -> Vec<Cow<'a, str>> {
        v.iter().map(|s| Cow::Borrowed(*s)).collect()
    }

    #[test]
    fn integers_are_coerced_and_validated() {
        let p = param(
            ValueKind::Integer,
            Style::Form,
            true,
            Some(json!({"type": "integer", "maximum": 100})),
        );
        assert!(p.check(&raw(&["42"])).is_ok());
        assert_eq!(
            p.check(&raw(&["4x"])).unwrap_err().kind,
            ViolationKind::BadType
        );
        let v = p.check(&raw(&["101"])).unwrap_err();
        assert_eq!(
            (v.kind, v.keyword.as_deref()),
            (ViolationKind::Schema, Some("maximum"))
        );
        assert_eq!(p.check(&raw(&[])).unwrap_err().kind, ViolationKind::Missing);
    }

    #[test]
    fn numbers_refuse_non_json_forms() {
        assert_eq!(scalar("1.5e3", &ValueKind::Number), Some(json!(1500.0)));
        assert_eq!(scalar("inf", &ValueKind::Number), None);
        assert_eq!(scalar("NaN", &ValueKind::Number), None);
        assert_eq!(scalar("yes", &ValueKind::Boolean), None);
    }

    #[test]
    fn arrays_in_each_style() {
        let arr = || ValueKind::Array(Box::new(ValueKind::Integer));
        let schema = Some(json!({"type": "array", "items": {"type": "integer"}, "maxItems": 3}));
        let exploded = param(arr(), Style::Form, true, schema.clone());
        assert!(exploded.check(&raw(&["1", "2"])).is_ok());
        assert!(exploded.check(&raw(&["1", "2", "3", "4"])).is_err());
        let csv = param(arr(), Style::Form, false, schema.clone());
        assert!(csv.check(&raw(&["1,2,3"])).is_ok());
        assert_eq!(
            csv.check(&raw(&["1,a"])).unwrap_err().kind,
            ViolationKind::BadType
        );
        let pipes = param(arr(), Style::PipeDelimited, false, schema);
        assert!(pipes.check(&raw(&["1|2"])).is_ok());
    }

    #[test]
    fn label_and_matrix_prefixes() {
        assert_eq!(strip_style_prefix(".5", Style::Label, "id"), "5");
        assert_eq!(strip_style_prefix(";id=5", Style::Matrix, "id"), "5");
    }

    #[test]
    fn query_pairs_are_decoded() {
        let q = parse_query("a=1&b=x+y&c=%2Fz&flag&&a=2");
        let pairs: Vec<(&str, &str)> = q.iter().map(|(k, v)| (k.as_ref(), v.as_ref())).collect();
        assert_eq!(
            pairs,
            vec![
                ("a", "1"),
                ("b", "x y"),
                ("c", "/z"),
                ("flag", ""),
                ("a", "2")
            ]
        );
    }
}
