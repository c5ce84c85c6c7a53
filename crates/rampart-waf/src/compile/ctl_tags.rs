//! Tags named by `ctl:ruleRemoveByTag` and `ctl:ruleRemoveTargetByTag`, as
//! bits decided at load.
//!
//! Once such a `ctl` ran (CRS 941010 removes `REQUEST_FILENAME` from the
//! rules tagged `xss-perf-disable` on almost every request), every rule
//! evaluated afterwards asks whether it bears the tag, once per value
//! resolution: a string comparison per tag of the rule. Every `ctl` comes
//! from a rule, so the tags they can name are known at load: each gets a
//! bit (up to 64), and each rule the bits of those of its tags, so that
//! the question is one AND. A tag without a bit (more than 64 of them) is
//! compared as text, as before.

use std::collections::HashMap;

use crate::parser::{Action, Ctl, RuleSelector};

use super::rule::CompiledRule;

/// The bits of the tags named by `ctl`s (see the module documentation).
#[derive(Debug, Default)]
pub(crate) struct CtlTagBits(HashMap<String, u64>);

/// A tag named by a `ctl`, with its bit (0 when it has none).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CtlTag {
    name: String,
    bit: u64,
}

impl CtlTag {
    /// Whether `rule` bears this tag: exactly `rule.has_tag(name)`, since
    /// a rule's `ctl_tags` holds the bit of every tag of its that has one.
    pub fn applies(&self, rule: &CompiledRule) -> bool {
        match self.bit {
            0 => rule.has_tag(&self.name),
            bit => rule.ctl_tags & bit != 0,
        }
    }
}

impl CtlTagBits {
    /// `name` with its bit, if it has one.
    pub fn tag(&self, name: &str) -> CtlTag {
        CtlTag {
            name: name.to_string(),
            bit: self.0.get(name).copied().unwrap_or(0),
        }
    }
}

/// Gives the first 64 distinct tags named by the `ctl`s of `rules` a bit
/// each, and every link of every rule the bits of its tags.
pub(super) fn assign(rules: &mut [CompiledRule]) -> CtlTagBits {
    let mut bits = HashMap::new();
    for link in rules.iter().flat_map(CompiledRule::links) {
        for effect in &link.effects {
            let Some(tag) = named_tag(&effect.action) else {
                continue;
            };
            if bits.len() < 64 && !bits.contains_key(tag) {
                let bit = 1u64 << bits.len();
                bits.insert(tag.to_string(), bit);
            }
        }
    }
    for rule in rules.iter_mut() {
        let mut next = Some(rule);
        while let Some(link) = next {
            let tags = link.meta.tags.iter().filter_map(|t| bits.get(t));
            link.ctl_tags = tags.fold(0, |acc, bit| acc | bit);
            next = link.chain.as_deref_mut();
        }
    }
    CtlTagBits(bits)
}

/// The tag a `ctl` action selects rules by, if it does.
fn named_tag(action: &Action) -> Option<&str> {
    match action {
        Action::Ctl(Ctl::RuleRemove(RuleSelector::Tag(tag)))
        | Action::Ctl(Ctl::RuleRemoveTarget {
            selector: RuleSelector::Tag(tag),
            ..
        }) => Some(tag),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use crate::RuleSet;

    const RULES: &str = "SecRuleEngine On\n\
        SecAction \"id:1,phase:1,pass,nolog,ctl:ruleRemoveTargetByTag=perf;ARGS:a\"\n\
        SecAction \"id:2,phase:1,pass,nolog,ctl:ruleRemoveByTag=gone\"\n\
        SecRule ARGS \"@rx x\" \"id:3,phase:1,pass,tag:'other',tag:'perf'\"\n\
        SecRule ARGS \"@rx x\" \"id:4,phase:1,pass,tag:'gone',chain\"\n\
            SecRule ARGS \"@rx x\" \"tag:'perf'\"\n\
        SecRule ARGS \"@rx x\" \"id:5,phase:1,pass,tag:'Perf',tag:'perf-x'\"";

    /// A rule carries the bit of a ctl-named tag exactly when it has the
    /// tag (case and whole text count), and a tag no ctl names has none.
    #[test]
    fn bits_follow_has_tag() {
        let set = RuleSet::from_text(RULES).unwrap();
        for name in ["perf", "gone", "other", "Perf", "perf-x", "nothing"] {
            let tag = set.ctl_tag(name);
            for rule in set.rules().iter().flat_map(|r| r.links()) {
                assert_eq!(tag.applies(rule), rule.has_tag(name), "{name} {}", rule.id);
            }
        }
        assert_ne!(set.ctl_tag("perf").bit, 0);
        assert_ne!(set.ctl_tag("gone").bit, set.ctl_tag("perf").bit);
        assert_eq!(set.ctl_tag("other").bit, 0);
        assert_eq!(set.rule(3).unwrap().ctl_tags, set.ctl_tag("perf").bit);
    }

    /// Past 64 named tags, the others are compared as text.
    #[test]
    fn tags_beyond_the_bits_are_compared_as_text() {
        let mut text = String::from("SecRuleEngine On\n");
        for i in 0..70 {
            text += &format!(
                "SecAction \"id:{},phase:1,pass,ctl:ruleRemoveByTag=t{i}\"\n",
                i + 1
            );
        }
        text += "SecRule ARGS \"@rx x\" \"id:100,phase:1,pass,tag:'t3',tag:'t69'\"\n";
        let set = RuleSet::from_text(&text).unwrap();
        let rule = set.rule(100).unwrap();
        assert_eq!(set.ctl_tag("t69").bit, 0);
        assert!(set.ctl_tag("t69").applies(rule) && set.ctl_tag("t3").applies(rule));
        assert!(!set.ctl_tag("t4").applies(rule) && !set.ctl_tag("t68").applies(rule));
    }
}
