//! Compiler tests: chains, defaults, markers, removals, updates, reports.

use super::*;
use crate::parser::Variable;

fn load(text: &str) -> RuleSet {
    RuleSet::from_text(text).unwrap()
}

#[test]
fn chains_are_linked_and_defaults_merged() {
    let set = load(
        "SecDefaultAction \"phase:2,log,auditlog,deny,status:403,t:lowercase\"\n\
         SecRule ARGS \"@rx a\" \"id:1,phase:2,block,chain,t:urlDecode\"\n\
         SecRule ARGS_NAMES \"@pm x y\" \"t:none\"\n\
         SecRule ARGS \"@rx b\" \"id:2,phase:2,pass,nolog\"",
    );
    assert_eq!(set.rules().len(), 2);
    let head = &set.rules()[0];
    assert_eq!(head.disruptive, Disruptive::Deny);
    assert_eq!(head.status, Some(403));
    let names: Vec<_> = head.transforms.iter().map(|t| t.name()).collect();
    assert_eq!(names, ["lowercase", "urlDecode"]);
    let child = head.chain.as_deref().unwrap();
    assert!(child.transforms.is_empty());
    assert_eq!(child.targets[0].variable, Variable::ArgsNames);
    assert_eq!(set.rules()[1].disruptive, Disruptive::Pass);
    assert!(!set.rules()[1].log);
}

#[test]
fn markers_appear_in_every_phase() {
    let set = load(
        "SecRule ARGS \"@rx a\" \"id:1,phase:1,pass,skipAfter:END\"\n\
         SecMarker END\n\
         SecAction \"id:2,phase:1,pass\"",
    );
    let p1 = set.phase(Phase::RequestHeaders);
    assert_eq!(p1.len(), 3);
    assert!(matches!(&p1[1], Entry::Marker(m) if &**m == "END"));
    assert_eq!(set.phase(Phase::RequestBody).len(), 1);
}

#[test]
fn removals_and_updates_apply_to_earlier_rules() {
    let set = load(
        "SecRule ARGS \"@rx a\" \"id:1,phase:2,pass,tag:'x'\"\n\
         SecRule ARGS \"@rx a\" \"id:2,phase:2,pass\"\n\
         SecRule ARGS \"@rx a\" \"id:3,phase:2,pass\"\n\
         SecRuleRemoveByTag x\n\
         SecRuleUpdateTargetById 2 \"!ARGS:foo\"\n\
         SecRuleUpdateActionById 3 \"deny\"\n\
         SecRuleRemoveById 4\n\
         SecRule ARGS \"@rx a\" \"id:4,phase:2,pass\"",
    );
    let ids: Vec<u64> = set.rules().iter().map(|r| r.id).collect();
    assert_eq!(ids, [2, 3, 4]);
    assert_eq!(set.rule(2).unwrap().exclusions.len(), 1);
    assert_eq!(set.rule(3).unwrap().disruptive, Disruptive::Deny);
}

#[test]
fn unsupported_patterns_are_reported_not_fatal() {
    let set = load(
        "SecRule ARGS \"@rx (a)\\1\" \"id:7,phase:2,pass\"\n\
         SecRule ARGS \"@rx ok\" \"id:8,phase:2,pass\"",
    );
    assert_eq!(set.rules().len(), 1);
    assert_eq!(set.unsupported()[0].id, 7);
    assert!(set.unsupported()[0].reason.contains("backreference"));
}

#[test]
fn errors_carry_locations() {
    let err = RuleSet::from_text("SecRule ARGS \"@rx a\" \"id:1,chain\"").unwrap_err();
    assert!(err.to_string().contains("<inline>:1"), "{err}");
    let err = RuleSet::from_text("SecRule ARGS \"@rx a\" \"phase:1\"").unwrap_err();
    assert!(err.to_string().contains("no id"), "{err}");
}

#[test]
fn engine_settings() {
    let set = load("SecRuleEngine DetectionOnly\nSecRequestBodyAccess On");
    assert_eq!(
        set.config().rule_engine,
        crate::parser::EngineMode::DetectionOnly
    );
    assert!(set.config().request_body_access);
}

