//! Stretches ruled out by the memo's bits: once every value their rules
//! test has the bits, and never when one of those rules would match.

use crate::compile::RuleSet;
use crate::eval::Transaction;

use super::super::test_support::get;

/// Runs a GET through phases 1 and 2: whether it was blocked, and how many
/// stretches the bits ruled out.
fn run(rules: &RuleSet, uri: &str, headers: &[(&str, &str)]) -> (bool, u32) {
    let tx = get(rules, uri, headers);
    (tx.intervention().is_some(), tx.stretch_skips)
}

/// Looks at every stretch on every arrival, so that each step of a test
/// sees what the bits say (the back-off is a matter of cost only).
fn rules(text: &str) -> RuleSet {
    let mut set = RuleSet::from_text(&format!("SecRuleEngine On\n{text}")).expect("loads");
    set.set_stretch_backoff(false);
    set
}

/// Two rules over the arguments, without prefilters (`@streq`): one
/// stretch.
const ARGS_PAIR: &str = r#"
SecRule ARGS "@streq evil" "id:1,phase:2,deny,status:403"
SecRule ARGS_NAMES|ARGS "@streq worse" "id:2,phase:2,deny,status:403"
"#;

#[test]
fn a_quiet_stretch_is_ruled_out_when_its_values_come_again() {
    let rules = rules(ARGS_PAIR);
    assert_eq!(run(&rules, "/?a=fine&b=ok", &[]), (false, 0), "no bits yet");
    assert_eq!(run(&rules, "/?a=fine&b=ok", &[]), (false, 1));
    // The bits are about values, not requests: another mix of them.
    assert_eq!(run(&rules, "/?b=fine", &[]), (false, 1));
}

#[test]
fn a_value_without_the_bits_is_evaluated() {
    let rules = rules(ARGS_PAIR);
    run(&rules, "/?a=fine", &[]);
    assert_eq!(run(&rules, "/?a=fine&b=evil", &[]), (true, 0));
    assert_eq!(run(&rules, "/?worse=fine", &[]), (true, 0), "a name");
    // A request in which some link matched notes nothing.
    assert_eq!(run(&rules, "/?a=fine&c=new&b=evil", &[]), (true, 0));
    assert_eq!(run(&rules, "/?c=new", &[]), (false, 0));
}

/// A value under a key some reader excludes is not tested by it, so it
/// never gets the bit (while another reader tests it, the stretch is
/// evaluated): under another key the same bytes are tested by both.
#[test]
fn values_a_reader_excludes_get_no_bit() {
    let rules = rules(
        r#"
SecRule ARGS|!ARGS:secret "@streq evil" "id:1,phase:2,deny,status:403"
SecRule ARGS "@streq worse" "id:2,phase:2,deny,status:403"
"#,
    );
    assert_eq!(run(&rules, "/?secret=evil", &[]), (false, 0));
    assert_eq!(run(&rules, "/?secret=evil", &[]), (false, 0), "no bit");
    assert_eq!(run(&rules, "/?other=evil", &[]), (true, 0));
}

/// Readers of one header have a bit of their own: a value under another
/// header never gets it.
#[test]
fn keyed_groups_note_only_their_key() {
    let rules = rules(
        r#"
SecRule REQUEST_HEADERS:User-Agent "@streq evil" "id:1,phase:1,deny,status:403"
SecRule REQUEST_HEADERS:Referer "@streq worse" "id:2,phase:1,deny,status:403"
"#,
    );
    let quiet = [("User-Agent", "fine"), ("Accept", "evil")];
    assert_eq!(run(&rules, "/", &quiet), (false, 0));
    assert_eq!(run(&rules, "/", &quiet), (false, 1));
    let swapped = [("user-agent", "evil"), ("Accept", "fine")];
    assert_eq!(run(&rules, "/", &swapped), (true, 0));
}

