//! libinjection's own CI bar, measured over its sample data in `shared/`.
//!
//! Reads `shared/corpora/libinjection/data/` the way libinjection's
//! `src/reader.c` does: each line has trailing spaces, tabs, CR and LF trimmed;
//! empty lines and lines starting with `#` are skipped; the rest is URL-decoded
//! (`+` becomes a space, `%XX` with two hex digits becomes that byte, any other
//! `%` stays literal). The bar (`src/test-samples-*.sh`): over all `sqli-*`
//! files at most 18 lines not flagged as SQLi; over all `xss*` files at most 18
//! not flagged as XSS; over `false_positives.txt` at most 21 flagged as SQLi.
//! Run with `--nocapture` to see the counts and the offending lines.

use std::path::PathBuf;

const SQLI_MAX_MISSES: usize = 18;
const XSS_MAX_MISSES: usize = 18;
const BENIGN_MAX_FLAGGED: usize = 21;

/// reader.c reads with `fgets` into an 8 KB buffer; a longer line would be
/// split into several inputs. None of the corpus's lines is that long, and
/// `samples` asserts it, so reading whole lines is the same thing.
const READER_LINE_MAX: usize = 8191;

struct Sample {
    file: String,
    line: usize,
    input: Vec<u8>,
}

impl Sample {
    fn show(&self) -> String {
        format!(
            "{}:{}\t{}",
            self.file,
            self.line,
            String::from_utf8_lossy(&self.input).escape_debug()
        )
    }
}

fn data_dir() -> PathBuf {
    PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR")
            .expect("run by cargo, which sets CARGO_MANIFEST_DIR"),
    )
    .join("../../../shared/corpora/libinjection/data")
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// URL-decoding as libinjection's test reader does it.
fn url_decode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' if i + 2 < s.len() => match (hex_value(s[i + 1]), hex_value(s[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            other => {
                out.push(other);
                i += 1;
            }
        }
    }
    out
}

/// Every sample line of the data files whose name satisfies `select`, in file
/// name order.
fn samples(select: impl Fn(&str) -> bool) -> Vec<Sample> {
    let dir = data_dir();
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("libinjection corpus not found at {}: {e}", dir.display()));
    let mut names: Vec<String> = entries
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| select(n))
        .collect();
    names.sort();
    let mut out = Vec::new();
    for name in names {
        let raw = std::fs::read(dir.join(&name)).unwrap();
        for (idx, line) in raw.split(|&b| b == b'\n').enumerate() {
            assert!(
                line.len() < READER_LINE_MAX,
                "{name}:{} is longer than reader.c's line buffer",
                idx + 1
            );
            let mut line = line;
            while let [rest @ .., b' ' | b'\t' | b'\r' | b'\n'] = line {
                line = rest;
            }
            if line.is_empty() || line[0] == b'#' {
                continue;
            }
            out.push(Sample {
                file: name.clone(),
                line: idx + 1,
                input: url_decode(line),
            });
        }
    }
    out
}

fn sqli_samples() -> Vec<Sample> {
    samples(|n| n.starts_with("sqli-"))
}

fn xss_samples() -> Vec<Sample> {
    samples(|n| n.starts_with("xss"))
}

fn benign_samples() -> Vec<Sample> {
    samples(|n| n == "false_positives.txt")
}

/// SQLi samples `detect_sqli` does not flag, after printing them and the count.
fn sqli_misses() -> usize {
    let all = sqli_samples();
    assert_eq!(all.len(), 17_149, "sqli-* sample count changed");
    let missed: Vec<&Sample> = all
        .iter()
        .filter(|s| rampart_libinjection::detect_sqli(&s.input).is_none())
        .collect();
    for s in &missed {
        println!("SQLi not flagged: {}", s.show());
    }
    println!(
        "SQLi mode over sqli-*: {} of {} lines not flagged (bar: at most {SQLI_MAX_MISSES})",
        missed.len(),
        all.len()
    );
    missed.len()
}

#[test]
fn url_decode_matches_libinjection_reader() {
    assert_eq!(url_decode(b"a+b"), b"a b");
    assert_eq!(url_decode(b"%41%4a%4A"), b"AJJ");
    assert_eq!(url_decode(b"%00x"), b"\0x");
    assert_eq!(url_decode(b"%zz%4"), b"%zz%4");
    assert_eq!(url_decode(b"%%41"), b"%A");
    assert_eq!(url_decode(b"100%"), b"100%");
    assert_eq!(url_decode(b"%2b+"), b"+ ");
}

#[test]
fn sqli_corpus_meets_libinjection_bar() {
    let misses = sqli_misses();
    assert!(
        misses <= SQLI_MAX_MISSES,
        "{misses} SQLi lines not flagged, bar is {SQLI_MAX_MISSES}"
    );
}

