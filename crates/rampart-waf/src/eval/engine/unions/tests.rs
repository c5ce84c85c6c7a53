//! The unions' visit of the stored collections against variable
//! resolution, and the keyed checks that read values in place.

use super::{stored, whole};
use crate::parser::{Selector, Target, Variable};
use crate::{RuleSet, Transaction};

fn rules(text: &str) -> RuleSet {
    RuleSet::from_text(&format!(
        "SecRuleEngine On\nSecRequestBodyAccess On\n{text}"
    ))
    .unwrap()
}

/// A request with values in every stored collection: GET and POST
/// arguments (one name in both), headers and cookies, with mixed case.
fn full_request(set: &RuleSet) -> Transaction<'_> {
    let mut tx = Transaction::new(set);
    tx.set_request_line("POST", "/p?a=1&Both=get", "HTTP/1.1");
    tx.add_request_header("Content-Type", b"application/x-www-form-urlencoded");
    tx.add_request_header("X-Test", b"one");
    tx.add_request_header("x-test", b"two");
    tx.add_request_header("Cookie", b"sid=abc; Theme=dark");
    tx.append_request_body(b"both=post&b=2");
    tx.process_request_body();
    tx
}

const STORED: [Variable; 10] = [
    Variable::Args,
    Variable::ArgsGet,
    Variable::ArgsPost,
    Variable::ArgsNames,
    Variable::ArgsGetNames,
    Variable::ArgsPostNames,
    Variable::RequestHeaders,
    Variable::RequestHeadersNames,
    Variable::RequestCookies,
    Variable::RequestCookiesNames,
];

/// (identity, bytes) of what the visit reads for `var` (selected by
/// `key`), and of what resolving the same target gives.
fn both(tx: &Transaction<'_>, var: Variable, key: Option<&str>) -> [Vec<(usize, Vec<u8>)>; 2] {
    let mut visited = Vec::new();
    let found = stored(&tx.req, var).expect("a stored variable");
    found.each(key, |value| {
        visited.push((value.identity().0, value.bytes().to_vec()));
        true
    });
    let target = Target {
        selector: key.map(|k| Selector::Key(k.to_string())),
        ..whole(var)
    };
    let mut values = Vec::new();
    tx.target_values(&target, &mut values);
    let resolved = values
        .iter()
        .map(|v| (v.value.identity().0, v.value.to_vec()))
        .collect();
    [visited, resolved]
}

/// The visit reads the very values (same allocations, same order) that
/// variable resolution gives for the whole variable and for a key
/// selector, for every variable it serves; the unions built from it are
/// then those built from resolved values.
#[test]
fn the_visit_reads_the_values_resolution_gives() {
    let set = rules("SecAction \"id:1,phase:1,pass\"");
    let tx = full_request(&set);
    for var in STORED {
        let [visited, resolved] = both(&tx, var, None);
        assert!(!visited.is_empty(), "{var:?} has values");
        assert_eq!(visited, resolved, "{var:?}");
    }
    // Key selectors: compared ignoring case, every value under the key.
    let keyed = [
        (Variable::RequestHeaders, "X-TEST", 2),
        (Variable::Args, "both", 2),
        (Variable::ArgsPost, "BOTH", 1),
        (Variable::RequestCookies, "theme", 1),
        (Variable::RequestCookiesNames, "SID", 1),
        (Variable::ArgsNames, "nothing", 0),
    ];
    for (var, key, n) in keyed {
        let [visited, resolved] = both(&tx, var, Some(key));
        assert_eq!(visited.len(), n, "{var:?}:{key}");
        assert_eq!(visited, resolved, "{var:?}:{key}");
    }
    // Scalars and other variables take the general path.
    assert!(stored(&tx.req, Variable::RequestUri).is_none());
    assert!(stored(&tx.req, Variable::Files).is_none());
}

/// Links ruled out (or not) through unions and keyed checks whose values
/// need a transformation of their bits chain (`t:urlDecodeUni` on `%61`:
/// the values left for the general path after the visit) and those that
/// need none, with the same outcome as with the shortcuts off. (Arguments
/// are URL-decoded once by the parser: `%2561` arrives as `%61`.)
#[test]
fn unions_and_keyed_checks_see_transformed_values() {
    let mut set = rules(
        "SecRule ARGS_POST \"@rx attack\" \"id:1,phase:2,pass,t:urlDecodeUni\"\n\
         SecRule REQUEST_HEADERS:X-Foo \"@rx attack\" \"id:2,phase:1,pass,t:urlDecodeUni\"\n\
         SecRule ARGS_NAMES \"@rx evil\" \"id:3,phase:2,pass,t:urlDecodeUni\"\n\
         SecRule REQUEST_COOKIES \"@rx attack\" \"id:4,phase:1,pass\"",
    );
    type Case<'a> = (&'a str, &'a [(&'a str, &'a [u8])], &'a [u8], &'a [u64]);
    let cases: [Case; 6] = [
        ("/?q=%2561ttack", &[("X-Bar", b"%61ttack")], b"p=calm", &[]),
        ("/", &[("X-Foo", b"An %61ttack")], b"p=%2561ttack", &[2, 1]),
        (
            "/",
            &[("x-foo", b"calm"), ("X-FOO", b"%61ttack")],
            b"",
            &[2],
        ),
        ("/", &[("X-Foo", b"attack")], b"q=1&p=attack", &[2, 1]),
        ("/?%2565vil=1", &[("Cookie", b"a=attack")], b"", &[4, 3]),
        (
            "/",
            &[("Cookie", b"attack=1")],
            b"%2565vil=%2561ttack",
            &[1, 3],
        ),
    ];
    for on in [true, false] {
        set.set_prefilter(on);
        for (uri, headers, body, want) in cases {
            let mut tx = Transaction::new(&set);
            tx.set_request_line("POST", uri, "HTTP/1.1");
            tx.add_request_header("Content-Type", b"application/x-www-form-urlencoded");
            for (name, value) in headers {
                tx.add_request_header(name, value);
            }
            tx.append_request_body(body);
            tx.process_request_body();
            let ids: Vec<u64> = tx.matched_rules().iter().map(|m| m.id).collect();
            assert_eq!(ids, want, "{uri} {headers:?} (shortcuts {on})");
        }
    }
}
