//! The OWASP Core Rule Set v4 must load unmodified. These tests parse the
//! copy in the shared corpus (`<repo>/../shared/corpora/crs`) and check the
//! structure of a few well-known rules against the actual files.

use std::collections::HashSet;
use std::fs;
use std::path::PathBuf;

use super::*;

fn crs_dir() -> PathBuf {
    PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR")
            .expect("run by cargo, which sets CARGO_MANIFEST_DIR"),
    )
    .join("../../../shared/corpora/crs")
}

/// `rules/*.conf`, sorted as `Include rules/*.conf` would load them.
fn rule_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(crs_dir().join("rules"))
        .expect("CRS corpus missing: expected <repo>/../shared/corpora/crs")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "conf"))
        .collect();
    files.sort();
    files
}

/// Loads crs-setup plus every rule file through `Include` globs.
fn load_crs() -> Vec<Directive> {
    let main = "Include crs-setup.conf.example\nInclude rules/*.conf\n";
    parse_str(main, crs_dir().join("rampart-test.conf")).unwrap_or_else(|e| panic!("{e}"))
}

fn rule_by_id(directives: &[Directive], id: u64) -> (&Directive, &Rule) {
    directives
        .iter()
        .find_map(|d| match &d.kind {
            DirectiveKind::SecRule(rule) if rule.id() == Some(id) => Some((d, rule.as_ref())),
            _ => None,
        })
        .unwrap_or_else(|| panic!("rule {id} not found"))
}

fn transforms(rule: &Rule) -> Vec<&'static str> {
    rule.actions
        .iter()
        .filter_map(|a| match a {
            Action::Transform(t) => Some(t.name()),
            _ => None,
        })
        .collect()
}

fn phase(rule: &Rule) -> Option<Phase> {
    rule.actions.iter().find_map(|a| match a {
        Action::Phase(p) => Some(*p),
        _ => None,
    })
}

/// Counts lines that start a directive, independently of the parser.
fn count_lines_starting_with(directive: &str) -> usize {
    rule_files()
        .iter()
        .map(|f| {
            let text = fs::read_to_string(f).unwrap();
            text.lines()
                .filter(|l| l.split_whitespace().next() == Some(directive))
                .count()
        })
        .sum()
}

#[test]
fn every_crs_file_parses_on_its_own() {
    let mut files = rule_files();
    files.push(crs_dir().join("crs-setup.conf.example"));
    files.push(crs_dir().join("rules/REQUEST-900-EXCLUSION-RULES-BEFORE-CRS.conf.example"));
    files.push(crs_dir().join("rules/RESPONSE-999-EXCLUSION-RULES-AFTER-CRS.conf.example"));
    assert!(
        files.len() > 20,
        "expected the full CRS rule set, found {} files",
        files.len()
    );
    for file in files {
        if let Err(e) = parse_file(&file) {
            panic!("{e}");
        }
    }
}

#[test]
fn crs_directive_counts_match_the_files() {
    let directives = load_crs();
    let count =
        |pred: fn(&DirectiveKind) -> bool| directives.iter().filter(|d| pred(&d.kind)).count();
    let rules = count(|k| matches!(k, DirectiveKind::SecRule(_)));
    let actions = count(|k| matches!(k, DirectiveKind::SecAction(_)));
    let markers = count(|k| matches!(k, DirectiveKind::SecMarker(_)));
    let defaults = count(|k| matches!(k, DirectiveKind::SecDefaultAction(_)));
    assert_eq!(rules, count_lines_starting_with("SecRule"));
    // crs-setup.conf.example contributes one SecAction (900990).
    assert_eq!(actions, count_lines_starting_with("SecAction") + 1);
    assert_eq!(markers, count_lines_starting_with("SecMarker"));
    assert_eq!(
        defaults, 5,
        "crs-setup sets a default action for each phase"
    );
    assert!(rules > 600, "only {rules} SecRule directives");
    eprintln!("CRS: {rules} SecRule, {actions} SecAction, {markers} SecMarker");
}

