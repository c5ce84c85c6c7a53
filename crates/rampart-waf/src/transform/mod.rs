//! Transformation functions (`t:xxx`), with ModSecurity v3 semantics.
//!
//! A transformation normalises a value before an operator inspects it
//! (`t:urlDecodeUni,t:lowercase` turns `%53ELECT` into `select`). Every
//! function maps `&[u8]` to `Cow<[u8]>` and allocates only when its output
//! differs from its input. [`lookup`] resolves a name, case-insensitively,
//! to a [`Transformation`] through one registry table.
//!
//! ```
//! use std::borrow::Cow;
//! use rampart_waf::transform::{apply_chain, lookup};
//!
//! let chain = [lookup("urlDecodeUni").unwrap(), lookup("LOWERCASE").unwrap()];
//! assert_eq!(apply_chain(&chain, b"%53ELECT").as_ref(), b"select");
//! assert!(matches!(apply_chain(&chain, b"plain"), Cow::Borrowed(_)));
//! ```
//!
//! Not applied here: `SecUnicodeMapFile` code-page mapping for `%uXXXX`
//! (ModSecurity only uses it when a map is configured; without one it falls
//! back to the low byte, which is what `urlDecodeUni` does).

mod codec;
mod decode;
mod output;
mod path;
mod text;
mod web;

#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::fmt;
use std::hash::{Hash, Hasher};

pub use codec::{base64_encode, hex_encode, length, md5, sha1, url_encode};
pub use decode::{
    base64_decode, base64_decode_ext, escape_seq_decode, hex_decode, sql_hex_decode, url_decode,
    url_decode_uni, utf8_to_unicode,
};
pub use path::{normalise_path, normalise_path_win};
pub use text::{
    cmd_line, compress_whitespace, lowercase, none, parity_even_7bit, parity_odd_7bit,
    parity_zero_7bit, remove_comments, remove_comments_char, remove_nulls, remove_whitespace,
    replace_comments, replace_nulls, trim, trim_left, trim_right, uppercase,
};
pub use web::{css_decode, html_entity_decode, js_decode};

/// Signature shared by every transformation.
pub type TransformFn = for<'a> fn(&'a [u8]) -> Cow<'a, [u8]>;

/// A named transformation from the registry.
#[derive(Clone, Copy)]
pub struct Transformation {
    name: &'static str,
    func: TransformFn,
}

impl Transformation {
    /// The canonical spelling, e.g. `urlDecodeUni`.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The function itself, for callers that cache it.
    pub fn func(&self) -> TransformFn {
        self.func
    }

    pub fn apply<'a>(&self, input: &'a [u8]) -> Cow<'a, [u8]> {
        (self.func)(input)
    }

    /// `t:none` clears the transformations inherited from
    /// `SecDefaultAction` (and earlier `t:` actions) instead of transforming.
    pub fn is_none(&self) -> bool {
        self.name == "none"
    }
}

// Identity is the name: comparing function pointers is not reliable.
impl PartialEq for Transformation {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for Transformation {}

impl Hash for Transformation {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl fmt::Debug for Transformation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t:{}", self.name)
    }
}

const fn entry(name: &'static str, func: TransformFn) -> Transformation {
    Transformation { name, func }
}

/// Every transformation ModSecurity v3 knows, including the British and
/// American spellings of the path normalisers.
static REGISTRY: &[Transformation] = &[
    entry("base64Decode", base64_decode),
    entry("base64DecodeExt", base64_decode_ext),
    entry("base64Encode", base64_encode),
    entry("cmdLine", cmd_line),
    entry("compressWhitespace", compress_whitespace),
    entry("cssDecode", css_decode),
    entry("escapeSeqDecode", escape_seq_decode),
    entry("hexDecode", hex_decode),
    entry("hexEncode", hex_encode),
    entry("htmlEntityDecode", html_entity_decode),
    entry("jsDecode", js_decode),
    entry("length", length),
    entry("lowercase", lowercase),
    entry("md5", md5),
    entry("none", none),
    entry("normalisePath", normalise_path),
    entry("normalizePath", normalise_path),
    entry("normalisePathWin", normalise_path_win),
    entry("normalizePathWin", normalise_path_win),
    entry("parityEven7bit", parity_even_7bit),
    entry("parityOdd7bit", parity_odd_7bit),
    entry("parityZero7bit", parity_zero_7bit),
    entry("removeComments", remove_comments),
    entry("removeCommentsChar", remove_comments_char),
    entry("removeNulls", remove_nulls),
    entry("removeWhitespace", remove_whitespace),
    entry("replaceComments", replace_comments),
    entry("replaceNulls", replace_nulls),
    entry("sha1", sha1),
    entry("sqlHexDecode", sql_hex_decode),
    entry("trim", trim),
    entry("trimLeft", trim_left),
    entry("trimRight", trim_right),
    entry("uppercase", uppercase),
    entry("urlDecode", url_decode),
    entry("urlDecodeUni", url_decode_uni),
    entry("urlEncode", url_encode),
    entry("utf8toUnicode", utf8_to_unicode),
];

/// Finds a transformation by name, ignoring ASCII case (`t:base64decode`
/// and `t:base64Decode` are the same, as in ModSecurity).
pub fn lookup(name: &str) -> Option<&'static Transformation> {
    REGISTRY.iter().find(|t| t.name.eq_ignore_ascii_case(name))
}

/// All registered transformations.
pub fn all() -> &'static [Transformation] {
    REGISTRY
}

/// Applies `chain` left to right, allocating only when something changes.
/// `t:none` entries are identities here; resolving what they reset is the
/// rule compiler's job.
pub fn apply_chain<'a>(chain: &[&Transformation], input: &'a [u8]) -> Cow<'a, [u8]> {
    let mut current = Cow::Borrowed(input);
    for t in chain {
        current = match current {
            Cow::Borrowed(slice) => t.apply(slice),
            Cow::Owned(buf) => {
                let replaced = match t.apply(&buf) {
                    Cow::Borrowed(same) if same.len() == buf.len() => None,
                    Cow::Borrowed(part) => Some(part.to_vec()),
                    Cow::Owned(new) => Some(new),
                };
                Cow::Owned(replaced.unwrap_or(buf))
            }
        };
    }
    current
}
