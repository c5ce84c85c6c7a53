//! Walks directives in load order and builds the [`RuleSet`].
//!
//! Rules stay in AST form until [`Builder::finish`], so that removals and
//! target/action updates, which refer to earlier rules, edit plain data.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use super::config::EngineConfig;
use super::rule::{declared_phase, resolve, split_targets, CompiledRule, Effect};
use super::{operator, Entry, LoadError, RuleSet, Unsupported};
use crate::parser::{
    Action, Directive, DirectiveKind, Location, Operator, OperatorKind, Phase, Rule, RuleSelector,
    Target, Template,
};
use crate::transform::Transformation;

/// A rule (with its chained links) before compilation.
struct Pending {
    id: u64,
    phase: Phase,
    /// Head first; each with its location and the defaults of its phase.
    links: Vec<(Location, Rule)>,
    defaults: Vec<Action>,
    /// True once the last link no longer asks for a `chain`.
    complete: bool,
}

enum Item {
    Rule(Pending),
    Marker(Arc<str>),
}

#[derive(Default)]
pub(crate) struct Builder {
    items: Vec<Item>,
    defaults: HashMap<Phase, Vec<Action>>,
    config: EngineConfig,
}

impl Builder {
    pub(crate) fn directive(&mut self, d: Directive) -> Result<(), LoadError> {
        if self.config.apply(&d.kind) {
            return Ok(());
        }
        let location = d.location;
        match d.kind {
            DirectiveKind::SecRule(rule) => self.rule(location, *rule)?,
            DirectiveKind::SecAction(actions) => {
                let rule = Rule {
                    targets: Vec::new(),
                    operator: Operator {
                        kind: OperatorKind::UnconditionalMatch,
                        negated: false,
                        argument: Template::literal(""),
                    },
                    actions,
                };
                self.rule(location, rule)?;
            }
            DirectiveKind::SecMarker(name) => {
                self.ensure_no_open_chain(&location)?;
                self.items.push(Item::Marker(name.into()));
            }
            DirectiveKind::SecDefaultAction(actions) => {
                let phase = declared_phase(&actions).unwrap_or(Phase::RequestBody);
                self.defaults.insert(phase, actions);
            }
            DirectiveKind::RuleRemove(selector) => {
                self.items.retain(|item| match item {
                    Item::Rule(p) => !selects(&selector, p),
                    Item::Marker(_) => true,
                });
            }
            DirectiveKind::RuleUpdateTarget {
                selector,
                targets,
                replacing,
            } => self.update_targets(&selector, &targets, replacing.as_deref()),
            DirectiveKind::RuleUpdateAction {
                id,
                chain_offset,
                actions,
            } => self.update_actions(id, chain_offset.unwrap_or(0) as usize, actions),
            // Logging, storage and other host settings do not affect evaluation.
            _ => {}
        }
        Ok(())
    }

    fn open_chain(&mut self) -> Option<&mut Pending> {
        match self.items.last_mut() {
            Some(Item::Rule(p)) if !p.complete => Some(p),
            _ => None,
        }
    }

    fn ensure_no_open_chain(&mut self, location: &Location) -> Result<(), LoadError> {
        match self.open_chain() {
            Some(p) => Err(LoadError::Compile {
                location: location.clone(),
                message: format!("rule {} asks for a chain but no SecRule follows", p.id),
            }),
            None => Ok(()),
        }
    }

    fn rule(&mut self, location: Location, rule: Rule) -> Result<(), LoadError> {
        let chained = rule.is_chained();
        if let Some(open) = self.open_chain() {
            open.links.push((location, rule));
            open.complete = !chained;
            return Ok(());
        }
        let phase = declared_phase(&rule.actions).unwrap_or(Phase::RequestBody);
        let Some(id) = rule.id() else {
            return Err(LoadError::Compile {
                location,
                message: "rule has no id".into(),
            });
        };
        let defaults = self.defaults.get(&phase).cloned().unwrap_or_default();
        self.items.push(Item::Rule(Pending {
            id,
            phase,
            links: vec![(location, rule)],
            defaults,
            complete: !chained,
        }));
        Ok(())
    }

