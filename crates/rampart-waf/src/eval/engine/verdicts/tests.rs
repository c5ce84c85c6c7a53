//! Links ruled out by the memo's verdicts: they are ruled out once every
//! value they would test has the verdict, and never otherwise.

use crate::compile::RuleSet;

use super::super::test_support::get;

/// Runs a GET through phases 1 and 2: whether it was blocked, and how many
/// links the verdicts ruled out.
fn run(rules: &RuleSet, uri: &str, headers: &[(&str, &str)]) -> (bool, u32) {
    let tx = get(rules, uri, headers);
    (tx.intervention().is_some(), tx.verdict_rejections)
}

/// Runs a benign request twice: the first run tests the link and gives
/// its values the verdict, the second rules the link out on it.
fn learns(rules: &RuleSet, uri: &str, headers: &[(&str, &str)]) {
    assert_eq!(run(rules, uri, headers), (false, 0), "no verdict yet");
    assert_eq!(run(rules, uri, headers), (false, 1), "ruled out");
}

fn rules(text: &str) -> RuleSet {
    RuleSet::from_text(&format!("SecRuleEngine On\n{text}")).expect("loads")
}

/// `@streq` has no prefilter, so nothing but the verdicts can rule the
/// link out before its values are resolved.
const ARGS_EVIL: &str = r#"SecRule ARGS|ARGS_NAMES "@streq evil" "id:1,phase:2,deny,status:403""#;

#[test]
fn repeated_values_rule_the_link_out() {
    let rules = rules(ARGS_EVIL);
    assert_eq!(
        run(&rules, "/?a=fine&b=ok", &[]),
        (false, 0),
        "no verdict yet"
    );
    assert_eq!(run(&rules, "/?a=fine&b=ok", &[]), (false, 1));
    assert_eq!(
        run(&rules, "/?b=ok&a=fine", &[]),
        (false, 1),
        "order is not read"
    );
}

#[test]
fn a_value_without_the_verdict_is_tested() {
    let rules = rules(ARGS_EVIL);
    run(&rules, "/?a=fine&b=ok", &[]);
    assert_eq!(run(&rules, "/?a=fine&b=evil", &[]), (true, 0));
    assert_eq!(run(&rules, "/?a=fine&evil=ok", &[]), (true, 0), "a name");
    // A value the link matched never gets its verdict.
    assert_eq!(run(&rules, "/?a=fine&b=evil", &[]), (true, 0));
    assert_eq!(run(&rules, "/?a=fine&b=ok", &[]), (false, 1));
}

