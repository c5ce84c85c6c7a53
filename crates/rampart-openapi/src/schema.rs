//! Compiling the document's schemas with `jsonschema`, once, at load.
//!
//! The translated document is registered as one resource under a private
//! URN; each operation schema is compiled on its own with its internal
//! `#/...` references rewritten to that URN, so shared components are parsed
//! once and error paths stay relative to the operation's schema. Nothing is
//! ever fetched: references outside the document fail at load.

use jsonschema::{Draft, PatternOptions, Registry, Validator};
use serde_json::Value;

use crate::error::LoadError;
use crate::spec::SpecVersion;

/// The URN under which the document is registered.
const DOC_URI: &str = "urn:rampart:openapi:document";

/// Builds validators for schemas of one document.
pub struct SchemaCompiler {
    registry: Registry<'static>,
    draft: Draft,
}

impl SchemaCompiler {
    /// Registers `doc` (already translated to plain JSON Schema).
    pub fn new(doc: &Value, version: SpecVersion) -> Result<Self, LoadError> {
        let draft = match version {
            SpecVersion::V3_0 => Draft::Draft4,
            SpecVersion::V3_1 => Draft::Draft202012,
        };
        let registry = Registry::new()
            .draft(draft)
            .add(DOC_URI, doc.clone())
            .and_then(|b| b.prepare())
            .map_err(|e| LoadError::Schema {
                at: "#".into(),
                message: e.to_string(),
            })?;
        Ok(SchemaCompiler { registry, draft })
    }

    /// Compiles `schema` found at `at` (a pointer used in error messages).
    pub fn compile(&self, schema: &Value, at: &str) -> Result<Validator, LoadError> {
        let mut schema = schema.clone();
        rewrite_refs(&mut schema, 0);
        jsonschema::options()
            .with_draft(self.draft)
            .with_registry(&self.registry)
            .should_validate_formats(true)
            .should_ignore_unknown_formats(true)
            .with_pattern_options(PatternOptions::regex())
            .offline()
            .build(&schema)
            .map_err(|e| LoadError::Schema {
                at: at.to_string(),
                message: e.to_string(),
            })
    }
}

fn rewrite_refs(node: &mut Value, depth: usize) {
    if depth > 512 {
        return;
    }
    match node {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get_mut("$ref") {
                if r.starts_with('#') {
                    *r = format!("{DOC_URI}{r}");
                }
            }
            for (key, v) in map.iter_mut() {
                // Values under these keys are data, not schemas.
                if !matches!(
                    key.as_str(),
                    "enum" | "const" | "example" | "examples" | "default"
                ) {
                    rewrite_refs(v, depth + 1);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| rewrite_refs(v, depth + 1)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc() -> Value {
        json!({"openapi": "3.1.0", "components": {"schemas": {
            "Id": {"type": "string", "format": "uuid"},
            "Pet": {"type": "object", "required": ["id"], "properties": {"id": {"$ref": "#/components/schemas/Id"}}}
        }}})
    }

    #[test]
    fn refs_resolve_against_the_document() {
        let c = SchemaCompiler::new(&doc(), SpecVersion::V3_1).unwrap();
        let v = c
            .compile(&json!({"$ref": "#/components/schemas/Pet"}), "#/x")
            .unwrap();
        assert!(v.is_valid(&json!({"id": "9f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f"})));
        assert!(
            !v.is_valid(&json!({"id": "nope"})),
            "uuid format is asserted"
        );
        assert!(!v.is_valid(&json!({})));
    }

    #[test]
    fn missing_targets_fail_at_load() {
        let c = SchemaCompiler::new(&doc(), SpecVersion::V3_1).unwrap();
        let err = c
            .compile(&json!({"$ref": "#/components/schemas/Nope"}), "#/y")
            .unwrap_err();
        assert!(err.to_string().contains("#/y"));
    }

    #[test]
    fn patterns_use_the_linear_time_engine() {
        let c = SchemaCompiler::new(&doc(), SpecVersion::V3_0).unwrap();
        // A lookahead needs a backtracking engine: refused rather than run.
        assert!(c
            .compile(&json!({"type": "string", "pattern": "(?=a)a"}), "#/z")
            .is_err());
        let v = c
            .compile(&json!({"type": "string", "pattern": "^[a-z]+$"}), "#/z")
            .unwrap();
        assert!(v.is_valid(&json!("abc")));
        assert!(!v.is_valid(&json!("ab1")));
    }
}
