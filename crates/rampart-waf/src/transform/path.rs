//! Path normalisation (`normalisePath`, `normalisePathWin`): collapses `//`,
//! removes `.` segments and resolves `..` against the preceding segment,
//! the way a web server would before mapping a URL to a file.
//!
//! Semantics (ModSecurity v3):
//! * an absolute path never climbs above `/` (`/../../etc` -> `/etc`);
//! * a relative path keeps the `..` it cannot resolve (`a/../../b` ->
//!   `../b`) and loses a leading `./` (`./foo` -> `foo`);
//! * a trailing slash is kept only if the input had one.
//!
//! One deliberate difference: ModSecurity turns a path that resolves to the
//! root without a trailing slash (`/foo/..`) into an empty string; we return
//! `/`, which is what the path means.

use std::borrow::Cow;

use super::output::Output;

/// `t:normalisePath` / `t:normalizePath`.
pub fn normalise_path(input: &[u8]) -> Cow<'_, [u8]> {
    normalise(input, false)
}

/// `t:normalisePathWin` / `t:normalizePathWin`: as `normalisePath`, after
/// turning every `\` into `/`.
pub fn normalise_path_win(input: &[u8]) -> Cow<'_, [u8]> {
    normalise(input, true)
}

fn normalise(input: &[u8], windows: bool) -> Cow<'_, [u8]> {
    let is_sep = |b: u8| b == b'/' || (windows && b == b'\\');
    // One segment and nothing to resolve: rendered as it came.
    if input.is_empty() || (!input.iter().any(|&b| is_sep(b)) && input != b"." && input != b"..") {
        return Cow::Borrowed(input);
    }
    let absolute = is_sep(input[0]);
    let trailing = is_sep(input[input.len() - 1]);

    let mut segments: Vec<&[u8]> = Vec::new();
    for segment in input.split(|&b| is_sep(b)) {
        match segment {
            b"" | b"." => {}
            b".." => match segments.last() {
                Some(&last) if last != b".." => {
                    segments.pop();
                }
                // Relative paths keep what they cannot resolve; absolute
                // ones simply stop at the root.
                _ if !absolute => segments.push(segment),
                _ => {}
            },
            _ => segments.push(segment),
        }
    }
    render(input, absolute, trailing, &segments)
}

fn render<'a>(
    input: &'a [u8],
    absolute: bool,
    trailing: bool,
    segments: &[&[u8]],
) -> Cow<'a, [u8]> {
    let mut out = Output::new(input);
    if absolute {
        out.push(b'/');
    }
    for (k, segment) in segments.iter().enumerate() {
        if k > 0 {
            out.push(b'/');
        }
        out.extend(segment);
    }
    if trailing && !segments.is_empty() {
        out.push(b'/');
    }
    out.finish()
}
