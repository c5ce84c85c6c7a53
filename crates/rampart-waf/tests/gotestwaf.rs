//! rampart's built-in rule set against GoTestWAF v0.5.7's test cases.
//!
//! Every payload of `shared/corpora/gotestwaf/testcases/<set>/<case>.yml` is
//! encoded with each of the case's encoders and placed in the request each
//! of its placeholders builds (the request shapes GoTestWAF's placeholders
//! produce: a random hex parameter or header name, a JSON body with
//! `\uXXXX`-escaped strings, a SOAP envelope with XML-escaped text, a
//! length-prefixed protobuf gRPC frame …). Each request runs through a
//! [`Transaction`] with the built-in set at paranoia level 1; a 403 is a
//! block. Attacks (every set but `false-pos`) should be blocked, `false-pos`
//! should pass. Run with `--nocapture` for the table and the misses.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use rampart_waf::builtin::builtin_rule_set;
use rampart_waf::{RuleSet, Transaction};

/// Floors at what the built-in set achieves (percent of requests).
const MIN_ATTACKS_BLOCKED: f64 = 100.0;
const MAX_BENIGN_BLOCKED: f64 = 0.0;

fn corpus_dir() -> PathBuf {
    PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR")
            .expect("run by cargo, which sets CARGO_MANIFEST_DIR"),
    )
    .join("../../../shared/corpora/gotestwaf/testcases")
}

/// One HTTP request as a client would send it.
struct Req {
    method: String,
    uri: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

impl Req {
    fn new(method: &str, uri: String) -> Req {
        Req {
            method: method.into(),
            uri,
            headers: vec![
                ("Host".into(), b"localhost:8080".to_vec()),
                ("User-Agent".into(), b"Go-http-client/1.1".to_vec()),
                ("Accept-Encoding".into(), b"gzip".to_vec()),
            ],
            body: Vec::new(),
        }
    }

    fn header(mut self, name: &str, value: &str) -> Req {
        self.set_header(name, value);
        self
    }

    fn set_header(&mut self, name: &str, value: &str) {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.headers.push((name.into(), value.as_bytes().to_vec()));
    }

