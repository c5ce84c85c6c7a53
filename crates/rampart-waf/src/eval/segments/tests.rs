//! Segments of pure rules: where they are found, and that a remembered
//! outcome gives what evaluating the segment gives.

use crate::{MatchedRule, RuleSet, Transaction};

/// Phase 3 reads `TX:level` (from the `x-level` request header) in a
/// segment of four pure rules (sums, a macro in `msg`, a `skipAfter`),
/// then an impure rule; `x-remove` removes rule 12 by a `ctl`.
const RULES: &str = r#"
SecRuleEngine On
SecRule REQUEST_HEADERS:x-level "@rx ^(\d)$" "id:2,phase:1,pass,nolog,capture,setvar:tx.level=%{tx.1}"
SecRule REQUEST_HEADERS:x-remove "@rx ." "id:3,phase:1,pass,nolog,ctl:ruleRemoveById=12"
SecRule TX:level "@lt 1" "id:10,phase:3,pass,nolog,skipAfter:END"
SecRule TX:level "@ge 1" "id:11,phase:3,pass,msg:'level %{tx.level}',setvar:tx.sum=+%{tx.level}"
SecRule TX:level "@ge 2" "id:12,phase:3,pass,severity:2,setvar:tx.sum=+5"
SecRule TX:sum "@ge 1" "id:13,phase:3,pass,nolog,setvar:tx.seen=1"
SecMarker END
SecRule RESPONSE_STATUS "@rx ^2" "id:20,phase:3,pass,msg:'status'"
"#;

type Seen = (Vec<MatchedRule>, Vec<(String, Vec<u8>)>);

/// One exchange with the given request headers: its matched rules and TX.
fn exchange(rules: &RuleSet, headers: &[(&str, &str)]) -> Seen {
    let mut tx = Transaction::new(rules);
    tx.set_request_line("GET", "/", "HTTP/1.1");
    for (name, value) in headers {
        tx.add_request_header(name, value.as_bytes());
    }
    tx.process_request_body();
    tx.set_response_status(200, "HTTP/1.1");
    tx.process_response_body();
    tx.process_logging();
    (tx.matched_rules().to_vec(), tx.tx_vars())
}

/// The same exchanges, in order, with the shortcuts (and so the segments)
/// on and off.
fn on_and_off(text: &str, exchanges: &[&[(&str, &str)]]) -> (Vec<Seen>, Vec<Seen>) {
    let on = RuleSet::from_text(text).unwrap();
    let mut off = RuleSet::from_text(text).unwrap();
    off.set_prefilter(false);
    let run = |rules: &RuleSet| exchanges.iter().map(|h| exchange(rules, h)).collect();
    (run(&on), run(&off))
}

fn ids(seen: &Seen) -> Vec<u64> {
    seen.0.iter().map(|m| m.id).collect()
}

