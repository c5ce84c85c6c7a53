//! The `@rx` prefilters never change a result.
//!
//! 1. Rule level: for every CRS link that has a prefilter and every value of
//!    the CRS regression corpus (URI, each header value, body), after the
//!    link's transformations: when the prefilter rules the value out, the
//!    regex (or `@pm`) indeed does not match it; for `@pm` the prefilter
//!    is exact.
//!    `multiMatch` links are checked on every intermediate value, and the
//!    shortened "bits chain" of every chain gives the same verdicts.
//! 2. Transaction level: every corpus request gives the same matched rules
//!    (ids, messages, logdata) and the same intervention with the shortcuts
//!    (prefilters, selector literals, transformation triggers, the value
//!    memo) on and off, and again when run a second time with the memo on
//!    (every short value then found in it).

#[path = "../benches/common/corpus.rs"]
mod corpus;

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

use rampart_waf::compile::{CompiledOp, CompiledRule};
use rampart_waf::conformance::crs_rule_set;
use rampart_waf::transform::apply_chain;

#[test]
fn prefilters_are_exact_on_the_crs_corpus() {
    let mut rules = crs_rule_set(&corpus::crs_dir()).expect("CRS loads");
    // Every arrival looks at the stretches' bits (see `run_twice`).
    rules.set_stretch_backoff(false);
    let inputs = corpus::corpus(&corpus::crs_dir());
    assert!(inputs.len() > 4000, "{} corpus requests", inputs.len());

    // 1. Rule level.
    let mut values: BTreeSet<Vec<u8>> = BTreeSet::new();
    for (_, req) in &inputs {
        values.insert(req.uri.clone().into_bytes());
        values.extend(req.headers.iter().map(|(_, v)| v.clone()));
        values.insert(req.body.clone());
    }
    let links: Vec<&CompiledRule> = rules
        .rules()
        .iter()
        .flat_map(|r| r.links())
        .filter(|l| l.prefilter.is_some())
        .collect();
    let rx = rules
        .rules()
        .iter()
        .flat_map(|r| r.links())
        .filter(|l| matches!(l.operator, CompiledOp::Rx(_)))
        .count();
    eprintln!("{} links have a prefilter ({rx} @rx links)", links.len());
    assert!(links.len() * 2 > rx, "too few prefilters: {}", links.len());
    let mut by_chain: HashMap<u32, Vec<&CompiledRule>> = HashMap::new();
    for link in links {
        by_chain.entry(link.chain_key).or_default().push(link);
    }
    let mut rejected = 0usize;
    let mut literal_checked = 0usize;
    for (chain, links) in &by_chain {
        let transforms = rules.transform_chain(*chain);
        for value in &values {
            // Every intermediate form (what `multiMatch` links test), the
            // raw value first and the fully transformed one last.
            let forms: Vec<Vec<u8>> = (0..=transforms.len())
                .map(|n| apply_chain(&transforms[..n], value).into_owned())
                .collect();
            let last = &forms[forms.len() - 1];
            // The engine filters on the output of the bits chain (the chain
            // without case steps that cannot matter): same verdict.
            let short = apply_chain(rules.transform_chain(rules.bits_chain(*chain)), value);
            for link in links {
                assert_eq!(
                    rules.prefilter_rejects(link, &short),
                    rules.prefilter_rejects(link, last),
                    "rule {}: the bits chain changes the prefilter on {:?}",
                    link.id,
                    String::from_utf8_lossy(value)
                );
                let tested = if link.multi_match {
                    &forms[..]
                } else {
                    std::slice::from_ref(last)
                };
                for value in tested {
                    // A `multiMatch` link's own literal check (what the
                    // engine uses on intermediate values nobody scanned)
                    // rules out exactly what the slot does.
                    if link.literal_check.is_some() {
                        assert_eq!(
                            rules.literals_reject(link, value),
                            rules.prefilter_rejects(link, value),
                            "rule {}: literal check on {:?}",
                            link.id,
                            String::from_utf8_lossy(value)
                        );
                        literal_checked += 1;
                    }
                    let ruled_out = rules.prefilter_rejects(link, value);
                    // The phrases of `@pm` are its literals: exact both ways.
                    if let CompiledOp::Pm(pm) = &link.operator {
                        assert_eq!(
                            ruled_out,
                            pm.automaton.find(&value[..]).is_none(),
                            "rule {}: @pm prefilter on {:?}",
                            link.id,
                            String::from_utf8_lossy(value)
                        );
                    }
                    if !ruled_out {
                        continue;
                    }
                    rejected += 1;
                    let matches = match &link.operator {
                        CompiledOp::Rx(re) => re.is_match(value),
                        CompiledOp::Pm(pm) => pm.automaton.find(&value[..]).is_some(),
                        _ => unreachable!("prefilters are only given to @rx and @pm links"),
                    };
                    assert!(
                        !matches,
                        "rule {}: prefilter rejected a matching value {:?}",
                        link.id,
                        String::from_utf8_lossy(value)
                    );
                }
            }
        }
    }
    eprintln!("{rejected} (value, rule) pairs ruled out, all correctly");
    eprintln!("{literal_checked} multiMatch literal checks agree with the prefilter");
    assert!(
        literal_checked > 0,
        "no multiMatch link has a literal check"
    );

    // 2. Transaction level.
    let with: Vec<_> = inputs.iter().map(|(_, r)| run_twice(&rules, r)).collect();
    rules.set_prefilter(false);
    for ((label, req), expected) in inputs.iter().zip(&with) {
        assert_eq!(&corpus::run(&rules, req), expected, "{label}");
    }
}

