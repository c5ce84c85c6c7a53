//! Verdict bits: the links whose test of a value the value memo may
//! remember (see `eval::memo`).
//!
//! A link's test of one value (its transformations, then its operator,
//! on every intermediate form with `multiMatch`) finding nothing is a
//! pure function of the value's bytes when:
//!
//! * the operator reads nothing but the value and constants fixed at
//!   load: no macro in its argument (`@within %{tx.allowed_methods}`
//!   depends on TX), no pattern built per request;
//! * finding nothing has no side effect: true of every operator here
//!   (captures are written on a match only);
//! * the link is not both negated and `capture`: a negated link that
//!   "finds nothing" is one whose operator matched, and a match writes
//!   `TX:0`-`TX:9` when the link captures (without `capture` it writes
//!   nothing, so CRS's many `!@rx` checks of headers get a bit).
//!
//! Transformations are pure functions of their input. Each such link gets
//! a dense bit, the index into a memo entry's set of links known to find
//! nothing in its value.
//!
//! A link with a bit whose targets are all request-side variables also
//! gets a plan ([`plan`]): the variables to look at when the engine asks,
//! before resolving any value, whether the memo already says the link
//! finds nothing in every one of them (`Transaction::verdicts_reject`).
//! Selectors and exclusions (static or by `ctl`) only narrow a variable's
//! values, so the verdicts over all of them are enough.

use crate::parser::{Action, Ctl, Selector, Variable};

use super::operator::{Arg, CompiledOp};
use super::rule::{CompiledRule, VerdictTarget};

/// Gives every link whose test the memo may remember its verdict bit; the
/// number of bits given.
pub(super) fn assign(rules: &mut [CompiledRule]) -> u32 {
    let mut next = 0;
    for rule in rules {
        let mut link = Some(rule);
        while let Some(l) = link {
            if eligible(l) {
                l.verdict_bit = Some(next);
                next += 1;
            }
            link = l.chain.as_deref_mut();
        }
    }
    next
}

/// Gives every link with a verdict bit whose targets allow it its
/// verdict plan (after `assign`).
pub(super) fn plan(rules: &mut [CompiledRule]) {
    for rule in rules {
        let mut link = Some(rule);
        while let Some(l) = link {
            if l.verdict_bit.is_some() {
                l.verdict_plan = targets(l);
            }
            link = l.chain.as_deref_mut();
        }
    }
}

/// Per variable (`Variable as usize`): whether some
/// `ctl:ruleRemoveTarget*` of `rules` removes it whole (CRS 941010 removes
/// `REQUEST_FILENAME` from the XSS rules). Only such a variable can leave a
/// plan's link untested at run time, so only those need the look at the
/// transaction's removals (`Transaction::verdicts_reject`).
pub(super) fn ctl_removable(rules: &[CompiledRule]) -> Box<[bool]> {
    let mut removable = vec![false; super::variable_count()];
    for link in rules.iter().flat_map(|r| r.links()) {
        for effect in &link.effects {
            let Action::Ctl(Ctl::RuleRemoveTarget { targets, .. }) = &effect.action else {
                continue;
            };
            for target in targets.iter().filter(|t| t.selector.is_none()) {
                removable[target.variable as usize] = true;
            }
        }
    }
    removable.into_boxed_slice()
}

/// The plan's variables, each once (a variable under a key selector
/// once per key, unless the link also reads all of it), those that must
/// be empty last (see `volatility_rank`); `None` when a target counts (`&ARGS` is a number, not
/// the values) or reads a variable whose values the setters and the body
/// processor do not fix.
fn targets(link: &CompiledRule) -> Option<Box<[VerdictTarget]>> {
    let mut plan = Vec::new();
    for (index, target) in link.targets.iter().enumerate() {
        if target.count {
            return None;
        }
        let var = target.variable;
        let entry = match &target.selector {
            _ if super::filled_by_body_processor(var) => VerdictTarget::Empty(var),
            _ if !crate::eval::request_fixed(var) => return None,
            Some(Selector::Key(_)) => VerdictTarget::Keyed(var, index as u32),
            _ => VerdictTarget::Values(var),
        };
        if !plan.contains(&entry) {
            plan.push(entry);
        }
    }
    let whole: Vec<Variable> = plan
        .iter()
        .filter_map(|t| match t {
            VerdictTarget::Values(var) => Some(*var),
            _ => None,
        })
        .collect();
    plan.retain(|t| !matches!(t, VerdictTarget::Keyed(var, _) if whole.contains(var)));
    plan.sort_by_key(|t| match t {
        VerdictTarget::Values(var) | VerdictTarget::Keyed(var, _) => volatility_rank(*var),
        VerdictTarget::Empty(_) => u8::MAX,
    });
    Some(plan.into_boxed_slice())
}

/// Where a variable goes in a plan: those whose values change most often
/// between requests first (argument values, cookies, then what holds the
/// query string), since a link that cannot be ruled out is usually told
/// so by such a variable, then names, headers and the rest.
pub(super) fn volatility_rank(var: Variable) -> u8 {
    match var {
        Variable::Args | Variable::ArgsGet | Variable::ArgsPost => 0,
        Variable::RequestCookies | Variable::RequestBody => 1,
        Variable::QueryString
        | Variable::RequestUri
        | Variable::RequestUriRaw
        | Variable::RequestLine => 2,
        Variable::RequestFilename | Variable::RequestBasename => 3,
        Variable::ArgsNames
        | Variable::ArgsGetNames
        | Variable::ArgsPostNames
        | Variable::RequestCookiesNames => 4,
        Variable::RequestHeaders => 5,
        _ => 6,
    }
}