#[test]
fn segments_start_after_impure_rules_and_at_skip_targets() {
    let rules = RuleSet::from_text(
        r#"
SecRule TX:a "@eq 1" "id:1,phase:3,pass,skipAfter:M"
SecRule TX:a "@eq 2" "id:2,phase:3,pass"
SecRule TX:a "@eq 3" "id:3,phase:3,pass"
SecRule RESPONSE_STATUS "@rx 5" "id:4,phase:3,pass"
SecRule TX:a "@eq 4" "id:5,phase:3,pass"
SecRule TX:a "@eq 5" "id:6,phase:3,pass"
SecMarker M
SecRule TX:a "@eq 6" "id:7,phase:3,pass"
SecRule TX:a "@eq 7" "id:8,phase:3,pass"
SecRule TX:a "@eq 8" "id:9,phase:3,pass"
SecRule TX:/^a/ "@eq 9" "id:10,phase:3,pass"
SecRule TX:a "@rx (1)" "id:11,phase:4,pass,capture"
SecRule TX:a "@eq 1" "id:12,phase:4,pass,setvar:'tx.%{tx.a}=1'"
SecRule TX:a "@eq 1" "id:13,phase:4,pass"
SecRule TX:a "@eq 1" "id:14,phase:2,pass"
SecRule TX:a "@eq 1" "id:15,phase:2,pass"
SecRule TX:a "@eq 1" "id:16,phase:2,pass"
"#,
    )
    .unwrap();
    let starts = spans(&rules, crate::parser::Phase::ResponseHeaders);
    // Entries: 0-2 rules 1-3, 3 rule 4 (impure), 4-5 rules 5-6, 6 the
    // marker, 7-9 rules 7-9, 10 rule 10 (a regex selector).
    // After the impure rule: 5, 6, 7, 8, 9 (the marker does not end it);
    // at the marker's target (7): 7, 8, 9.
    assert_eq!(starts, vec![(0, 3), (4, 10), (7, 10)]);
    // A capture, a key made from a macro: neither qualifies, and no
    // segment is found in phase 4 (one rule is left). The request phases
    // have segments too: in phase 2, the marker (every phase's program
    // has it) and rules 14-16.
    assert!(spans(&rules, crate::parser::Phase::ResponseBody).is_empty());
    let request = spans(&rules, crate::parser::Phase::RequestBody);
    assert_eq!(request, vec![(0, 4)]);
}

/// The segments of `phase`, as (first entry, end) pairs.
fn spans(rules: &RuleSet, phase: crate::parser::Phase) -> Vec<(usize, usize)> {
    let segments = rules.segments();
    segments
        .starts(phase)
        .iter()
        .enumerate()
        .filter(|(_, id)| **id != u32::MAX)
        .map(|(at, id)| (at, segments.list[*id as usize].end))
        .collect()
}

#[test]
fn a_remembered_outcome_gives_what_evaluation_gives() {
    let one: &[(&str, &str)] = &[("x-level", "1")];
    let two: &[(&str, &str)] = &[("x-level", "2")];
    let none: &[(&str, &str)] = &[];
    let (on, off) = on_and_off(RULES, &[one, one, two, two, none, one, two]);
    assert_eq!(on, off);
    assert_eq!(ids(&on[1]), vec![2, 11, 13, 20]);
    assert_eq!(ids(&on[3]), vec![2, 11, 12, 13, 20]);
    assert_eq!(ids(&on[4]), vec![20]);
    assert_eq!(on[1].0[1].msg, "level 1");
    assert_eq!(on[3].0[1].msg, "level 2");
    let sum = |seen: &Seen| {
        seen.1
            .iter()
            .find(|(k, _)| k == "sum")
            .map(|(_, v)| v.clone())
    };
    assert_eq!(sum(&on[3]), Some(b"7".to_vec()));
}

#[test]
fn an_outcome_is_not_used_under_other_ctl_removals() {
    let one: &[(&str, &str)] = &[("x-level", "2")];
    let removed: &[(&str, &str)] = &[("x-level", "2"), ("x-remove", "1")];
    let (on, off) = on_and_off(RULES, &[one, removed, removed, one]);
    assert_eq!(on, off);
    assert_eq!(ids(&on[1]), vec![2, 3, 11, 13, 20]);
    assert_eq!(ids(&on[3]), vec![2, 11, 12, 13, 20]);
}

#[test]
fn matched_var_set_before_a_segment_that_sets_none_is_kept() {
    let text = r#"
SecRule REQUEST_HEADERS:x-level "@rx ^(\d)$" "id:2,phase:1,pass,nolog,capture,setvar:tx.level=%{tx.1}"
SecRule RESPONSE_STATUS "@rx ^2" "id:9,phase:3,pass,nolog"
SecRule TX:level "@eq 7" "id:10,phase:3,pass,nolog"
SecRule TX:level "@eq 8" "id:11,phase:3,pass,nolog"
SecRule TX:level "@eq 9" "id:12,phase:3,pass,nolog"
SecRule MATCHED_VAR "@rx ^200$" "id:20,phase:3,pass,nolog"
"#;
    let one: &[(&str, &str)] = &[("x-level", "1")];
    let nine: &[(&str, &str)] = &[("x-level", "9")];
    let (on, off) = on_and_off(text, &[one, one, nine, nine]);
    assert_eq!(on, off);
    assert_eq!(ids(&on[1]), vec![2, 9, 20]);
    assert_eq!(ids(&on[3]), vec![2, 9, 12]);
}

