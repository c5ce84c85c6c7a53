//! Config shapes for data-exposure protection: response DLP per route.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::model::FilterMode;
use crate::units::Bytes;

/// `dlp`: find leaked secrets and personal data in responses, and log, mask
/// or block them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DlpPolicy {
    #[serde(default)]
    pub mode: FilterMode,
    /// Per-detector action overrides: `log`, `mask`, `block` or `off`
    /// (e.g. `{ email = "mask", phone = "off" }`). Unlisted detectors keep
    /// their default action.
    #[serde(default)]
    pub detectors: BTreeMap<String, String>,
    /// JSON-path rules forcing an action on selected fields whatever the
    /// detectors say: `{ "$.user.ssn" = "mask", "$.items[*].card" = "block" }`.
    #[serde(default)]
    pub json_paths: BTreeMap<String, String>,
    /// Media types inspected (exact, `text/*`, or `application/*+json`).
    pub content_types: Option<Vec<String>>,
    /// Response bytes held back for whole-body (JSON-aware) inspection.
    #[serde(default = "default_hold")]
    pub hold_limit: Bytes,
    /// Largest decompressed body inspected (gzip, br).
    #[serde(default = "default_decompressed")]
    pub max_decompressed: Bytes,
    /// The character that replaces masked letters and digits.
    #[serde(default = "default_mask_char")]
    pub mask_char: char,
}

fn default_hold() -> Bytes {
    Bytes(1 << 20)
}
fn default_decompressed() -> Bytes {
    Bytes(8 << 20)
}
fn default_mask_char() -> char {
    '*'
}
