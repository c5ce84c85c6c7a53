//! Tests of `compile::stretches`: where stretches start and end, and the
//! groups and bits they get.

use crate::compile::RuleSet;
use crate::parser::{Phase, Variable};

fn set(text: &str) -> RuleSet {
    RuleSet::from_text(text).expect("loads")
}

/// `(start, end, rule ids)` of each stretch of `phase`.
fn stretches(set: &RuleSet, phase: Phase) -> Vec<(usize, usize, Vec<u64>)> {
    let starts = set.stretch_starts(phase);
    starts
        .iter()
        .enumerate()
        .filter(|(_, id)| **id != u32::MAX)
        .map(|(start, id)| {
            let stretch = &set.stretches().list[*id as usize];
            let ids = stretch.rules.iter().map(|r| set.rules()[*r].id).collect();
            (start, stretch.end, ids)
        })
        .collect()
}

/// Runs of rules with verdict plans, cut by a rule without one (a TX
/// gate) and started again at a `skipAfter` target; a run of one rule is
/// no stretch.
#[test]
fn runs_of_planned_rules_are_stretches() {
    let set = set(r#"
SecRule ARGS "@rx a" "id:1,phase:2,pass"
SecRule REQUEST_HEADERS "@rx b" "id:2,phase:2,pass"
SecRule TX:x "@eq 1" "id:3,phase:2,pass,skipAfter:END"
SecRule ARGS "@rx c" "id:4,phase:2,pass"
SecMarker END
SecRule ARGS "@rx d" "id:5,phase:2,pass"
SecRule ARGS "@within %{tx.y}" "id:6,phase:2,pass"
SecRule ARGS "@rx e" "id:7,phase:2,pass"
"#);
    assert_eq!(
        stretches(&set, Phase::RequestBody),
        vec![(0, 2, vec![1, 2]), (3, 6, vec![4, 5])]
    );
    assert!(stretches(&set, Phase::RequestHeaders).is_empty());
}

/// A marker that a `skipAfter` jumps to starts a stretch of its own when
/// two planned rules follow it.
#[test]
fn skip_targets_start_stretches() {
    let set = set(r#"
SecRule TX:x "@eq 1" "id:3,phase:2,pass,skipAfter:END"
SecRule ARGS "@rx a" "id:4,phase:2,pass"
SecMarker END
SecRule ARGS "@rx b" "id:5,phase:2,pass"
SecRule ARGS "@rx c" "id:6,phase:2,pass"
"#);
    assert_eq!(
        stretches(&set, Phase::RequestBody),
        vec![(1, 5, vec![4, 5, 6]), (3, 5, vec![5, 6])]
    );
}

/// One group per variable read whole and per plain key; body-processor
/// variables get no bit; a group is plain when no reader excludes or
/// selects part of it; bits follow the links' verdict bits and differ
/// from stretch to stretch.
#[test]
fn groups_have_bits_of_their_own() {
    let set = set(r#"
SecRule ARGS|!ARGS:pw|XML:/* "@rx a" "id:1,phase:2,pass"
SecRule ARGS|REQUEST_HEADERS:User-Agent "@rx b" "id:2,phase:2,pass"
SecRule REQUEST_HEADERS:user-agent|REQUEST_HEADERS:Referer "@rx c" "id:3,phase:2,pass"
SecRule TX:x "@eq 1" "id:4,phase:2,pass"
SecRule REQUEST_HEADERS "@rx d" "id:5,phase:2,pass"
SecRule REQUEST_HEADERS "@rx e" "id:6,phase:2,pass"
"#);
    let list = &set.stretches().list;
    assert_eq!(list.len(), 2);
    let groups: Vec<_> = list[0]
        .groups
        .iter()
        .map(|g| {
            (
                g.var,
                g.key.as_deref().map(str::to_string),
                g.bit.is_some(),
                g.readers.len(),
                g.plain,
            )
        })
        .collect();
    assert_eq!(
        groups,
        vec![
            (Variable::Args, None, true, 2, false),
            (
                Variable::RequestHeaders,
                Some("user-agent".into()),
                true,
                2,
                true
            ),
            (
                Variable::RequestHeaders,
                Some("referer".into()),
                true,
                1,
                true
            ),
            (Variable::Xml, None, false, 1, false),
        ]
    );
    let link_bits = set
        .rules()
        .iter()
        .filter_map(|r| r.verdict_bit)
        .max()
        .expect("bits");
    let mut bits: Vec<u32> = list
        .iter()
        .flat_map(|s| s.groups.iter().filter_map(|g| g.bit))
        .collect();
    assert!(
        bits.iter().all(|b| *b > link_bits),
        "{bits:?} after {link_bits}"
    );
    let n = bits.len();
    bits.dedup();
    assert_eq!(bits.len(), n, "distinct bits");
}
