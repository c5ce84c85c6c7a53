//! A compiled rule: targets split into inclusions and exclusions, the
//! operator with its state, the transformation chain with `t:none` and
//! `SecDefaultAction` resolved, and actions sorted by when they run.

use std::sync::Arc;

use crate::parser::{
    Action, AllowScope, Location, Phase, SetVarOp, Severity, Target, Template, TemplatePart,
};
use crate::transform::Transformation;

use super::operator::CompiledOp;

/// What a rule does to the transaction when it (and its chain) matches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Disruptive {
    Pass,
    Deny,
    Drop,
    Allow(AllowScope),
    Redirect(Template),
    Proxy(Template),
}

/// Metadata used for logging and for `ruleRemoveBy*` selectors.
#[derive(Clone, Debug, Default)]
pub struct RuleMeta {
    pub msg: Option<Template>,
    pub logdata: Option<Template>,
    pub tags: Vec<String>,
    pub severity: Option<Severity>,
    pub ver: Option<String>,
}

/// One link of a rule chain (the head carries the id, phase and flow).
#[derive(Debug)]
pub struct CompiledRule {
    pub id: u64,
    pub phase: Phase,
    pub location: Location,
    pub targets: Vec<Target>,
    pub exclusions: Vec<Target>,
    pub operator: CompiledOp,
    pub negated: bool,
    /// Text of the operator for reports, e.g. `@rx ^a`.
    pub operator_text: String,
    pub transforms: Vec<&'static Transformation>,
    /// Index of `transforms` in the rule set's table of distinct chains,
    /// the key of the per-transaction transformation cache.
    pub chain_key: u32,
    /// Slot in the prefilter (see `compile::prefilter`): when the
    /// transformed value holds none of the slot's literals, the `@rx` (or
    /// `@pm`) operator cannot match and is not run.
    pub prefilter: Option<u32>,
    /// For a `multiMatch` link with a prefilter slot: the slot's literals
    /// on their own (ignoring ASCII case), to rule out intermediate values
    /// that no other link scans (see `Transaction::scanned_match`).
    pub literal_check: Option<Arc<aho_corasick::AhoCorasick>>,
    /// How the whole link may be ruled out by the unions of its targets'
    /// prefilter bits, decided at load (see [`RejectPlan`]).
    pub reject_plan: Option<RejectPlan>,
    /// A plan for `[&]TX:key "@cmp N"` links (see `compile::fast`).
    pub tx_compare: Option<super::fast::TxCompare>,
    /// The id of the link's value list (see `compile::lists`): links with
    /// the same targets and exclusions over request-side variables share
    /// one resolution per transaction.
    pub value_list: Option<u32>,
    /// The bits of this link's tags that some `ctl` names (see
    /// `compile::ctl_tags`).
    pub ctl_tags: u64,
    /// The link's bit in the value memo's verdicts, when finding nothing
    /// in a value is a pure function of the value (see
    /// `compile::verdicts`).
    pub verdict_bit: Option<u32>,
    /// For a link with a verdict bit whose targets are all request-side
    /// variables (or body-processor ones that may be empty): the
    /// variables whose values the memo's verdicts may rule out all at
    /// once (see `compile::verdicts::plan`).
    pub verdict_plan: Option<Box<[VerdictTarget]>>,
    /// When every target is a response value that may be known empty and
    /// the link's test of the empty value finds nothing: those targets
    /// (see `compile::empty`).
    pub empty_miss: Option<Box<[super::empty::EmptyTarget]>>,
    pub multi_match: bool,
    pub capture: bool,
    pub meta: RuleMeta,
    pub log: bool,
    pub disruptive: Disruptive,
    pub status: Option<u16>,
    /// Actions run once per matched value, in written order, after the
    /// whole chain matched (setvar, ctl, initcol, expirevar, setenv …).
    pub effects: Vec<Effect>,
    pub skip: u32,
    pub skip_after: Option<String>,
    pub chain: Option<Box<CompiledRule>>,
}