#[test]
fn crs_rule_ids_are_unique() {
    let directives = load_crs();
    let mut seen = HashSet::new();
    for d in &directives {
        let id = match &d.kind {
            DirectiveKind::SecRule(rule) => rule.id(),
            DirectiveKind::SecAction(actions) => actions_id(actions),
            _ => None,
        };
        if let Some(id) = id {
            assert!(seen.insert(id), "{}: duplicate id {id}", d.location);
        }
    }
}

#[test]
fn crs_chains_are_followed_by_rules() {
    let directives = load_crs();
    for pair in directives.windows(2) {
        if let DirectiveKind::SecRule(rule) = &pair[0].kind {
            if rule.is_chained() {
                assert!(
                    matches!(pair[1].kind, DirectiveKind::SecRule(_)),
                    "{}: chain not followed by a SecRule",
                    pair[0].location
                );
            }
        }
    }
}

#[test]
fn rule_942100_uses_libinjection() {
    let directives = load_crs();
    let (directive, rule) = rule_by_id(&directives, 942_100);
    assert!(directive
        .location
        .file
        .ends_with("rules/REQUEST-942-APPLICATION-ATTACK-SQLI.conf"));
    assert_eq!(rule.operator.kind, OperatorKind::DetectSqli);
    assert!(!rule.operator.negated);
    assert_eq!(phase(rule), Some(Phase::RequestBody));
    assert_eq!(
        transforms(rule),
        ["none", "utf8toUnicode", "urlDecodeUni", "removeNulls"]
    );
    assert!(rule.actions.contains(&Action::MultiMatch));
    assert!(rule.actions.contains(&Action::Capture));
    assert!(rule.actions.contains(&Action::Severity(Severity::Critical)));
    let shown: Vec<String> = rule.targets.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "REQUEST_COOKIES",
            "REQUEST_COOKIES_NAMES",
            "REQUEST_HEADERS:User-Agent",
            "REQUEST_HEADERS:Referer",
            "ARGS_NAMES",
            "ARGS",
            "XML:/*",
            "XML://@*"
        ]
    );
    let setvars: Vec<&SetVar> = rule
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::SetVar(s) => Some(s),
            _ => None,
        })
        .collect();
    assert_eq!(setvars.len(), 2);
    assert_eq!(setvars[0].var.collection, Collection::Tx);
    assert_eq!(setvars[0].var.key.raw(), "inbound_anomaly_score_pl1");
    let SetVarOp::Add(amount) = &setvars[0].op else {
        panic!("expected =+");
    };
    assert_eq!(
        amount.macros().next().unwrap().key.as_deref(),
        Some("critical_anomaly_score")
    );
}

#[test]
fn rule_920350_is_a_single_phase_1_rule() {
    let directives = load_crs();
    let (directive, rule) = rule_by_id(&directives, 920_350);
    assert_eq!(phase(rule), Some(Phase::RequestHeaders));
    assert!(!rule.is_chained());
    assert_eq!(rule.operator.kind, OperatorKind::Rx);
    assert_eq!(
        rule.operator.argument.raw(),
        r"(?:^([\d.]+|\[[\da-f:]+\]|[\da-f:]+)(:[\d]+)?$)"
    );
    assert_eq!(rule.targets[0].variable, Variable::RequestHeaders);
    assert_eq!(rule.targets[0].selector, Some(Selector::Key("Host".into())));
    // The id action sits on the line after the SecRule line.
    let text = fs::read_to_string(&*directive.location.file).unwrap();
    let line = text
        .lines()
        .nth(directive.location.line as usize - 1)
        .unwrap();
    assert!(line.starts_with("SecRule REQUEST_HEADERS:Host"), "{line}");
}