#[test]
fn xss_corpus_meets_libinjection_bar() {
    let all = xss_samples();
    assert_eq!(all.len(), 1_645, "xss* sample count changed");
    let missed: Vec<&Sample> = all
        .iter()
        .filter(|s| !rampart_libinjection::detect_xss(&s.input))
        .collect();
    for s in &missed {
        println!("XSS not flagged: {}", s.show());
    }
    println!(
        "XSS mode over xss*: {} of {} lines not flagged (bar: at most {XSS_MAX_MISSES})",
        missed.len(),
        all.len()
    );
    assert!(
        missed.len() <= XSS_MAX_MISSES,
        "{} XSS lines not flagged, bar is {XSS_MAX_MISSES}",
        missed.len()
    );
}

#[test]
fn false_positives_meet_libinjection_bar() {
    let all = benign_samples();
    assert_eq!(all.len(), 421, "false_positives.txt sample count changed");
    let flagged: Vec<(&Sample, rampart_libinjection::Fingerprint)> = all
        .iter()
        .filter_map(|s| rampart_libinjection::detect_sqli(&s.input).map(|fp| (s, fp)))
        .collect();
    for (s, fp) in &flagged {
        println!("benign flagged as SQLi ({fp}): {}", s.show());
    }
    println!(
        "SQLi mode over false_positives.txt: {} of {} lines flagged (bar: at most {BENIGN_MAX_FLAGGED})",
        flagged.len(),
        all.len()
    );
    assert!(
        flagged.len() <= BENIGN_MAX_FLAGGED,
        "{} benign lines flagged, bar is {BENIGN_MAX_FLAGGED}",
        flagged.len()
    );
}

/// Lower-cases `input` and turns every run of whitespace into one space, so
/// phrase checks see `LOCK\tIN  SHARE` as `lock in share`.
fn normalised(input: &[u8]) -> String {
    let text = String::from_utf8_lossy(input).to_ascii_lowercase();
    text.split_ascii_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether `libinjectionrs` 0.1.1's two known bugs explain a different verdict
/// or fingerprint on `input`: a non-upper-case `INTO OUTFILE|DUMPFILE`, or a
/// keyword phrase of three or more words (which the port cannot build).
fn explained_by_port_bugs(input: &[u8], long_phrases: &[String]) -> bool {
    let text = normalised(input);
    let raw = String::from_utf8_lossy(input);
    let lower_into =
        (text.contains("into outfile") || text.contains("into dumpfile")) && !raw.contains("INTO");
    lower_into || long_phrases.iter().any(|p| text.contains(p.as_str()))
}

/// Differential test against the `libinjectionrs` port over every corpus
/// line (SQLi, XSS and benign files alike): rampart's `detect_sqli` never
/// loses a detection the port makes, never flags a benign line the port does
/// not, and every line where verdict or fingerprint differ is one the port's
/// two known bugs explain (`tests/port_bug_fixes.rs`). `detect_xss` is the
/// port's verdict unchanged.
#[test]
fn sqli_differs_from_libinjectionrs_only_where_its_bugs_are_fixed() {
    use libinjectionrs::sqli::sqli_data::SQL_KEYWORDS;
    let long_phrases: Vec<String> = SQL_KEYWORDS
        .iter()
        .filter(|k| k.word.matches(' ').count() >= 2)
        .map(|k| k.word.to_ascii_lowercase())
        .collect();
    assert!(long_phrases.iter().any(|p| p == "lock in share mode"));

    let all = samples(|n| n.ends_with(".txt"));
    assert!(all.len() > 19_000, "only {} corpus lines found", all.len());
    let (mut gained, mut refingerprinted) = (0, 0);
    for s in &all {
        let port = libinjectionrs::detect_sqli(&s.input);
        let ours = rampart_libinjection::detect_sqli(&s.input);
        match (
            ours,
            port.fingerprint.as_ref().filter(|_| port.is_injection()),
        ) {
            (None, Some(fp)) => panic!("lost a detection ({fp}): {}", s.show()),
            (Some(fp), None) => {
                println!("newly flagged ({fp}): {}", s.show());
                assert_ne!(s.file, "false_positives.txt", "new false positive");
                assert!(
                    explained_by_port_bugs(&s.input, &long_phrases),
                    "{}",
                    s.show()
                );
                gained += 1;
            }
            (Some(ours), Some(theirs)) if ours.as_str() != theirs.as_str() => {
                println!("fingerprint {theirs} -> {ours}: {}", s.show());
                assert!(
                    explained_by_port_bugs(&s.input, &long_phrases),
                    "{}",
                    s.show()
                );
                refingerprinted += 1;
            }
            _ => {}
        }
        assert_eq!(
            rampart_libinjection::detect_xss(&s.input),
            libinjectionrs::detect_xss(&s.input).is_injection(),
            "{}",
            s.show()
        );
    }
    println!("{gained} lines newly flagged, {refingerprinted} with a different fingerprint");
    // Exactly the 18 sqli-* lines the bar needed (see tests/port_bug_fixes.rs);
    // no line flagged by both gets a different fingerprint.
    assert_eq!(gained, 18, "newly flagged lines");
    assert_eq!(refingerprinted, 0, "lines with a different fingerprint");
}