    fn pending_mut(&mut self) -> impl Iterator<Item = &mut Pending> {
        self.items.iter_mut().filter_map(|item| match item {
            Item::Rule(p) => Some(p),
            Item::Marker(_) => None,
        })
    }

    fn update_targets(
        &mut self,
        selector: &RuleSelector,
        targets: &[Target],
        replacing: Option<&[Target]>,
    ) {
        for pending in self.pending_mut().filter(|p| selects(selector, p)) {
            let head = &mut pending.links[0].1;
            match replacing {
                Some(old) => {
                    let at = head.targets.iter().position(|t| old.contains(t));
                    head.targets.retain(|t| !old.contains(t));
                    let at = at.unwrap_or(head.targets.len());
                    for (i, t) in targets.iter().enumerate() {
                        head.targets.insert(at + i, t.clone());
                    }
                }
                None => head.targets.extend(targets.iter().cloned()),
            }
        }
    }

    /// `SecRuleUpdateActionById`: the new actions replace those of the same
    /// kind (a new disruptive action, msg, severity …) by being applied last.
    fn update_actions(&mut self, id: u64, offset: usize, actions: Vec<Action>) {
        for pending in self.pending_mut().filter(|p| p.id == id) {
            if let Some((_, link)) = pending.links.get_mut(offset) {
                let replaces_transforms = actions.iter().any(|a| matches!(a, Action::Transform(_)));
                if replaces_transforms {
                    link.actions.retain(|a| !matches!(a, Action::Transform(_)));
                }
                link.actions.extend(actions.iter().cloned());
            }
        }
    }

    pub(crate) fn finish(self) -> Result<RuleSet, LoadError> {
        if let Some(Item::Rule(p)) = self.items.last() {
            if !p.complete {
                let location = p.links.last().map(|l| l.0.clone()).expect("a link");
                return Err(LoadError::Compile {
                    location,
                    message: format!("rule {} asks for a chain but no SecRule follows", p.id),
                });
            }
        }
        let mut out = Output::default();
        for item in self.items {
            match item {
                Item::Marker(name) => out.marker(name),
                Item::Rule(p) => out.rule(p),
            }
        }
        let mut set = RuleSet {
            rules: out.rules,
            phases: out.phases,
            config: self.config,
            unsupported: out.unsupported,
            chains: out.chains,
            chain_triggers: Vec::new(),
            chain_trigger_bits: Vec::new(),
            bits_chains: Vec::new(),
            dynamic: Default::default(),
            skip_targets: Default::default(),
            prefilter: None,
            filtered_chains: Vec::new(),
            union_ids: Vec::new(),
            phase_unions: Vec::new(),
            prefilter_on: true,
            selectors: Default::default(),
            scratch_pool: Default::default(),
            init_run: None,
            segments: Default::default(),
            segment_memos: Default::default(),
            stretches: Default::default(),
            value_lists: 0,
            ctl_tags: Default::default(),
            memos: crate::eval::memo::MemoShards::new(0),
            memo_on: true,
            stretch_backoff: true,
            // Every key the rules name was registered while they were
            // parsed and compiled (above).
            key_index: crate::eval::KeyIndex::current(),
            tx_keys: Default::default(),
            ctl_removable: Default::default(),
        };
        set.index_chains();
        set.compile_selectors();
        set.index_skip_targets();
        set.build_prefilters();
        set.index_unions();
        set.plan_rejections();
        set.intern_tx_keys();
        set.value_lists = super::lists::assign(&mut set.rules);
        set.ctl_tags = super::ctl_tags::assign(&mut set.rules);
        let verdicts = super::verdicts::assign(&mut set.rules);
        super::verdicts::plan(&mut set.rules);
        set.ctl_removable = super::verdicts::ctl_removable(&set.rules);
        super::empty::assign(&mut set.rules);
        let (stretches, verdicts) =
            super::stretches::Stretches::find(&set.phases, &set.rules, &set.skip_targets, verdicts);
        set.stretches = stretches;
        set.memos = crate::eval::memo::MemoShards::new(verdicts);
        set.segments = super::segments::Segments::find(&set.phases, &set.rules, &set.skip_targets);
        set.segment_memos = crate::eval::segments::SegmentMemos::new(set.segments.list.len());
        // Last: the simulation runs the finished rules.
        set.init_run = crate::eval::snapshot::build(&set);
        Ok(set)
    }
}