#[test]
fn rule_920180_is_a_four_rule_chain() {
    let directives = load_crs();
    let start = directives
        .iter()
        .position(|d| matches!(&d.kind, DirectiveKind::SecRule(r) if r.id() == Some(920_180)))
        .unwrap();
    let chain: Vec<&Rule> = directives[start..start + 4]
        .iter()
        .map(|d| match &d.kind {
            DirectiveKind::SecRule(r) => r.as_ref(),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        chain.iter().map(|r| r.is_chained()).collect::<Vec<_>>(),
        [true, true, true, false]
    );
    assert_eq!(chain[0].operator.kind, OperatorKind::Within);
    assert!(chain[0].operator.negated);
    assert_eq!(chain[1].operator.kind, OperatorKind::StrEq);
    assert!(chain[2].targets[0].count);
    assert_eq!(chain[3].id(), None);
    assert_eq!(
        directives[start + 1].location.line,
        directives[start].location.line + 18
    );
}

#[test]
fn crs_uses_every_kind_of_construct_we_expect() {
    let directives = load_crs();
    let mut operators = HashSet::new();
    let mut ctls = 0;
    let mut regex_selectors = 0;
    for d in &directives {
        if let DirectiveKind::SecRule(rule) = &d.kind {
            operators.insert(rule.operator.kind);
            regex_selectors += rule
                .targets
                .iter()
                .filter(|t| matches!(t.selector, Some(Selector::Regex(_))))
                .count();
            ctls += rule
                .actions
                .iter()
                .filter(|a| matches!(a, Action::Ctl(_)))
                .count();
        }
    }
    for op in [
        OperatorKind::Rx,
        OperatorKind::Pm,
        OperatorKind::PmFromFile,
        OperatorKind::DetectXss,
        OperatorKind::ValidateByteRange,
        OperatorKind::IpMatch,
        OperatorKind::UnconditionalMatch,
    ] {
        assert!(operators.contains(&op), "CRS should use @{}", op.name());
    }
    assert!(ctls > 0 && regex_selectors > 0);
}

#[test]
fn commented_out_crs_examples_parse_too() {
    let mut files = vec![crs_dir().join("crs-setup.conf.example")];
    files.push(crs_dir().join("rules/REQUEST-900-EXCLUSION-RULES-BEFORE-CRS.conf.example"));
    files.push(crs_dir().join("rules/RESPONSE-999-EXCLUSION-RULES-AFTER-CRS.conf.example"));
    let mut parsed = 0;
    for file in files {
        let text = fs::read_to_string(&file).unwrap();
        for block in commented_examples(&text) {
            let directives = parse_str(&block, &file).unwrap_or_else(|e| panic!("{e}\n{block}"));
            parsed += directives.len();
        }
    }
    assert!(parsed > 40, "only {parsed} commented examples found");
}

/// Uncommented copies of `# SecXxx ...` example blocks (prose such as
/// `# SecRuleRemoveById -> place in ...` is skipped).
fn commented_examples(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut blocks = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let body = lines[i]
            .strip_prefix('#')
            .map(str::trim_start)
            .unwrap_or("");
        let name = body.split_whitespace().next().unwrap_or("");
        if directive_names().any(|n| n == name) && body.len() > name.len() {
            let mut block = vec![body];
            while block.last().unwrap().ends_with('\\') && i + 1 < lines.len() {
                i += 1;
                block.push(lines[i].strip_prefix('#').unwrap_or(lines[i]));
            }
            let joined = block.join("\n");
            if !joined.contains("->") {
                blocks.push(joined);
            }
        }
        i += 1;
    }
    blocks
}

/// The templates an action carries, for checks over the whole rule set.
fn action_templates(action: &Action) -> Vec<&Template> {
    match action {
        Action::Msg(t) | Action::LogData(t) | Action::Tag(t) | Action::Redirect(t) => vec![t],
        Action::SetVar(SetVar { var, op }) => match op {
            SetVarOp::Set(v) | SetVarOp::Add(v) | SetVarOp::Sub(v) => vec![&var.key, v],
            SetVarOp::SetToOne | SetVarOp::Delete => vec![&var.key],
        },
        Action::InitCol { key, .. } => vec![key],
        _ => Vec::new(),
    }
}

#[test]
fn every_crs_macro_is_recognised() {
    let directives = load_crs();
    let mut macros = 0;
    for d in &directives {
        let (actions, operator) = match &d.kind {
            DirectiveKind::SecRule(rule) => (&rule.actions, Some(&rule.operator)),
            DirectiveKind::SecAction(actions) => (actions, None),
            _ => continue,
        };
        let templates = actions
            .iter()
            .flat_map(action_templates)
            .chain(operator.map(|o| &o.argument));
        for t in templates {
            let written = t.raw().matches("%{").count();
            assert_eq!(t.macros().count(), written, "{}: `{}`", d.location, t.raw());
            macros += written;
        }
    }
    assert!(macros > 1000, "only {macros} macros in CRS");
}
