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

mod byteset;
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

pub use byteset::{presence, ByteSet};
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
    /// Bytes outside which the transformation is the identity (see
    /// [`ByteSet`]); `None` when it may change any value.
    trigger: Option<ByteSet>,
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

    /// The bytes without which the transformation returns its input
    /// unchanged, if there is such a set.
    pub fn trigger(&self) -> Option<ByteSet> {
        self.trigger
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

/// A transformation that may change any value.
const fn entry(name: &'static str, func: TransformFn) -> Transformation {
    Transformation {
        name,
        func,
        trigger: None,
    }
}

/// A transformation that leaves every value without a `trigger` byte
/// unchanged (checked by `transform::tests::triggers_are_exact`).
const fn only(name: &'static str, func: TransformFn, trigger: ByteSet) -> Transformation {
    Transformation {
        name,
        func,
        trigger: Some(trigger),
    }
}

use byteset::{C_SPACE, HIGH, LOWER, UPPER};

/// Comment markers all start with one of these.
const COMMENT_STARTS: ByteSet = ByteSet::of(b"/<-#");

/// Every transformation ModSecurity v3 knows, including the British and
/// American spellings of the path normalisers.
static REGISTRY: &[Transformation] = &[
    entry("base64Decode", base64_decode),
    entry("base64DecodeExt", base64_decode_ext),
    entry("base64Encode", base64_encode),
    only(
        "cmdLine",
        cmd_line,
        UPPER.union(ByteSet::of(b"\"'\\^ ,;\t\r\n")),
    ),
    only("compressWhitespace", compress_whitespace, C_SPACE),
    only("cssDecode", css_decode, ByteSet::of(b"\\")),
    only("escapeSeqDecode", escape_seq_decode, ByteSet::of(b"\\")),
    entry("hexDecode", hex_decode),
    entry("hexEncode", hex_encode),
    only("htmlEntityDecode", html_entity_decode, ByteSet::of(b"&")),
    only("jsDecode", js_decode, ByteSet::of(b"\\")),
    entry("length", length),
    only("lowercase", lowercase, UPPER),
    entry("md5", md5),
    only("none", none, ByteSet::EMPTY),
    only("normalisePath", normalise_path, ByteSet::of(b"/.")),
    only("normalizePath", normalise_path, ByteSet::of(b"/.")),
    only("normalisePathWin", normalise_path_win, ByteSet::of(b"/\\.")),
    only("normalizePathWin", normalise_path_win, ByteSet::of(b"/\\.")),
    entry("parityEven7bit", parity_even_7bit),
    entry("parityOdd7bit", parity_odd_7bit),
    only("parityZero7bit", parity_zero_7bit, HIGH),
    only("removeComments", remove_comments, COMMENT_STARTS),
    only(
        "removeCommentsChar",
        remove_comments_char,
        COMMENT_STARTS.with(b'*'),
    ),
    only("removeNulls", remove_nulls, ByteSet::of(&[0])),
    only("removeWhitespace", remove_whitespace, C_SPACE.with(0xa0)),
    only("replaceComments", replace_comments, ByteSet::of(b"/")),
    only("replaceNulls", replace_nulls, ByteSet::of(&[0])),
    entry("sha1", sha1),
    only("sqlHexDecode", sql_hex_decode, ByteSet::of(b"xX")),
    only("trim", trim, C_SPACE),
    only("trimLeft", trim_left, C_SPACE),
    only("trimRight", trim_right, C_SPACE),
    only("uppercase", uppercase, LOWER),
    only("urlDecode", url_decode, ByteSet::of(b"%+")),
    only("urlDecodeUni", url_decode_uni, ByteSet::of(b"%+")),
    entry("urlEncode", url_encode),
    only("utf8toUnicode", utf8_to_unicode, HIGH),
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