/// For a plain `@rx` (or small `@pm`) link with a prefilter slot whose
/// targets are all request-side variables (or body-processor variables
/// that may be empty): what `Transaction::link_rejected` needs, computed
/// at load rather than per request.
#[derive(Clone, Debug)]
pub struct RejectPlan {
    /// The link's prefilter slot.
    pub slot: u32,
    /// The bits chain of the link's transformation chain.
    pub bits_chain: u32,
    /// The targets, those that must be empty first.
    pub targets: Box<[RejectTarget]>,
}

/// One target of a [`RejectPlan`].
#[derive(Clone, Copy, Debug)]
pub enum RejectTarget {
    /// A body-processor variable (`XML`, `FILES` …): the link can only be
    /// ruled out while it has no values.
    Empty(crate::parser::Variable),
    /// A request-side variable: ruled out by the union of its values'
    /// bits (`id`, see `RuleSet::union_id`); `keyed` for a plain key
    /// selector (`REQUEST_HEADERS:User-Agent`), whose few values may be
    /// checked one by one instead; `index` is the target in the link's
    /// `targets`.
    Union {
        var: crate::parser::Variable,
        id: u32,
        keyed: bool,
        index: u32,
    },
}

/// One target variable of a link's `verdict_plan`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VerdictTarget {
    /// A body-processor variable (`XML`, `FILES` …): the link can only be
    /// ruled out while it has no values.
    Empty(crate::parser::Variable),
    /// A request-side variable: ruled out when the memo says the link
    /// finds nothing in any of its values.
    Values(crate::parser::Variable),
    /// A request-side collection under a plain key selector
    /// (`REQUEST_HEADERS:User-Agent`): ruled out by the verdicts of the
    /// values under that key alone (the link never tests the others);
    /// the index of the target in the link's `targets`.
    Keyed(crate::parser::Variable, u32),
}

/// A per-match action with what `setvar` can prepare at load: CRS runs
/// dozens of `setvar`s with literal keys and values on every request.
#[derive(Debug)]
pub struct Effect {
    pub action: Action,
    /// `setvar` with a literal key: the key in lower case (how stores keep
    /// their keys) and hashed, shared with the store instead of copied.
    pub key: Option<crate::eval::StoreKey>,
    /// `setvar:k=literal` (or `setvar:k`, which sets 1): the value, shared.
    pub value: Option<Arc<[u8]>>,
}

impl Effect {
    pub fn new(action: Action) -> Effect {
        let (mut key, mut value) = (None, None);
        if let Action::SetVar(sv) = &action {
            if let [TemplatePart::Literal(text)] = sv.var.key.parts() {
                key = Some(crate::eval::StoreKey::new(text));
            }
            value = match &sv.op {
                SetVarOp::SetToOne => Some(Arc::from(&b"1"[..])),
                SetVarOp::Set(t) => match t.parts() {
                    [] => Some(Arc::from(&b""[..])),
                    [TemplatePart::Literal(text)] => Some(Arc::from(text.as_bytes())),
                    _ => None,
                },
                _ => None,
            };
        }
        Effect { action, key, value }
    }
}

impl CompiledRule {
    /// The links of the chain, head first.
    pub fn links(&self) -> impl Iterator<Item = &CompiledRule> {
        std::iter::successors(Some(self), |r| r.chain.as_deref())
    }

    /// The `n`-th link (0 is the head).
    pub fn link_mut(&mut self, n: usize) -> Option<&mut CompiledRule> {
        let mut rule = self;
        for _ in 0..n {
            rule = rule.chain.as_deref_mut()?;
        }
        Some(rule)
    }

    pub fn has_tag(&self, tag: &str) -> bool {
        self.meta.tags.iter().any(|t| t == tag)
    }

    /// True when the operator runs once without variables (`SecAction`).
    pub fn is_action_only(&self) -> bool {
        self.targets.is_empty()
    }
}

