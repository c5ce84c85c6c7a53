//! What failed, in a structured form safe to show a client: where (JSON
//! pointer of the instance, parameter name), which constraint (schema keyword
//! and path), never the offending value itself.

use std::fmt;

/// Longest pointer or name echoed back; attacker-chosen keys are cut here.
const MAX_ECHO: usize = 128;

/// The kind of failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViolationKind {
    /// No path template matches the request path (a shadow API call).
    UnknownEndpoint,
    /// The path is documented, the method is not.
    MethodNotAllowed,
    /// A required parameter or body is absent.
    Missing,
    /// A parameter could not be read as its declared type (`abc` for an integer).
    BadType,
    /// A value failed its JSON Schema.
    Schema,
    /// The body's content type is not declared for the operation.
    UnsupportedMediaType,
    /// The body is declared JSON but does not parse.
    MalformedJson,
    /// A request property the schema does not declare (mass assignment).
    UndeclaredProperty,
    /// The body is larger than the validation limit.
    BodyTooLarge,
    /// The response status is not documented for the operation.
    UndocumentedStatus,
}

impl ViolationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ViolationKind::UnknownEndpoint => "unknown_endpoint",
            ViolationKind::MethodNotAllowed => "method_not_allowed",
            ViolationKind::Missing => "missing",
            ViolationKind::BadType => "bad_type",
            ViolationKind::Schema => "schema",
            ViolationKind::UnsupportedMediaType => "unsupported_media_type",
            ViolationKind::MalformedJson => "malformed_json",
            ViolationKind::UndeclaredProperty => "undeclared_property",
            ViolationKind::BodyTooLarge => "body_too_large",
            ViolationKind::UndocumentedStatus => "undocumented_status",
        }
    }
}

/// Where in the exchange the failing value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    Path,
    Query,
    Header,
    RequestBody,
    ResponseBody,
    Response,
    Endpoint,
}

impl Place {
    pub fn as_str(self) -> &'static str {
        match self {
            Place::Path => "path",
            Place::Query => "query",
            Place::Header => "header",
            Place::RequestBody => "body",
            Place::ResponseBody => "response_body",
            Place::Response => "response",
            Place::Endpoint => "endpoint",
        }
    }
}

/// One failed constraint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub kind: ViolationKind,
    pub place: Place,
    /// Parameter name, for parameters.
    pub name: Option<String>,
    /// JSON pointer of the failing value inside the parameter or body
    /// (`""` for the whole value).
    pub pointer: String,
    /// The JSON Schema keyword that failed (`type`, `required`, `format`...).
    pub keyword: Option<String>,
    /// JSON pointer of that keyword inside the operation's schema.
    pub schema_path: Option<String>,
}

impl Violation {
    pub fn new(kind: ViolationKind, place: Place) -> Self {
        Violation {
            kind,
            place,
            name: None,
            pointer: String::new(),
            keyword: None,
            schema_path: None,
        }
    }

    pub fn named(mut self, name: &str) -> Self {
        self.name = Some(truncate(name));
        self
    }

    pub fn at(mut self, pointer: &str) -> Self {
        self.pointer = truncate(pointer);
        self
    }

    pub fn keyword(mut self, keyword: &str, schema_path: &str) -> Self {
        self.keyword = Some(truncate(keyword));
        self.schema_path = Some(truncate(schema_path));
        self
    }

    /// Builds a schema violation from a `jsonschema` error without reading
    /// the instance (which may hold a secret or be huge).
    pub fn from_schema_error(place: Place, err: &jsonschema::ValidationError<'_>) -> Self {
        Violation::new(ViolationKind::Schema, place)
            .at(err.instance_path().as_str())
            .keyword(err.kind().keyword(), err.schema_path().as_str())
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.place.as_str(), self.kind.as_str())?;
        if let Some(name) = &self.name {
            write!(f, " parameter {name:?}")?;
        }
        if !self.pointer.is_empty()
            || matches!(self.place, Place::RequestBody | Place::ResponseBody)
        {
            write!(f, " at {:?}", self.pointer)?;
        }
        if let Some(k) = &self.keyword {
            write!(f, ": failed {k:?}")?;
        }
        if let Some(p) = &self.schema_path {
            write!(f, " (schema {p:?})")?;
        }
        Ok(())
    }
}

fn truncate(s: &str) -> String {
    if s.len() <= MAX_ECHO {
        return s.to_string();
    }
    let mut end = MAX_ECHO;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_place_pointer_and_keyword() {
        let v = Violation::new(ViolationKind::Schema, Place::RequestBody)
            .at("/items/0/price")
            .keyword(
                "minimum",
                "/properties/items/items/properties/price/minimum",
            );
        assert_eq!(
            v.to_string(),
            "body schema at \"/items/0/price\": failed \"minimum\" (schema \"/properties/items/items/properties/price/minimum\")"
        );
    }

    #[test]
    fn long_attacker_keys_are_truncated() {
        let long = "é".repeat(200);
        let v = Violation::new(ViolationKind::UndeclaredProperty, Place::RequestBody).at(&long);
        assert!(v.pointer.len() <= MAX_ECHO + 3);
        assert!(v.pointer.ends_with("..."));
    }

    #[test]
    fn schema_errors_do_not_echo_values() {
        let schema =
            serde_json::json!({"type": "object", "properties": {"pin": {"type": "integer"}}});
        let validator = jsonschema::validator_for(&schema).unwrap();
        let instance = serde_json::json!({"pin": "s3cr3t-value"});
        let err = validator.validate(&instance).unwrap_err();
        let v = Violation::from_schema_error(Place::RequestBody, &err);
        assert_eq!(
            (v.pointer.as_str(), v.keyword.as_deref()),
            ("/pin", Some("type"))
        );
        assert!(!v.to_string().contains("s3cr3t"));
    }
}