/// Does `selector` pick this rule?
fn selects(selector: &RuleSelector, p: &Pending) -> bool {
    let head = &p.links[0].1;
    match selector {
        RuleSelector::Ids(ranges) => ranges.iter().any(|r| r.contains(p.id)),
        RuleSelector::Tag(tag) => head
            .actions
            .iter()
            .any(|a| matches!(a, Action::Tag(t) if t.raw() == tag)),
        RuleSelector::Msg(msg) => head
            .actions
            .iter()
            .any(|a| matches!(a, Action::Msg(m) if m.raw() == msg)),
    }
}

#[derive(Default)]
struct Output {
    rules: Vec<CompiledRule>,
    phases: [Vec<Entry>; 5],
    unsupported: Vec<Unsupported>,
    chains: Vec<Vec<&'static Transformation>>,
    chain_keys: HashMap<Vec<&'static str>, u32>,
}

impl Output {
    fn marker(&mut self, name: Arc<str>) {
        for phase in &mut self.phases {
            phase.push(Entry::Marker(name.clone()));
        }
    }

    fn rule(&mut self, p: Pending) {
        match self.compile_chain(&p) {
            Ok(rule) => {
                let index = self.rules.len();
                self.phases[p.phase.number() as usize - 1].push(Entry::Rule(index));
                self.rules.push(rule);
            }
            Err((location, reason)) => self.unsupported.push(Unsupported {
                id: p.id,
                location,
                reason,
            }),
        }
    }

    /// Compiles the links back to front so each can own its successor.
    fn compile_chain(&mut self, p: &Pending) -> Result<CompiledRule, (Location, String)> {
        let mut next: Option<Box<CompiledRule>> = None;
        for (location, rule) in p.links.iter().rev() {
            let mut link = self.compile_link(p, location, rule)?;
            link.chain = next.take();
            next = Some(Box::new(link));
        }
        let mut head = *next.expect("a rule has at least one link");
        super::fast::mark_quiet(&mut head);
        Ok(head)
    }

    fn compile_link(
        &mut self,
        p: &Pending,
        location: &Location,
        rule: &Rule,
    ) -> Result<CompiledRule, (Location, String)> {
        let dir = location.file.parent().unwrap_or(Path::new("."));
        let op = operator::compile(&rule.operator, dir).map_err(|e| (location.clone(), e))?;
        let r = resolve(&rule.actions, &p.defaults);
        let (targets, exclusions) = split_targets(&rule.targets);
        let chain_key = self.chain_key(&r.transforms);
        let tx_compare =
            super::fast::tx_compare(&targets, &exclusions, &r.transforms, r.multi_match, &op);
        Ok(CompiledRule {
            id: p.id,
            phase: p.phase,
            location: location.clone(),
            targets,
            exclusions,
            operator: op,
            negated: rule.operator.negated,
            operator_text: rule.operator.to_string(),
            transforms: r.transforms,
            chain_key,
            prefilter: None,
            literal_check: None,
            reject_plan: None,
            value_list: None,
            ctl_tags: 0,
            verdict_bit: None,
            verdict_plan: None,
            empty_miss: None,
            tx_compare,
            multi_match: r.multi_match,
            capture: r.capture,
            meta: r.meta,
            log: r.log,
            disruptive: r.disruptive,
            status: r.status,
            effects: r.effects.into_iter().map(Effect::new).collect(),
            skip: r.skip,
            skip_after: r.skip_after,
            chain: None,
        })
    }

    fn chain_key(&mut self, transforms: &[&'static Transformation]) -> u32 {
        let names: Vec<&'static str> = transforms.iter().map(|t| t.name()).collect();
        if let Some(key) = self.chain_keys.get(&names) {
            return *key;
        }
        let key = self.chains.len() as u32;
        self.chains.push(transforms.to_vec());
        self.chain_keys.insert(names, key);
        key
    }
}
