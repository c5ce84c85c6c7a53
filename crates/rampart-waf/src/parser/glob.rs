//! Minimal shell-style globbing for `Include` patterns (`*`, `?`, `[a-z]`,
//! `[!x]`), enough for `Include rules/*.conf`. Wildcards may appear in any
//! path component; matches are returned sorted, like Apache does, so rule
//! order is deterministic. As in shells, wildcards do not match a leading
//! `.` (editor backups and dotfiles stay out of the rule set).

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

/// True if `pattern` contains glob metacharacters.
pub(crate) fn has_wildcards(pattern: &str) -> bool {
    pattern.contains(['*', '?', '['])
}

/// Expands `pattern` into the existing files it names, sorted.
pub(crate) fn expand(pattern: &Path) -> io::Result<Vec<PathBuf>> {
    let mut candidates = vec![PathBuf::new()];
    for component in pattern.components() {
        let part = component.as_os_str();
        let wild =
            matches!(component, Component::Normal(_)) && has_wildcards(&part.to_string_lossy());
        candidates = if wild {
            expand_component(&candidates, part)?
        } else {
            candidates.into_iter().map(|c| c.join(part)).collect()
        };
    }
    let mut files: Vec<PathBuf> = candidates.into_iter().filter(|p| p.is_file()).collect();
    files.sort();
    Ok(files)
}

/// Replaces each directory in `dirs` by its entries matching `pattern`.
fn expand_component(dirs: &[PathBuf], pattern: &OsStr) -> io::Result<Vec<PathBuf>> {
    let pattern = pattern.to_string_lossy();
    let mut out = Vec::new();
    for dir in dirs {
        let listing = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        let Ok(entries) = fs::read_dir(listing) else {
            continue;
        };
        for entry in entries {
            let name = entry?.file_name();
            if matches(pattern.as_bytes(), name.to_string_lossy().as_bytes()) {
                out.push(dir.join(name));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Matches one file name against one glob component.
pub(crate) fn matches(pattern: &[u8], name: &[u8]) -> bool {
    if name.first() == Some(&b'.') && pattern.first() != Some(&b'.') {
        return false;
    }
    match_from(pattern, name)
}

fn match_from(pattern: &[u8], name: &[u8]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => (0..=name.len()).any(|skip| match_from(rest, &name[skip..])),
        Some((b'?', rest)) => !name.is_empty() && match_from(rest, &name[1..]),
        Some((b'[', rest)) => match (name.split_first(), class(rest)) {
            (Some((&c, name_rest)), Some((set, after))) => {
                set.contains(c) && match_from(after, name_rest)
            }
            // An unterminated `[` is an ordinary character.
            (Some((&c, name_rest)), None) => c == b'[' && match_from(rest, name_rest),
            (None, _) => false,
        },
        Some((&p, rest)) => name.first() == Some(&p) && match_from(rest, &name[1..]),
    }
}

/// A parsed `[...]` character class.
struct Class<'a> {
    negated: bool,
    body: &'a [u8],
}

impl Class<'_> {
    fn contains(&self, c: u8) -> bool {
        let mut hit = false;
        let mut i = 0;
        while i < self.body.len() {
            let is_range = i + 2 < self.body.len() && self.body[i + 1] == b'-';
            if is_range {
                hit |= (self.body[i]..=self.body[i + 2]).contains(&c);
                i += 3;
            } else {
                hit |= self.body[i] == c;
                i += 1;
            }
        }
        hit != self.negated
    }
}

/// Parses the class after `[`; returns it and the pattern after `]`.
fn class(pattern: &[u8]) -> Option<(Class<'_>, &[u8])> {
    let (negated, body_start) = match pattern.first() {
        Some(b'!' | b'^') => (true, 1),
        _ => (false, 0),
    };
    // A `]` right after the opening (or the negation) is a literal.
    let close = pattern[body_start..]
        .iter()
        .skip(1)
        .position(|&b| b == b']')
        .map(|p| body_start + 1 + p)?;
    let class = Class {
        negated,
        body: &pattern[body_start..close],
    };
    Some((class, &pattern[close + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matching() {
        assert!(matches(b"*.conf", b"REQUEST-901-INITIALIZATION.conf"));
        assert!(!matches(b"*.conf", b"crs-setup.conf.example"));
        assert!(matches(b"*.conf*", b"crs-setup.conf.example"));
        assert!(matches(b"REQUEST-9?1-*", b"REQUEST-901-X"));
        assert!(matches(b"[A-R]*", b"REQUEST"));
        assert!(!matches(b"[!A-R]*", b"REQUEST"));
        assert!(matches(b"[]]x", b"]x"));
        assert!(matches(b"a[b", b"a[b"));
        assert!(!matches(b"*", b".hidden"));
        assert!(matches(b".*", b".hidden"));
        assert!(matches(b"*", b""));
        assert!(!matches(b"?", b""));
    }

    #[test]
    fn expansion_is_sorted_and_files_only() {
        let dir = std::env::temp_dir().join(format!("rampart-glob-{}", std::process::id()));
        fs::create_dir_all(dir.join("sub.conf")).unwrap();
        for name in ["b.conf", "a.conf", "c.txt", ".x.conf"] {
            fs::write(dir.join(name), "").unwrap();
        }
        let found = expand(&dir.join("*.conf")).unwrap();
        let names: Vec<_> = found
            .iter()
            .map(|p| p.file_name().unwrap().to_owned())
            .collect();
        assert_eq!(names, ["a.conf", "b.conf"]);
        assert!(expand(&dir.join("nothing-*")).unwrap().is_empty());
        fs::remove_dir_all(&dir).unwrap();
    }
}
