//! Loading: reads configuration files, drives the lexer and the directive
//! parser, and expands `Include` in place.
//!
//! `Include` paths are resolved relative to the directory of the file that
//! contains the `Include` (absolute paths are used as is) and may be glob
//! patterns. A pattern matching nothing is an error, as is a file that
//! (directly or indirectly) includes itself.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::ast::Directive;
use super::directives::{parse_directive, Args};
use super::error::{AtError, ErrorKind, Location, ParseError};
use super::glob;
use super::lexer::{logical_lines, tokenize, Token};

/// Parses a configuration file and everything it includes.
pub fn parse_file(path: impl AsRef<Path>) -> Result<Vec<Directive>, ParseError> {
    let mut loader = Loader::default();
    loader.load_file(path.as_ref(), None)?;
    Ok(loader.directives)
}

/// Parses configuration text. `origin` names it in locations and errors,
/// and relative `Include`s are resolved against its directory.
pub fn parse_str(text: &str, origin: impl AsRef<Path>) -> Result<Vec<Directive>, ParseError> {
    let origin = origin.as_ref();
    let mut loader = Loader::default();
    loader.stack.extend(fs::canonicalize(origin).ok());
    loader.load_text(text, Arc::from(origin))?;
    Ok(loader.directives)
}

#[derive(Default)]
struct Loader {
    directives: Vec<Directive>,
    /// Canonical paths of the files being loaded, outermost first.
    stack: Vec<PathBuf>,
}

impl Loader {
    /// Loads `path`; `from` is the `Include` that asked for it, if any.
    fn load_file(&mut self, path: &Path, from: Option<&Location>) -> Result<(), ParseError> {
        let blame = |kind: ErrorKind| match from {
            Some(location) => ParseError {
                location: location.clone(),
                kind,
            },
            None => ParseError {
                location: Location {
                    file: Arc::from(path),
                    line: 0,
                },
                kind,
            },
        };
        let canonical = fs::canonicalize(path).map_err(|e| blame(io_error(path, &e)))?;
        if let Some(pos) = self.stack.iter().position(|p| *p == canonical) {
            let mut chain: Vec<String> = self.stack[pos..]
                .iter()
                .map(|p| p.display().to_string())
                .collect();
            chain.push(canonical.display().to_string());
            return Err(blame(ErrorKind::IncludeCycle(chain.join(" -> "))));
        }
        let bytes = fs::read(path).map_err(|e| blame(io_error(path, &e)))?;
        let text = String::from_utf8(bytes).map_err(|e| not_utf8(path, &e))?;
        self.stack.push(canonical);
        let result = self.load_text(&text, Arc::from(path));
        self.stack.pop();
        result
    }

    fn load_text(&mut self, text: &str, file: Arc<Path>) -> Result<(), ParseError> {
        for line in logical_lines(text) {
            let locate = |e: AtError| ParseError {
                location: Location {
                    file: file.clone(),
                    line: line.line_at(e.offset),
                },
                kind: e.kind,
            };
            let tokens = tokenize(&line.text).map_err(locate)?;
            let Some((name, args)) = tokens.split_first() else {
                continue;
            };
            let location = Location {
                file: file.clone(),
                line: line.line_at(name.offset),
            };
            if name.text.eq_ignore_ascii_case("Include") {
                self.include(args, &location)?;
                continue;
            }
            let args = Args {
                name: &name.text,
                tokens: args,
            };
            let kind = parse_directive(&args).map_err(|e| {
                // Directive-level errors (offset 0) belong to the name's line.
                let offset = if e.offset == 0 { name.offset } else { e.offset };
                locate(AtError::new(offset, e.kind))
            })?;
            self.directives.push(Directive { location, kind });
        }
        Ok(())
    }

    fn include(&mut self, args: &[Token], location: &Location) -> Result<(), ParseError> {
        let fail = |kind| ParseError {
            location: location.clone(),
            kind,
        };
        let [pattern] = args else {
            return Err(fail(ErrorKind::ArgumentCount {
                directive: "Include".into(),
                expected: "one path or glob pattern",
                got: args.len(),
            }));
        };
        let base = location.file.parent().unwrap_or(Path::new(""));
        let full = base.join(&pattern.text);
        let files = if glob::has_wildcards(&pattern.text) {
            let found = glob::expand(&full).map_err(|e| fail(io_error(&full, &e)))?;
            if found.is_empty() {
                return Err(fail(ErrorKind::IncludeNoMatch(pattern.text.clone())));
            }
            found
        } else {
            vec![full]
        };
        for file in files {
            self.load_file(&file, Some(location))?;
        }
        Ok(())
    }
}

fn io_error(path: &Path, error: &io::Error) -> ErrorKind {
    ErrorKind::Io {
        path: path.display().to_string(),
        message: error.to_string(),
    }
}

/// Rule files are text; a stray non-UTF-8 byte is reported with its line
/// rather than silently replaced (it could sit inside a regex).
fn not_utf8(path: &Path, error: &std::string::FromUtf8Error) -> ParseError {
    let valid = error.utf8_error().valid_up_to();
    let line = error.as_bytes()[..valid]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1;
    ParseError {
        location: Location {
            file: Arc::from(path),
            line: u32::try_from(line).unwrap_or(u32::MAX),
        },
        kind: ErrorKind::Io {
            path: path.display().to_string(),
            message: "not valid UTF-8".into(),
        },
    }
}