    fn body(mut self, body: impl Into<Vec<u8>>) -> Req {
        self.body = body.into();
        let len = self.body.len().to_string();
        self.set_header("Content-Length", &len);
        self
    }
}

/// A deterministic stand-in for GoTestWAF's random hex names (5 bytes).
fn random_hex(n: &mut u64) -> String {
    *n = n
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    format!("{:010x}", *n >> 24 & 0xff_ffff_ffff)
}

/// Go's `url.QueryEscape`.
fn query_escape(s: &str) -> String {
    let mut out = String::new();
    for &b in s.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// GoTestWAF's encoders.
fn encode(encoder: &str, payload: &str) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    match encoder {
        "Plain" | "gRPC" => payload.to_string(),
        "URL" => query_escape(payload),
        "Base64" => b64.encode(payload),
        "Base64Flat" => b64.encode(payload).replace('=', ""),
        "JSUnicode" => js_unicode(payload),
        "XMLEntity" => xml_entity(payload),
        other => panic!("unknown encoder {other}"),
    }
}

/// Every UTF-16 code unit as `\uXXXX`.
fn js_unicode(s: &str) -> String {
    s.encode_utf16().map(|u| format!("\\u{u:04x}")).collect()
}

/// Go's `xml.Encoder.Encode(string)`: `<string>…</string>` with
/// `EscapeText`'s escapes.
fn xml_entity(s: &str) -> String {
    let mut out = String::from("<string>");
    for c in s.chars() {
        match c {
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\t' => out.push_str("&#x9;"),
            '\n' => out.push_str("&#xA;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
    out.push_str("</string>");
    out
}

const SOAP_TEMPLATE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
	xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
	<soapenv:Header>
		<ns1:RequestHeader soapenv:actor="http://schemas.xmlsoap.org/soap/actor/next"
			soapenv:mustUnderstand="0" xmlns:ns1="https://www.google.com/apis/ads/publisher/v202002">
		</ns1:RequestHeader>
	</soapenv:Header>
	<soapenv:Body>
		<getAdUnitsByStatement xmlns="https://www.google.com/apis/ads/publisher/v202002">
			<filterStatement>
				<NAME>VALUE</NAME>
			</filterStatement>
		</getAdUnitsByStatement>
	</soapenv:Body>
</soapenv:Envelope>"#;

/// The request a placeholder builds around an (encoded) payload.
fn build(placeholder: &str, config: &serde_yaml::Value, payload: &str, seed: &mut u64) -> Req {
    let name = random_hex(seed);
    match placeholder {
        "URLParam" => Req::new("GET", format!("/?{name}={payload}")),
        "URLPath" => Req::new("GET", format!("/{payload}")),
        "Header" => Req::new("GET", "/".into()).header(&format!("X-{name}"), payload),
        "UserAgent" => Req::new("GET", "/".into()).header("User-Agent", payload),
        "HTMLForm" => Req::new("POST", "/".into())
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(format!("{name}={payload}")),
        "HTMLMultipartForm" => {
            let boundary = format!("{}{}{}", random_hex(seed), random_hex(seed), name);
            let body = format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n\
                 {payload}\r\n--{boundary}--\r\n"
            );
            Req::new("POST", "/".into())
                .header(
                    "Content-Type",
                    &format!("multipart/form-data; boundary={boundary}"),
                )
                .body(body)
        }
        "JSONRequest" => Req::new("POST", "/".into())
            .header("Content-Type", "application/json")
            .body(format!(
                "{{\"test\":true, \"{name}\": \"{}\"}}",
                js_unicode(payload)
            )),
        "JSONBody" => Req::new("POST", "/".into())
            .header("Content-Type", "application/json")
            .body(payload),
        "RequestBody" => Req::new("POST", "/".into()).body(payload),
        "XMLBody" => Req::new("POST", "/".into())
            .header("Content-Type", "text/xml")
            .body(payload),
        "SOAPBody" => {
            let name = format!("ab{name}");
            let body = SOAP_TEMPLATE
                .replace("NAME", &name)
                .replace("VALUE", &xml_entity(payload));
            Req::new("POST", "/".into())
                .header(
                    "SOAPAction",
                    "\"http://schemas.xmlsoap.org/soap/actor/next\"",
                )
                .header("Content-Type", "text/xml")
                .body(body)
        }
        "GraphQL" => match config["method"].as_str() {
            Some("GET") => Req::new("GET", format!("/?query={}", query_escape(payload))),
            _ => Req::new("POST", "/".into()).body(payload),
        },
        "gRPC" => {
            // ServiceFooBar/foo(Request{value = 1}) over HTTP/2: one
            // length-prefixed message, field 1 as a length-delimited string.
            let mut msg = vec![0x0a];
            let mut len = payload.len();
            while len >= 0x80 {
                msg.push((len as u8 & 0x7f) | 0x80);
                len >>= 7;
            }
            msg.push(len as u8);
            msg.extend_from_slice(payload.as_bytes());
            let mut frame = vec![0];
            frame.extend_from_slice(&(msg.len() as u32).to_be_bytes());
            frame.extend_from_slice(&msg);
            let mut req = Req::new("POST", "/encoder.ServiceFooBar/foo".into())
                .header("Content-Type", "application/grpc")
                .header("TE", "trailers")
                .body(frame);
            req.headers.retain(|(k, _)| k != "Accept-Encoding");
            req
        }
        "RawRequest" => {
            let sub = |s: &str| s.replace("{{payload}}", payload);
            let method = config["method"].as_str().unwrap_or("GET");
            let path = config["path"].as_str().unwrap_or("/");
            let path = format!("/{}", path.trim_start_matches('/'));
            let mut req = Req::new(method, sub(&path));
            if let Some(map) = config["headers"].as_mapping() {
                for (k, v) in map {
                    req.set_header(k.as_str().unwrap_or(""), &sub(v.as_str().unwrap_or("")));
                }
            }
            match config["body"].as_str() {
                Some(b) if !b.is_empty() => req.body(sub(b)),
                _ => req,
            }
        }
        other => panic!("unknown placeholder {other}"),
    }
}

/// Runs one request: whether it is blocked with a 403, and the ids of the
/// rules that matched.
fn verdict(rules: &RuleSet, req: &Req) -> (bool, Vec<u64>) {
    let mut tx = Transaction::new(rules);
    tx.set_connection("192.0.2.10", 40000, "192.0.2.1", 8080);
    let protocol = if req.uri.starts_with("/encoder.") {
        "HTTP/2.0"
    } else {
        "HTTP/1.1"
    };
    tx.set_request_line(&req.method, &req.uri, protocol);
    for (k, v) in &req.headers {
        tx.add_request_header(k, v);
    }
    tx.process_request_headers();
    if tx.intervention().is_none() {
        tx.append_request_body(&req.body);
        tx.process_request_body();
    }
    let ids = tx
        .matched_rules()
        .iter()
        .filter(|m| m.logged)
        .map(|m| m.id)
        .collect();
    (tx.intervention().is_some_and(|i| i.status == 403), ids)
}

/// A placeholder entry: a name, or a one-key map of name to config.
fn placeholder_of(v: &serde_yaml::Value) -> (String, serde_yaml::Value) {
    match v {
        serde_yaml::Value::String(s) => (s.clone(), serde_yaml::Value::Null),
        serde_yaml::Value::Mapping(m) => {
            let (k, c) = m.iter().next().expect("placeholder map");
            (k.as_str().unwrap_or_default().to_string(), c.clone())
        }
        other => panic!("bad placeholder {other:?}"),
    }
}

#[derive(Default)]
struct Tally {
    total: usize,
    blocked: usize,
    /// (case, placeholder, encoder, payload, matched rule ids) of requests
    /// with the wrong verdict.
    wrong: Vec<(String, String, String, String, Vec<u64>)>,
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.retain(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"));
    v.sort();
    v
}

fn short(s: &str) -> String {
    let flat: String = s
        .chars()
        .map(|c| if c.is_control() { '·' } else { c })
        .collect();
    if flat.chars().count() > 110 {
        let head: String = flat.chars().take(60).collect();
        let tail: String = flat
            .chars()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        format!("{head} … {tail}")
    } else {
        flat
    }
}

#[test]
fn gotestwaf_detection() {
    let root = corpus_dir();
    if !root.is_dir() {
        eprintln!("skipped: no GoTestWAF corpus at {}", root.display());
        return;
    }
    let rules = builtin_rule_set(1).expect("built-in rules load");
    assert!(rules.unsupported().is_empty(), "{:?}", rules.unsupported());
    let mut sets: BTreeMap<String, Tally> = BTreeMap::new();
    let mut seed = 0x5eed_u64;
    let mut sets_dirs: Vec<PathBuf> = fs::read_dir(&root)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    sets_dirs.sort();
    for dir in sets_dirs {
        let set = dir.file_name().unwrap().to_string_lossy().into_owned();
        let benign = set == "false-pos";
        for file in yaml_files(&dir) {
            let case = file.file_stem().unwrap().to_string_lossy().into_owned();
            // GoTestWAF's YAML reader accepts `\'` in double-quoted
            // scalars (an apostrophe); libyaml does not.
            let text = fs::read_to_string(&file).unwrap().replace("\\'", "'");
            let doc: serde_yaml::Value =
                serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            let payloads = doc["payload"].as_sequence().cloned().unwrap_or_default();
            let encoders = doc["encoder"].as_sequence().cloned().unwrap_or_default();
            let placeholders = doc["placeholder"]
                .as_sequence()
                .cloned()
                .unwrap_or_default();
            for payload in &payloads {
                let payload = payload.as_str().unwrap_or_default();
                for encoder in &encoders {
                    let encoder = encoder.as_str().unwrap_or("Plain");
                    let encoded = encode(encoder, payload);
                    for ph in &placeholders {
                        let (ph, config) = placeholder_of(ph);
                        let req = build(&ph, &config, &encoded, &mut seed);
                        let (hit, ids) = verdict(&rules, &req);
                        let tally = sets.entry(set.clone()).or_default();
                        tally.total += 1;
                        tally.blocked += usize::from(hit);
                        if hit == benign {
                            tally.wrong.push((
                                case.clone(),
                                ph.clone(),
                                encoder.to_string(),
                                payload.to_string(),
                                ids,
                            ));
                        }
                    }
                }
            }
        }
    }

    let pct = |a: usize, b: usize| {
        if b == 0 {
            0.0
        } else {
            100.0 * a as f64 / b as f64
        }
    };
    let (mut att_total, mut att_blocked) = (0, 0);
    println!("\n| set | requests | blocked | blocked % |\n| --- | ---: | ---: | ---: |");
    for (set, t) in &sets {
        println!(
            "| {set} | {} | {} | {:.1}% |",
            t.total,
            t.blocked,
            pct(t.blocked, t.total)
        );
        if set != "false-pos" {
            att_total += t.total;
            att_blocked += t.blocked;
        }
    }
    let benign = sets
        .get("false-pos")
        .map_or((0, 0), |t| (t.blocked, t.total));
    let attacks_pct = pct(att_blocked, att_total);
    let benign_pct = pct(benign.0, benign.1);
    println!(
        "\nattacks blocked: {att_blocked}/{att_total} = {attacks_pct:.1}%\n\
         false-pos blocked: {}/{} = {benign_pct:.1}%",
        benign.0, benign.1
    );
    for (set, t) in &sets {
        if t.wrong.is_empty() {
            continue;
        }
        let what = if set == "false-pos" {
            "blocked"
        } else {
            "missed"
        };
        println!("\n## {set}: {} {what}", t.wrong.len());
        let mut by_ph: BTreeMap<&str, Vec<_>> = BTreeMap::new();
        for w in &t.wrong {
            by_ph.entry(w.1.as_str()).or_default().push(w);
        }
        for (ph, list) in by_ph {
            println!("  {ph}:");
            for (case, _, enc, payload, ids) in list {
                let ids = if ids.is_empty() {
                    String::new()
                } else {
                    format!(" (rules {ids:?})")
                };
                println!("    {case} [{enc}] {}{ids}", short(payload));
            }
        }
    }
    assert!(
        attacks_pct >= MIN_ATTACKS_BLOCKED,
        "attacks blocked {attacks_pct:.1}% < {MIN_ATTACKS_BLOCKED}%"
    );
    assert!(
        benign_pct <= MAX_BENIGN_BLOCKED,
        "false-pos blocked {benign_pct:.1}% > {MAX_BENIGN_BLOCKED}%"
    );
}