/// A loaded selector skips its regex on keys without its literal, and
/// still decides exactly as the regex does (ignoring case).
#[test]
fn selector_literals_agree_with_the_regex() {
    let set = load(
        "SecRule TX:/MULTIPART_HEADERS_CONTENT_TYPES_*/ \"@rx x\" \"id:1,phase:2,pass\"\n\
         SecRule ARGS:/^(?:id|Ref)_[0-9]+$/ \"@rx x\" \"id:2,phase:2,pass\"\n\
         SecRule TX:/^header_name_920450_/ \"@rx x\" \"id:3,phase:2,pass\"",
    );
    let pattern = |id| match &set.rule(id).unwrap().targets[0].selector {
        Some(crate::parser::Selector::Regex(r)) => r.clone(),
        other => panic!("rule {id}: {other:?}"),
    };
    // The address of the rule's own text finds the compiled selector.
    let text = |id| {
        let rule = set.rule(id).unwrap();
        match &rule.targets[0].selector {
            Some(crate::parser::Selector::Regex(r)) => r.as_str(),
            _ => unreachable!(),
        }
    };
    assert!(set.selectors.len() >= 3);
    assert!(set.selectors.values().any(|s| s.prefix.is_some()));
    for (id, key, expected) in [
        (1, "multipart_headers_content_types_0", true),
        (1, "MULTIPART_HEADERS_CONTENT_TYPES", true),
        (1, "multipart_headers_content_type", false),
        (1, "anomaly_score", false),
        (2, "ID_12", true),
        (2, "ref_7", true),
        (2, "xid_1", false),
        (2, "ref_", false),
        (3, "header_name_920450_host", true),
        (3, "HEADER_NAME_920450_", true),
        (3, "x_header_name_920450_host", false),
        (3, "header_name_920450", false),
        // The multi-line `^` also matches after a line break.
        (3, "x\nheader_name_920450_a", true),
        (3, "x\nheader_name_9", false),
        // A key that starts with the prefix is picked despite a line break.
        (3, "header_name_920450_a\nb", true),
    ] {
        let loaded = set.selector_matches(text(id), key);
        let fresh = set.selector_matches(&pattern(id), key);
        assert_eq!((loaded, fresh), (expected, expected), "rule {id} on {key}");
        // The store's shortcut, on the forms it is used for: single-line
        // keys in lower case (what a `Store` holds).
        if !key.contains('\n') {
            let lower = key.to_ascii_lowercase();
            let shortcut = set.key_matcher(text(id)).matches_lower_single_line(&lower);
            assert_eq!(shortcut, expected, "rule {id} on {lower} (lower case)");
        }
    }
}

#[test]
fn mixed_case_prefix_selectors_match_lower_case_keys() {
    // `^Header_NAME_` is kept in lower case, so that the plain comparison
    // of `matches_lower_single_line` on a lower-case key ignores case as
    // the regex does.
    let set = load("SecRule TX:/^Header_NAME_/ \"@rx x\" \"id:1,phase:2,pass\"");
    let text = match &set.rule(1).unwrap().targets[0].selector {
        Some(crate::parser::Selector::Regex(r)) => r.as_str(),
        _ => unreachable!(),
    };
    let matcher = set.key_matcher(text);
    assert!(matches!(
        matcher,
        KeyMatcher::Loaded {
            sel: CompiledSelector {
                prefix: Some(_),
                ..
            },
            ..
        }
    ));
    for (key, expected) in [
        ("header_name_host", true),
        ("header_name_", true),
        ("header_nam", false),
        ("xheader_name_host", false),
    ] {
        assert_eq!(matcher.matches_lower_single_line(key), expected, "{key}");
        assert_eq!(matcher.matches(key), expected, "{key}");
    }
}

#[test]
fn whole_value_pattern_matches_every_value_in_full() {
    // What `CompiledOp::RxWhole` assumes of `^.*$` under ModSecurity's
    // flags: the leftmost match is the whole value, for any bytes.
    let re = pcre::compile(operator::WHOLE_VALUE).unwrap();
    let values: [&[u8]; 9] = [
        b"",
        b"host",
        b"\n",
        b"a\nb",
        b"\n\n",
        b"abc\n",
        b"\r\n\x00",
        b"\xff\xfe",
        b"x\x80\ny",
    ];
    for v in values {
        assert_eq!(re.find(v).map(|m| m.range()), Some(0..v.len()), "{v:?}");
        assert_eq!(re.captures_len(), 1);
    }
    let set = load("SecRule ARGS \"@rx ^.*$\" \"id:1,phase:1,pass,capture\"");
    assert!(matches!(set.rules()[0].operator, CompiledOp::RxWhole));
}