/// Runs `req` twice in a row: the second run finds every short value of
/// the first in the value memo (verdicts, bits, bytes), and must give the
/// same result.
fn run_twice(
    rules: &rampart_waf::RuleSet,
    req: &rampart_waf::conformance::Request,
) -> (
    Vec<rampart_waf::MatchedRule>,
    Option<rampart_waf::Intervention>,
) {
    let first = corpus::run(rules, req);
    assert_eq!(corpus::run(rules, req), first, "a memo hit differs");
    first
}

/// The attack and benign text of libinjection's data and GoTestWAF's test
/// cases (a sample of each file), as raw strings.
fn attack_corpus_texts() -> Vec<String> {
    let shared = corpus::crs_dir().join("..");
    let mut texts = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(shared.join("libinjection/data"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        // About 60 lines a file, spread over it.
        let step = (lines.len() / 60).max(1);
        texts.extend(lines.iter().step_by(step).map(|l| l.to_string()));
    }
    let testcases = shared.join("gotestwaf/testcases");
    for set in std::fs::read_dir(&testcases)
        .into_iter()
        .flatten()
        .flatten()
    {
        for case in std::fs::read_dir(set.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let Ok(text) = std::fs::read_to_string(case.path()) else {
                continue;
            };
            let Ok(doc) = serde_yaml::from_str::<serde_yaml::Value>(&text) else {
                continue;
            };
            if let Some(payloads) = doc.get("payload").and_then(|p| p.as_sequence()) {
                texts.extend(payloads.iter().filter_map(|p| p.as_str()).map(String::from));
            }
        }
    }
    texts
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Transaction level on attack corpora: each text as written into a query
/// argument, a cookie, a header and a URL-encoded form body gives the same
/// result with the shortcuts on and off.
#[test]
fn shortcuts_agree_on_attack_corpora() {
    let mut rules = crs_rule_set(&corpus::crs_dir()).expect("CRS loads");
    let texts = attack_corpus_texts();
    assert!(texts.len() > 1000, "{} corpus texts", texts.len());
    let requests: Vec<rampart_waf::conformance::Request> = texts
        .iter()
        .map(|text| {
            let encoded = percent_encode(text);
            let raw_ok: String = text.chars().filter(|c| !c.is_control()).collect();
            rampart_waf::conformance::Request {
                method: "POST".into(),
                uri: format!("/search?q={text}&e={encoded}"),
                version: "HTTP/1.1".into(),
                headers: vec![
                    ("Host".into(), b"shop.example.com".to_vec()),
                    ("User-Agent".into(), raw_ok.clone().into_bytes()),
                    ("Cookie".into(), format!("s={encoded}").into_bytes()),
                    (
                        "Content-Type".into(),
                        b"application/x-www-form-urlencoded".to_vec(),
                    ),
                ],
                body: format!("a={encoded}&{raw_ok}=1").into_bytes(),
            }
        })
        .collect();
    let with: Vec<_> = requests.iter().map(|r| run_twice(&rules, r)).collect();
    // The suite's setup only detects: count requests that matched a rule
    // that adds to the anomaly score.
    let detected = with
        .iter()
        .filter(|(m, _)| m.iter().any(|r| (930000..950000).contains(&r.id)))
        .count();
    eprintln!("{} corpus requests, {detected} detected", requests.len());
    assert!(detected * 2 > requests.len(), "only {detected} detected");
    rules.set_prefilter(false);
    for ((text, req), expected) in texts.iter().zip(&requests).zip(&with) {
        assert_eq!(&corpus::run(&rules, req), expected, "{text:?}");
    }
}

/// The trigram filters of the large `@pm` lists never rule out a value the
/// automaton matches: every phrase passes in either case, and so does
/// every corpus value (raw and after the link's transformations) that
/// holds a phrase.
#[test]
fn pm_trigram_filters_are_exact_on_the_crs_corpus() {
    let rules = crs_rule_set(&corpus::crs_dir()).expect("CRS loads");
    let inputs = corpus::corpus(&corpus::crs_dir());
    let mut values: BTreeSet<Vec<u8>> = BTreeSet::new();
    for (_, req) in &inputs {
        values.insert(req.uri.clone().into_bytes());
        values.extend(req.headers.iter().map(|(_, v)| v.clone()));
        values.insert(req.body.clone());
    }
    let (mut filtered, mut ruled_out, mut matched) = (0usize, 0usize, 0usize);
    for link in rules.rules().iter().flat_map(|r| r.links()) {
        let CompiledOp::Pm(pm) = &link.operator else {
            continue;
        };
        if pm.trigrams.is_none() {
            continue;
        }
        filtered += 1;
        for phrase in &pm.lowercase {
            assert!(pm.may_match(phrase), "rule {}: {phrase:?}", link.id);
            assert!(
                pm.may_match(&phrase.to_ascii_uppercase()),
                "rule {}",
                link.id
            );
        }
        let transforms = rules.transform_chain(link.chain_key);
        for value in &values {
            for form in [&value[..], &apply_chain(transforms, value)[..]] {
                let hit = pm.automaton.find(form).is_some();
                matched += usize::from(hit);
                if !pm.may_match(form) {
                    assert!(
                        !hit,
                        "rule {}: ruled out {:?}",
                        link.id,
                        String::from_utf8_lossy(form)
                    );
                    ruled_out += 1;
                }
            }
        }
    }
    eprintln!(
        "{filtered} @pm lists filtered: {ruled_out} values ruled out, {matched} matches kept"
    );
    assert!(filtered >= 10 && ruled_out > 0 && matched > 0);
}