/// Whether finding nothing in a value is a pure function of the value's
/// bytes for `link` (see the module).
fn eligible(link: &CompiledRule) -> bool {
    let captures_on_match = link.negated && link.capture;
    !captures_on_match && !link.is_action_only() && pure(&link.operator)
}

/// Whether the operator's result depends on the value and load-time
/// constants alone.
fn pure(op: &CompiledOp) -> bool {
    let literal = |arg: &Arg| matches!(arg, Arg::Literal(_));
    match op {
        CompiledOp::Rx(_)
        | CompiledOp::Pm(_)
        | CompiledOp::IpMatch(_)
        | CompiledOp::ValidateByteRange(_)
        | CompiledOp::ValidateUrlEncoding
        | CompiledOp::ValidateUtf8Encoding
        | CompiledOp::DetectSqli
        | CompiledOp::DetectXss => true,
        CompiledOp::StrEq(a)
        | CompiledOp::Contains(a)
        | CompiledOp::ContainsWord(a)
        | CompiledOp::BeginsWith(a)
        | CompiledOp::EndsWith(a)
        | CompiledOp::Within(a)
        | CompiledOp::Compare(_, a) => literal(a),
        // Always matches, or never: nothing to remember.
        CompiledOp::RxWhole | CompiledOp::Unconditional | CompiledOp::NoMatch => false,
        CompiledOp::RxMacro(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::VerdictTarget;
    use crate::compile::RuleSet;

    fn bits(text: &str) -> Vec<(u64, Option<u32>)> {
        let set = RuleSet::from_text(text).expect("loads");
        set.rules()
            .iter()
            .flat_map(|r| r.links())
            .map(|l| (l.id, l.verdict_bit))
            .collect()
    }

    /// Pure operators get consecutive bits (chained links too); macros,
    /// negation with `capture` and operators that always match get none.
    #[test]
    fn only_pure_links_get_a_bit() {
        let got = bits(
            r#"
SecRule ARGS "@rx a" "id:1,phase:1,pass"
SecRule ARGS "@within %{tx.allowed}" "id:2,phase:1,pass"
SecRule ARGS "!@rx a" "id:3,phase:1,pass,capture"
SecRule ARGS "@rx ^.*$" "id:4,phase:1,pass"
SecRule ARGS "@rx %{tx.x}" "id:5,phase:1,pass"
SecRule ARGS "@within abc" "id:6,phase:1,pass,chain"
    SecRule ARGS_NAMES "@detectSQLi" "t:none"
SecAction "id:7,phase:1,pass"
SecRule ARGS "!@rx a" "id:8,phase:1,pass"
"#,
        );
        assert_eq!(
            got,
            vec![
                (1, Some(0)),
                (2, None),
                (3, None),
                (4, None),
                (5, None),
                (6, Some(1)),
                (6, Some(2)),
                (7, None),
                (8, Some(3)),
            ]
        );
    }

    fn plan(text: &str) -> Option<Vec<VerdictTarget>> {
        let set = RuleSet::from_text(text).expect("loads");
        set.rules()[0].verdict_plan.as_ref().map(|p| p.to_vec())
    }

    /// Plans name each request-side variable once, the most changeable
    /// first and those that must be empty last; a key selector is kept
    /// apart unless the link reads the whole variable too.
    #[test]
    fn plans_order_variables_by_how_often_they_change() {
        use crate::parser::Variable::*;
        let got = plan(
            r#"SecRule REQUEST_HEADERS_NAMES|XML:/*|REQUEST_HEADERS:User-Agent|ARGS_NAMES|ARGS|ARGS:id|REQUEST_COOKIES "@rx a" "id:1,phase:2,pass""#,
        );
        assert_eq!(
            got,
            Some(vec![
                VerdictTarget::Values(Args),
                VerdictTarget::Values(RequestCookies),
                VerdictTarget::Values(ArgsNames),
                VerdictTarget::Keyed(RequestHeaders, 2),
                VerdictTarget::Values(RequestHeadersNames),
                VerdictTarget::Empty(Xml),
            ])
        );
        let whole =
            plan(r#"SecRule REQUEST_HEADERS:Referer|REQUEST_HEADERS "@rx a" "id:1,phase:2,pass""#);
        assert_eq!(whole, Some(vec![VerdictTarget::Values(RequestHeaders)]));
    }

    /// Only variables a `ctl` removes whole are marked: a removal under a
    /// key leaves the other values tested (and their verdicts noted).
    #[test]
    fn ctl_removable_marks_variables_removed_whole() {
        use crate::parser::Variable;
        let set = RuleSet::from_text(
            r#"
SecAction "id:1,phase:1,pass,nolog,ctl:ruleRemoveTargetById=3;REQUEST_FILENAME,ctl:ruleRemoveTargetByTag=x;ARGS:id"
SecRule ARGS "@rx a" "id:3,phase:2,pass"
"#,
        )
        .expect("loads");
        let marked: Vec<Variable> = Variable::all()
            .filter(|v| set.ctl_removable.get(*v as usize) == Some(&true))
            .collect();
        assert_eq!(marked, vec![Variable::RequestFilename]);
    }

    /// No plan when a target counts or is not fixed by the request's
    /// setters (TX, response variables): their values are not those the
    /// verdicts are about.
    #[test]
    fn counting_and_transaction_targets_get_no_plan() {
        for text in [
            r#"SecRule &ARGS|ARGS "@rx a" "id:1,phase:2,pass""#,
            r#"SecRule ARGS|TX:foo "@rx a" "id:1,phase:2,pass""#,
            r#"SecRule RESPONSE_HEADERS "@rx a" "id:1,phase:3,pass""#,
        ] {
            assert_eq!(plan(text), None, "{text}");
        }
        assert!(plan(r#"SecRule ARGS "@rx a" "id:1,phase:2,pass""#).is_some());
    }
}
