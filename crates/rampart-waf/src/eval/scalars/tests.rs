//! Stable scalars from the shared request line, and the response body's
//! invalidation.

use crate::parser::Variable;
use crate::{RuleSet, Transaction};

fn ids(tx: &Transaction<'_>) -> Vec<u64> {
    tx.matched_rules().iter().map(|m| m.id).collect()
}

fn value(tx: &Transaction<'_>, var: Variable) -> Option<Vec<u8>> {
    tx.scalar_shared(var).map(|v| v.to_vec())
}

fn text(tx: &Transaction<'_>, var: Variable) -> String {
    String::from_utf8(value(tx, var).expect("a value")).unwrap()
}

#[test]
fn request_line_scalars_have_their_values() {
    let set = RuleSet::from_text("SecRuleEngine On").unwrap();
    let cases = [
        // (method, uri, protocol, URI, FILENAME, BASENAME, QUERY_STRING)
        (
            "GET",
            "/a/b.php?x=1&y=2",
            "HTTP/1.1",
            "/a/b.php?x=1&y=2",
            "/a/b.php",
            "b.php",
            "x=1&y=2",
        ),
        (
            "POST", "/plain", "HTTP/1.0", "/plain", "/plain", "plain", "",
        ),
        ("GET", "/empty?", "HTTP/2", "/empty?", "/empty", "empty", ""),
        (
            "PROPFIND",
            "/d%2Fe/f%41",
            "HTTP/3",
            "/d%2Fe/f%41",
            "/d/e/fA",
            "fA",
            "",
        ),
        (
            "get",
            "http://h:8080/p/q?z",
            "http/1.1",
            "/p/q?z",
            "/p/q",
            "q",
            "z",
        ),
        (
            "GET",
            "/w\\in.txt",
            "HTTP/1.1",
            "/w\\in.txt",
            "/w\\in.txt",
            "in.txt",
            "",
        ),
    ];
    for (method, uri, protocol, path_query, filename, basename, query) in cases {
        let mut tx = Transaction::new(&set);
        tx.set_connection("192.0.2.1", 1234, "198.51.100.2", 443);
        // A first request line, replaced: nothing of it may remain.
        tx.set_request_line("DELETE", "/old?old=1", "HTTP/0.9");
        let _ = value(&tx, Variable::RequestLine);
        let _ = value(&tx, Variable::RequestFilename);
        tx.set_request_line(method, uri, protocol);
        tx.add_request_header("Host", b"example.com:8443");
        assert_eq!(text(&tx, Variable::RequestMethod), method);
        assert_eq!(text(&tx, Variable::RequestProtocol), protocol);
        assert_eq!(text(&tx, Variable::RequestUriRaw), uri);
        assert_eq!(text(&tx, Variable::RequestUri), path_query, "{uri}");
        assert_eq!(text(&tx, Variable::RequestFilename), filename, "{uri}");
        assert_eq!(text(&tx, Variable::RequestBasename), basename, "{uri}");
        assert_eq!(text(&tx, Variable::QueryString), query, "{uri}");
        let line = format!("{method} {uri} {protocol}");
        assert_eq!(text(&tx, Variable::RequestLine), line);
        assert_eq!(text(&tx, Variable::RemoteAddr), "192.0.2.1");
        assert_eq!(text(&tx, Variable::ServerAddr), "198.51.100.2");
        assert_eq!(text(&tx, Variable::ServerName), "example.com");
        // Asked again, from the slots: the same values.
        assert_eq!(text(&tx, Variable::RequestFilename), filename);
        assert_eq!(text(&tx, Variable::RequestLine), line);
    }
}

#[test]
fn stable_scalars_are_shared_not_copied() {
    let set = RuleSet::from_text("SecRuleEngine On").unwrap();
    let mut a = Transaction::new(&set);
    a.set_request_line("GET", "/x", "HTTP/1.1");
    let mut b = Transaction::new(&set);
    b.set_request_line("GET", "/y", "HTTP/1.1");
    let id = |tx: &Transaction<'_>, var| tx.scalar_shared(var).unwrap().identity();
    // Common methods and protocols are one allocation for all.
    assert_eq!(
        id(&a, Variable::RequestMethod),
        id(&b, Variable::RequestMethod)
    );
    assert_eq!(
        id(&a, Variable::RequestProtocol),
        id(&b, Variable::RequestProtocol)
    );
    // Origin-form: URI, raw URI and (no query, no `%`) file name share one.
    let uri = id(&a, Variable::RequestUri);
    assert_eq!(uri, id(&a, Variable::RequestUriRaw));
    assert_eq!(uri, id(&a, Variable::RequestFilename));
    assert_ne!(uri, id(&b, Variable::RequestUri));
    // Each slot holds its own variable (no two share one).
    let all = [
        Variable::RequestFilename,
        Variable::RequestBasename,
        Variable::RequestMethod,
        Variable::RequestProtocol,
        Variable::RequestUri,
        Variable::RequestUriRaw,
        Variable::QueryString,
        Variable::RequestLine,
        Variable::RemoteAddr,
        Variable::ServerAddr,
        Variable::ServerName,
        Variable::RequestBody,
        Variable::ResponseBody,
    ];
    let mut slots: Vec<usize> = all
        .iter()
        .map(|v| super::stable_index(*v).unwrap())
        .collect();
    slots.sort_unstable();
    slots.dedup();
    assert_eq!(slots.len(), all.len());
    assert!(slots.iter().all(|s| *s < super::STABLE));
}