#[test]
fn an_evaluation_in_which_a_disruptive_rule_matched_is_not_remembered() {
    let text = r#"
SecRuleEngine DetectionOnly
SecRule TX:a "@eq 1" "id:10,phase:3,pass,nolog"
SecRule TX:a "@eq 1" "id:11,phase:3,pass,nolog"
SecRule &TX:a "@eq 0" "id:12,phase:3,deny,status:403"
"#;
    let rules = RuleSet::from_text(text).unwrap();
    let seen = exchange(&rules, &[]);
    assert_eq!(ids(&seen), vec![12]);
    assert!(rules.segment_memos().get(0).is_none());
    let text = text.replace("deny,status:403", "pass");
    let rules = RuleSet::from_text(&text).unwrap();
    exchange(&rules, &[]);
    assert!(rules.segment_memos().get(0).is_some());
}

/// Outcomes are kept per worker thread: another thread starts without
/// them (and so never waits on, or writes to, this thread's).
#[test]
fn outcomes_are_kept_per_thread() {
    let text = r#"
SecRule TX:a "@eq 1" "id:10,phase:3,pass,nolog"
SecRule TX:a "@eq 1" "id:11,phase:3,pass,nolog"
SecRule &TX:a "@eq 0" "id:12,phase:3,pass,nolog"
"#;
    let rules = RuleSet::from_text(text).unwrap();
    exchange(&rules, &[]);
    assert!(rules.segment_memos().get(0).is_some());
    std::thread::scope(|s| {
        s.spawn(|| {
            assert!(rules.segment_memos().get(0).is_none());
            exchange(&rules, &[]);
            assert!(rules.segment_memos().get(0).is_some());
        });
    });
}

/// A segment in phase 2, as CRS's 949 sums and checks the inbound score:
/// the remembered outcome of a benign request is used for the next one,
/// and a request whose score reaches the threshold is still denied (an
/// evaluation in which the deny matched is never remembered).
#[test]
fn a_request_phase_segment_gives_what_evaluation_gives() {
    let text = r#"
SecRuleEngine On
SecRule REQUEST_HEADERS:x-level "@rx ^(\d)$" "id:2,phase:1,pass,nolog,capture,setvar:tx.level=%{tx.1}"
SecRule TX:level "@ge 1" "id:10,phase:2,pass,nolog,setvar:tx.score=+%{tx.level}"
SecRule TX:level "@ge 3" "id:11,phase:2,pass,nolog,setvar:tx.score=+2"
SecRule TX:score "@ge 5" "id:12,phase:2,deny,status:403,msg:'score %{tx.score}'"
SecRule TX:score "@lt 5" "id:13,phase:2,pass,nolog,setvar:tx.passed=1"
"#;
    let low: &[(&str, &str)] = &[("x-level", "1")];
    let high: &[(&str, &str)] = &[("x-level", "4")];
    let none: &[(&str, &str)] = &[];
    let order = [low, low, high, low, high, none, none, low];
    let (on, off) = on_and_off(text, &order);
    assert_eq!(on, off);
    assert!(ids(&on[1]).contains(&13) && !ids(&on[1]).contains(&12));
    assert!(ids(&on[2]).contains(&12), "denied: {:?}", ids(&on[2]));
    assert!(ids(&on[4]).contains(&12), "denied again: {:?}", ids(&on[4]));
}