/// The actions of one rule merged with the defaults of its phase.
pub(crate) struct Resolved {
    pub transforms: Vec<&'static Transformation>,
    pub disruptive: Disruptive,
    pub log: bool,
    pub status: Option<u16>,
    pub meta: RuleMeta,
    pub effects: Vec<Action>,
    pub multi_match: bool,
    pub capture: bool,
    pub skip: u32,
    pub skip_after: Option<String>,
}

/// Merges `actions` over `defaults` (a `SecDefaultAction` list).
///
/// `block` means "the default disruptive action"; `t:none` drops every
/// transformation before it, inherited ones included.
pub(crate) fn resolve(actions: &[Action], defaults: &[Action]) -> Resolved {
    let mut r = Resolved {
        transforms: Vec::new(),
        disruptive: Disruptive::Pass,
        log: true,
        status: None,
        meta: RuleMeta::default(),
        effects: Vec::new(),
        multi_match: false,
        capture: false,
        skip: 0,
        skip_after: None,
    };
    let mut default_disruptive = Disruptive::Pass;
    for action in defaults {
        match action {
            Action::Transform(t) => push_transform(&mut r.transforms, t),
            Action::Log => r.log = true,
            Action::NoLog => r.log = false,
            Action::Status(s) => r.status = Some(*s),
            a => {
                if let Some(d) = disruptive(a) {
                    default_disruptive = d;
                }
            }
        }
    }
    r.disruptive = default_disruptive.clone();
    for action in actions {
        apply(&mut r, action, &default_disruptive);
    }
    r
}

fn apply(r: &mut Resolved, action: &Action, default_disruptive: &Disruptive) {
    match action {
        Action::Transform(t) => push_transform(&mut r.transforms, t),
        Action::Log => r.log = true,
        Action::NoLog => r.log = false,
        Action::Status(s) => r.status = Some(*s),
        Action::Block => r.disruptive = default_disruptive.clone(),
        Action::Msg(m) => r.meta.msg = Some(m.clone()),
        Action::LogData(m) => r.meta.logdata = Some(m.clone()),
        Action::Tag(t) => r.meta.tags.push(t.raw().to_string()),
        Action::Severity(s) => r.meta.severity = Some(*s),
        Action::Ver(v) => r.meta.ver = Some(v.clone()),
        Action::MultiMatch => r.multi_match = true,
        Action::Capture => r.capture = true,
        Action::Skip(n) => r.skip = *n,
        Action::SkipAfter(m) => r.skip_after = Some(m.clone()),
        Action::SetVar(_)
        | Action::Ctl(_)
        | Action::InitCol { .. }
        | Action::ExpireVar { .. }
        | Action::SetEnv { .. }
        | Action::SetUid(_)
        | Action::SetSid(_) => r.effects.push(action.clone()),
        a => {
            if let Some(d) = disruptive(a) {
                r.disruptive = d;
            }
        }
    }
}

fn push_transform(list: &mut Vec<&'static Transformation>, t: &'static Transformation) {
    if t.is_none() {
        list.clear();
    } else {
        list.push(t);
    }
}

fn disruptive(action: &Action) -> Option<Disruptive> {
    Some(match action {
        Action::Pass => Disruptive::Pass,
        Action::Deny => Disruptive::Deny,
        Action::Drop => Disruptive::Drop,
        Action::Allow(scope) => Disruptive::Allow(*scope),
        Action::Redirect(t) => Disruptive::Redirect(t.clone()),
        Action::Proxy(t) => Disruptive::Proxy(t.clone()),
        _ => return None,
    })
}

/// The phase a rule declares, if any.
pub(crate) fn declared_phase(actions: &[Action]) -> Option<Phase> {
    actions.iter().find_map(|a| match a {
        Action::Phase(p) => Some(*p),
        _ => None,
    })
}

/// Splits a target list into inclusions and `!` exclusions.
pub(crate) fn split_targets(targets: &[Target]) -> (Vec<Target>, Vec<Target>) {
    targets.iter().cloned().partition(|t| !t.exclude)
}
