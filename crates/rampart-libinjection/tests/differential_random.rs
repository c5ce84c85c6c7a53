//! Differential test against the `libinjectionrs` port on random SQL-ish
//! inputs, to exercise folding paths the corpus may not reach.
//!
//! Inputs are 1 to 9 fragments drawn from SQL keywords, phrase words,
//! operators, quotes, comments and punctuation, from a fixed-seed generator so
//! failures reproduce. Where rampart and the port disagree (verdict or
//! fingerprint), the input must contain something one of the deliberate
//! differences explains: the port's two bugs (a non-upper-case `INTO`, a word
//! of a three-word keyword phrase), or the one place where rampart follows C
//! rather than the port on purpose (C applies the PHP back-tick rule after
//! re-appending a trailing comment, the port before).

const FRAGMENTS: &[&str] = &[
    "1",
    "-1",
    "0x1f",
    "1.5e3",
    "'",
    "\"",
    "'a'",
    "\"b\"",
    "x",
    "users",
    "@v",
    "@@version",
    " ",
    "  ",
    "\t",
    "union",
    "UNION",
    "select",
    "SELECT",
    "from",
    "where",
    "and",
    "or",
    "AND",
    "not",
    "NOT",
    "like",
    "LIKE",
    "in",
    "IN",
    "boolean",
    "mode",
    "lock",
    "share",
    "into",
    "INTO",
    "outfile",
    "dumpfile",
    "if",
    "user",
    "password",
    "collate",
    "utf8_bin",
    "int",
    "char",
    "(",
    ")",
    "((",
    "))",
    "{",
    "}",
    ",",
    ";",
    ".",
    "=",
    "+",
    "-",
    "!",
    "~",
    "!!",
    "*",
    "%",
    "::",
    "||",
    "&&",
    "<",
    ">=",
    "\\",
    "--",
    "-- ",
    "#",
    "/*",
    "*/",
    "/*!",
    "`",
    "``",
    "sleep(5)",
    "concat(",
    "sp_password",
    "SP_PASSWORD",
];

/// Small fixed-seed xorshift generator: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

fn explained(input: &str) -> bool {
    let lower = input.to_ascii_lowercase();
    let non_upper_into = lower.contains("into") && !input.contains("INTO");
    let phrase_word = ["lock", "share", "boolean", "mode"]
        .iter()
        .any(|w| lower.contains(w));
    non_upper_into || phrase_word || input.contains('`')
}

#[test]
fn random_fragment_sequences_agree_with_the_port_except_where_explained() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut flagged, mut differ) = (0, 0);
    for _ in 0..200_000 {
        let mut input = String::new();
        for _ in 0..=rng.below(9) {
            input.push_str(FRAGMENTS[rng.below(FRAGMENTS.len())]);
            if rng.below(3) != 0 {
                input.push(' ');
            }
        }
        let ours = rampart_libinjection::detect_sqli(input.as_bytes());
        let port = libinjectionrs::detect_sqli(input.as_bytes());
        let theirs = port.fingerprint.as_ref().filter(|_| port.is_injection());
        flagged += usize::from(ours.is_some());
        let same = match (&ours, theirs) {
            (None, None) => true,
            (Some(a), Some(b)) => a.as_str() == b.as_str(),
            _ => false,
        };
        if !same {
            differ += 1;
            if differ <= 40 {
                println!("differs: {input:?}: ours {ours:?}, port {theirs:?}");
            }
            assert!(
                explained(&input),
                "unexplained difference on {input:?}: ours {ours:?}, port {theirs:?}"
            );
        }
    }
    println!("{flagged} of 200000 random inputs flagged, {differ} differ from the port");
    // The generator must actually produce both kinds of input.
    assert!(flagged > 10_000 && flagged < 190_000, "{flagged} flagged");
}