/// A key selector: the link tests only the values under its key, so the
/// verdicts of those alone decide (the other headers never get the bit).
#[test]
fn keyed_targets_read_the_verdicts_of_their_key() {
    let rules =
        rules(r#"SecRule REQUEST_HEADERS:User-Agent "@streq evil" "id:1,phase:2,deny,status:403""#);
    let fine = [("User-Agent", "fine"), ("Accept", "evil")];
    learns(&rules, "/", &fine);
    let evil = [("user-agent", "evil"), ("Accept", "x")];
    assert_eq!(run(&rules, "/", &evil), (true, 0));
    // Two values under the key: both need the verdict.
    let both = [("User-Agent", "fine"), ("User-Agent", "evil")];
    assert_eq!(run(&rules, "/", &both), (true, 0));
}

/// A variable a `ctl` removed from the rule is never tested, so it has no
/// verdict; it does not keep the link from being ruled out, and what the
/// link still tests is tested.
#[test]
fn variables_removed_by_ctl_are_passed_over() {
    let rules = rules(
        r#"
SecAction "id:1,phase:1,pass,nolog,ctl:ruleRemoveTargetById=2;REQUEST_FILENAME"
SecRule REQUEST_FILENAME|ARGS "@streq evil" "id:2,phase:2,deny,status:403"
"#,
    );
    learns(&rules, "/x?a=fine", &[]);
    assert_eq!(run(&rules, "/evil?a=fine", &[]), (false, 1), "removed");
    assert_eq!(run(&rules, "/x?a=evil", &[]), (true, 0));
}

/// Values a link's own exclusions remove are never tested, so they never
/// get its verdict; they do not keep the link from being ruled out, and
/// the values it does test still decide.
#[test]
fn values_the_link_excludes_are_passed_over() {
    let rules = rules(
        r#"SecRule REQUEST_HEADERS|!REQUEST_HEADERS:Cookie|!REQUEST_HEADERS:/^x-skip/ "@streq evil" "id:1,phase:2,deny,status:403""#,
    );
    let headers = [
        ("Cookie", "evil"),
        ("X-Skip-Me", "evil"),
        ("Accept", "fine"),
    ];
    learns(&rules, "/", &headers);
    let tested = [("Cookie", "evil"), ("Accept", "evil")];
    assert_eq!(run(&rules, "/", &tested), (true, 0));
}

/// A negated link without `capture` has a verdict: "finds nothing" means
/// its operator matched, which writes nothing.
#[test]
fn negated_links_without_capture_are_remembered() {
    let rules = rules(
        r#"SecRule REQUEST_HEADERS:Content-Type "!@rx ^application/json$" "id:1,phase:2,deny,status:403""#,
    );
    let json = [("Content-Type", "application/json")];
    let text = [("Content-Type", "text/plain")];
    learns(&rules, "/", &json);
    assert_eq!(run(&rules, "/", &text), (true, 0));
    assert_eq!(run(&rules, "/", &text), (true, 0));
    assert_eq!(run(&rules, "/", &[]), (false, 1), "no value: nothing found");
}

/// The same requests, in turn, with the memo on and off: the same rules
/// match (the verdicts only skip work), over links of every plan shape.
#[test]
fn results_are_those_without_the_memo() {
    let text = r#"
SecAction "id:1,phase:1,pass,nolog,ctl:ruleRemoveTargetById=5;REQUEST_FILENAME"
SecRule ARGS|ARGS_NAMES|REQUEST_COOKIES "@streq evil" "id:2,phase:2,pass,log"
SecRule REQUEST_HEADERS:User-Agent|REQUEST_HEADERS:Referer "@contains bad" "id:3,phase:2,pass,log"
SecRule REQUEST_HEADERS:Accept "!@rx ^text/" "id:4,phase:2,pass,log"
SecRule REQUEST_FILENAME|ARGS|XML:/* "@endsWith .php" "id:5,phase:2,pass,log"
SecRule QUERY_STRING|REQUEST_URI "@contains %27" "id:6,phase:2,pass,log"
"#;
    let on = rules(text);
    let mut off = rules(text);
    off.set_value_memo(false);
    let requests: [(&str, &[(&str, &str)]); 8] = [
        ("/a?x=1", &[("User-Agent", "ok"), ("Accept", "text/html")]),
        ("/a?x=1", &[("User-Agent", "ok"), ("Accept", "text/html")]),
        ("/a.php?x=evil", &[("User-Agent", "bad"), ("Accept", "x/y")]),
        ("/a?x=1", &[("User-Agent", "ok"), ("Accept", "text/html")]),
        (
            "/a?x=b.php",
            &[("Referer", "so bad"), ("Accept", "text/html")],
        ),
        ("/a?x=%27", &[("User-Agent", "ok"), ("Cookie", "s=evil")]),
        ("/a?x=1", &[("User-Agent", "ok"), ("Accept", "text/html")]),
        (
            "/a?evil=1",
            &[("User-Agent", "ok"), ("Accept", "text/html")],
        ),
    ];
    for _ in 0..2 {
        for (uri, headers) in requests {
            assert_eq!(
                matched(&on, uri, headers),
                matched(&off, uri, headers),
                "{uri}"
            );
        }
    }
}

/// The ids of the rules that matched.
fn matched(rules: &RuleSet, uri: &str, headers: &[(&str, &str)]) -> Vec<u64> {
    let tx = get(rules, uri, headers);
    tx.matched_rules().iter().map(|m| m.id).collect()
}
