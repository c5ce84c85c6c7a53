//! The go-ftw test format (CRS `tests/regression/tests/<FILE>/<id>.yaml`)
//! and the overrides file format, as serde structures. Fields rampart does
//! not use are ignored; loosely typed ones (header values, ids) accept
//! numbers or strings.

use serde::Deserialize;
use serde_yaml::Value;

#[derive(Debug, Deserialize)]
pub struct TestFile {
    #[serde(default)]
    pub rule_id: u64,
    #[serde(default)]
    pub tests: Vec<TestCase>,
}

#[derive(Debug, Deserialize)]
pub struct TestCase {
    pub test_id: u32,
    #[serde(default)]
    pub desc: Option<String>,
    #[serde(default)]
    pub stages: Vec<Stage>,
}

#[derive(Debug, Deserialize)]
pub struct Stage {
    #[serde(default)]
    pub input: Input,
    #[serde(default)]
    pub output: Output,
}

#[derive(Debug, Default, Deserialize)]
pub struct Input {
    pub dest_addr: Option<String>,
    pub port: Option<u16>,
    pub method: Option<String>,
    pub uri: Option<String>,
    pub version: Option<String>,
    pub protocol: Option<String>,
    /// An ordered mapping: header order matters to some rules.
    pub headers: Option<serde_yaml::Mapping>,
    pub data: Option<Value>,
    pub encoded_request: Option<String>,
    pub autocomplete_headers: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Output {
    pub status: Option<Value>,
    pub log: Option<LogExpect>,
    pub log_contains: Option<String>,
    pub no_log_contains: Option<String>,
    pub expect_error: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
pub struct LogExpect {
    #[serde(default)]
    pub expect_ids: Vec<u64>,
    #[serde(default)]
    pub no_expect_ids: Vec<u64>,
    pub match_regex: Option<String>,
    pub no_match_regex: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct OverridesFile {
    #[serde(default)]
    pub test_overrides: Vec<TestOverride>,
}

#[derive(Debug, Deserialize)]
pub struct TestOverride {
    pub rule_id: u64,
    #[serde(default)]
    pub test_ids: Vec<u32>,
    #[serde(default)]
    pub reason: String,
}

/// A scalar YAML value as text (`Content-Length: 0` is a number in YAML).
pub fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => String::new(),
        other => serde_yaml::to_string(other).unwrap_or_default(),
    }
}