fn response_rules(access: &str) -> RuleSet {
    RuleSet::from_text(&format!(
        "SecRuleEngine On\nSecResponseBodyAccess {access}\n\
         SecResponseBodyMimeType text/plain\n\
         SecRule REQUEST_URI \"@streq /r\" \"id:1,phase:4,pass\"\n\
         SecRule RESPONSE_BODY \"@rx early\" \"id:2,phase:4,pass\"\n\
         SecRule RESPONSE_BODY \"@rx late\" \"id:3,phase:5,pass\"\n\
         SecRule RESPONSE_BODY \"^$\" \"id:4,phase:4,pass\"\n\
         SecRule RESPONSE_HEADERS:X-Off \"@streq 1\" \
             \"id:5,phase:3,pass,ctl:responseBodyAccess=Off\""
    ))
    .unwrap()
}

fn respond<'r>(set: &'r RuleSet, off_header: bool) -> Transaction<'r> {
    let mut tx = Transaction::new(set);
    tx.set_request_line("GET", "/r", "HTTP/1.1");
    tx.process_request_headers();
    tx.process_request_body();
    tx.set_response_status(200, "HTTP/1.1");
    tx.add_response_header("Content-Type", b"text/plain");
    if off_header {
        tx.add_response_header("X-Off", b"1");
    }
    tx
}

#[test]
fn a_body_appended_after_phase_4_is_seen_by_phase_5() {
    // Phase 4 reads (and keeps) RESPONSE_BODY; a later chunk must still
    // reach phase 5: appending it forgets what was kept.
    let set = response_rules("On");
    let mut tx = respond(&set, false);
    tx.process_response_headers();
    tx.append_response_body(b"early ");
    tx.process_response_body();
    tx.append_response_body(b"late");
    tx.process_logging();
    assert_eq!(ids(&tx), [1, 2, 3]);
}

#[test]
fn an_uninspected_body_leaves_the_response_body_empty() {
    let set = response_rules("Off");
    let mut tx = respond(&set, false);
    tx.process_response_headers();
    tx.append_response_body(b"early late");
    tx.process_response_body();
    tx.process_logging();
    assert_eq!(ids(&tx), [1, 4]);
}

#[test]
fn a_body_read_before_inspection_was_turned_off_is_dropped_in_phase_4() {
    let set = response_rules("On");
    let mut tx = respond(&set, true);
    // Appended while inspected; phase 3 then turns inspection off.
    tx.append_response_body(b"early late");
    tx.process_response_headers();
    tx.process_response_body();
    tx.process_logging();
    assert_eq!(ids(&tx), [5, 1, 4]);
}

#[test]
fn cleared_slots_are_computed_again() {
    let set = RuleSet::from_text("SecRuleEngine On").unwrap();
    let mut tx = Transaction::new(&set);
    tx.set_connection("192.0.2.1", 1, "198.51.100.2", 2);
    tx.set_request_line("GET", "/a", "HTTP/1.1");
    tx.add_request_header("Host", b"one.example");
    assert_eq!(text(&tx, Variable::ServerName), "one.example");
    assert_eq!(text(&tx, Variable::RemoteAddr), "192.0.2.1");
    // Each setter forgets what was computed from the old inputs.
    tx.set_connection("192.0.2.9", 1, "198.51.100.2", 2);
    assert_eq!(text(&tx, Variable::RemoteAddr), "192.0.2.9");
    assert_eq!(text(&tx, Variable::ServerName), "one.example");
    tx.set_request_line("GET", "/b", "HTTP/1.1");
    assert_eq!(text(&tx, Variable::RequestUri), "/b");
    assert_eq!(text(&tx, Variable::RemoteAddr), "192.0.2.9");
    let mut cache = tx.scalar_cache.borrow_mut();
    cache.clear();
    assert!(cache.slots.iter().all(Option::is_none));
    assert_eq!(cache.filled, 0);
}
