//! Value lists shared by links, decided at load.
//!
//! CRS tests the same target list in rule after rule (`REQUEST_COOKIES|
//! !REQUEST_COOKIES:/__utm/|REQUEST_COOKIES_NAMES|ARGS_NAMES|ARGS|XML:/*`
//! in dozens of phase-2 rules). When every target and exclusion of a link
//! reads a variable whose values only the request setters and the body
//! processor change, the link's values are a function of its targets and
//! exclusions alone until then: links with the same ones get the same list
//! id, and a transaction resolves each list once (see `eval::lists`) until
//! those values change.

use std::collections::HashMap;

use crate::parser::{Target, Variable};

use super::rule::CompiledRule;
use super::PHASE_DEPENDENT;

/// Whether the values of `var` change only through the request setters
/// and the body processor (which all call `invalidate_scalars`, clearing
/// the lists), and not with the phase being run.
pub(crate) fn list_stable(var: Variable) -> bool {
    super::filled_by_body_processor(var)
        || (crate::eval::request_fixed(var) && !PHASE_DEPENDENT.contains(&var))
}

/// The key of a link's list: its targets and static exclusions.
type Signature = (Vec<Target>, Vec<Target>);

/// The signature of `link` when all its targets and exclusions are
/// list-stable (see [`list_stable`]).
fn signature(link: &CompiledRule) -> Option<Signature> {
    if link.is_action_only() {
        return None;
    }
    let all_stable = link
        .targets
        .iter()
        .chain(&link.exclusions)
        .all(|t| list_stable(t.variable));
    all_stable.then(|| (link.targets.clone(), link.exclusions.clone()))
}

/// Gives every link whose signature at least one other link shares a
/// list id (`value_list`); returns how many ids were given. A signature
/// of one link only is left out: nothing would read its list twice in a
/// phase, and holding it would cost memory for nothing.
pub(super) fn assign(rules: &mut [CompiledRule]) -> u32 {
    let mut uses: HashMap<Signature, usize> = HashMap::new();
    for link in rules.iter().flat_map(|r| r.links()) {
        if let Some(sig) = signature(link) {
            *uses.entry(sig).or_default() += 1;
        }
    }
    let mut ids: HashMap<Signature, u32> = HashMap::new();
    let mut next = 0;
    for rule in rules.iter_mut() {
        let mut link = Some(rule);
        while let Some(l) = link {
            if let Some(sig) = signature(l).filter(|s| uses.get(s).is_some_and(|n| *n > 1)) {
                let id = *ids.entry(sig).or_insert_with(|| {
                    next += 1;
                    next - 1
                });
                l.value_list = Some(id);
            }
            link = l.chain.as_deref_mut();
        }
    }
    next
}

#[cfg(test)]
mod tests {
    use crate::RuleSet;

    fn list_of(rules: &RuleSet, id: u64) -> Option<u32> {
        rules.rule(id).and_then(|r| r.value_list)
    }

    #[test]
    fn links_with_the_same_request_targets_share_a_list() {
        let rules = RuleSet::from_text(
            "SecRule ARGS|!ARGS:x|REQUEST_HEADERS \"@rx a\" \"id:1,phase:2,pass\"\n\
             SecRule ARGS|!ARGS:x|REQUEST_HEADERS \"@rx b\" \"id:2,phase:2,pass,t:lowercase\"\n\
             SecRule ARGS|REQUEST_HEADERS \"@rx c\" \"id:3,phase:2,pass\"\n\
             SecRule ARGS|REQUEST_HEADERS \"@rx d\" \"id:4,phase:2,pass\"\n\
             SecRule ARGS_NAMES \"@rx e\" \"id:5,phase:2,pass\"",
        )
        .unwrap();
        let (one, two) = (list_of(&rules, 1), list_of(&rules, 2));
        assert!(one.is_some());
        assert_eq!(one, two);
        assert!(list_of(&rules, 3).is_some());
        assert_eq!(list_of(&rules, 3), list_of(&rules, 4));
        assert_ne!(one, list_of(&rules, 3), "exclusions are part of the key");
        assert_eq!(list_of(&rules, 5), None, "a list of one link only");
    }

    #[test]
    fn variables_that_change_during_a_phase_get_no_list() {
        let rules = RuleSet::from_text(
            "SecRule TX:a|ARGS \"@rx a\" \"id:1,phase:2,pass\"\n\
             SecRule TX:a|ARGS \"@rx b\" \"id:2,phase:2,pass\"\n\
             SecRule REQUEST_BODY \"@rx a\" \"id:3,phase:2,pass\"\n\
             SecRule REQUEST_BODY \"@rx b\" \"id:4,phase:2,pass\"\n\
             SecRule MATCHED_VARS \"@rx a\" \"id:5,phase:2,pass\"\n\
             SecRule MATCHED_VARS \"@rx b\" \"id:6,phase:2,pass\"\n\
             SecRule ARGS|!TX:a \"@rx a\" \"id:7,phase:2,pass\"\n\
             SecRule ARGS|!TX:a \"@rx b\" \"id:8,phase:2,pass\"",
        )
        .unwrap();
        for id in 1..=8 {
            assert_eq!(list_of(&rules, id), None, "rule {id}");
        }
    }
}