/// A `ctl` that removes a target (or the whole rule) leaves values
/// untested: they get no bit, and a request without the `ctl` tests them.
#[test]
fn values_a_ctl_removed_get_no_bit() {
    for ctl in ["ruleRemoveTargetById=1;ARGS:a", "ruleRemoveById=1"] {
        let rules = rules(&format!(
            r#"
SecRule REQUEST_HEADERS:X-Trusted "@streq yes" "id:10,phase:1,pass,nolog,ctl:{ctl}"
SecRule ARGS "@streq evil" "id:1,phase:2,deny,status:403"
SecRule ARGS "@streq worse" "id:2,phase:2,deny,status:403"
"#
        ));
        let trusted = [("X-Trusted", "yes")];
        assert_eq!(run(&rules, "/?a=evil", &trusted), (false, 0), "{ctl}");
        assert_eq!(
            run(&rules, "/?a=evil", &trusted),
            (false, 0),
            "{ctl}: no bit"
        );
        assert_eq!(run(&rules, "/?a=evil", &[]), (true, 0), "{ctl}");
    }
}

/// A body-processor variable has no bit: the stretch is ruled out only
/// while it is empty.
#[test]
fn body_processor_variables_must_be_empty() {
    let rules = rules(
        r#"
SecRequestBodyAccess On
SecRule ARGS|FILES_NAMES "@streq evil" "id:1,phase:2,deny,status:403"
SecRule ARGS "@streq worse" "id:2,phase:2,deny,status:403"
"#,
    );
    assert_eq!(run(&rules, "/?a=fine", &[]), (false, 0));
    assert_eq!(run(&rules, "/?a=fine", &[]), (false, 1));
    let mut tx = Transaction::new(&rules);
    tx.set_request_line("POST", "/?a=fine", "HTTP/1.1");
    let body = "--b\r\nContent-Disposition: form-data; name=\"evil\"; filename=\"f.txt\"\r\n\r\nx\r\n--b--\r\n";
    tx.add_request_header("Content-Type", b"multipart/form-data; boundary=b");
    tx.add_request_header("Content-Length", body.len().to_string().as_bytes());
    tx.process_request_headers();
    tx.append_request_body(body.as_bytes());
    tx.process_request_body();
    assert!(tx.intervention().is_some(), "the file name is tested");
    assert_eq!(tx.stretch_skips, 0);
}

/// With the back-off on, a stretch that is never ruled out stops being
/// looked at after three misses, and is looked at again later.
#[test]
fn stretches_that_keep_missing_back_off() {
    let mut rules = rules(ARGS_PAIR);
    rules.set_stretch_backoff(true);
    for n in 0..3 {
        assert_eq!(run(&rules, &format!("/?a=v{n}"), &[]), (false, 0));
    }
    // Missed three times: this arrival does not look, so a value seen
    // before is evaluated rather than ruled out (and noted nothing).
    assert_eq!(run(&rules, "/?a=v0", &[]), (false, 0));
    assert_eq!(run(&rules, "/?a=v0", &[]), (false, 1), "looks again");
}

/// On CRS, a benign request sent again has most of its stretches ruled
/// out, with the same outcome as with the memo off.
#[test]
fn crs_stretches_are_ruled_out_on_a_repeated_benign_request() {
    let dir =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpora/crs");
    let mut with_memo = crate::conformance::crs_rule_set(&dir).expect("CRS loads");
    with_memo.set_stretch_backoff(false);
    let mut without = crate::conformance::crs_rule_set(&dir).expect("CRS loads");
    without.set_value_memo(false);
    let uri = "/api/v1/products?category=books&page=2&sort=price_asc";
    let headers = [
        ("Host", "shop.example.com"),
        (
            "User-Agent",
            "Mozilla/5.0 (X11; Linux x86_64) Firefox/126.0",
        ),
        ("Accept", "text/html,application/xhtml+xml"),
        ("Accept-Language", "en-GB,en;q=0.9"),
        ("Referer", "https://shop.example.com/catalog"),
    ];
    let outcome = |tx: &Transaction| {
        let ids: Vec<u64> = tx.matched_rules().iter().map(|m| m.id).collect();
        (tx.intervention().is_some(), ids)
    };
    let expected = outcome(&get(&without, uri, &headers));
    let first = get(&with_memo, uri, &headers);
    assert_eq!(outcome(&first), expected);
    let again = get(&with_memo, uri, &headers);
    // The first run rules out only stretches that read nothing but empty
    // body-processor variables.
    assert!(
        again.stretch_skips >= first.stretch_skips + 10,
        "{} then {} stretches ruled out",
        first.stretch_skips,
        again.stretch_skips
    );
    assert_eq!(outcome(&again), expected);
}
