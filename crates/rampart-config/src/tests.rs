//! Loading tests: good files load, bad ones are refused with precise errors.

use super::*;

fn no_env(_: &str) -> Option<String> {
    None
}

const GOOD: &str = r#"
[server]
workers = 1

[listeners.main]
address = "127.0.0.1:8080"

[[routes]]
name = "api"
path = { prefix = "/api" }
methods = ["GET", "POST"]
upstream = "backend"

[upstreams.backend]
servers = ["127.0.0.1:9000", "[::1]:9001", "api.internal:443"]
balance = "consistent_hash"
hash_on = "header:x-user"
"#;

#[test]
fn good_config_loads_with_defaults() {
    let c = parse(GOOD, None, no_env).unwrap().config;
    assert_eq!(c.server.workers, 1);
    assert_eq!(c.admin.listen, "127.0.0.1:9901");
    assert_eq!(c.limits.max_headers, 100);
    assert_eq!(c.routes[0].name, "api");
    assert_eq!(c.upstreams["backend"].retries, 1);
    assert_eq!(c.upstreams["backend"].connect_timeout, Dur::secs(3));
}

fn one_error(src: &str) -> ConfigError {
    let errs = parse(src, Some(Path::new("gw.toml")), no_env)
        .unwrap_err()
        .0;
    assert_eq!(errs.len(), 1, "{errs:?}");
    errs.into_iter().next().unwrap()
}

#[test]
fn unknown_key_names_path_and_line() {
    let src = GOOD.replace("workers = 1", "workers = 1\nwrokers = 2");
    let e = one_error(&src);
    assert_eq!(e.line, Some(4));
    assert_eq!(e.path, "server.wrokers");
    assert!(e.message.contains("unknown field"), "{}", e.message);
    assert!(
        e.to_string().starts_with("gw.toml:4: server.wrokers: "),
        "{e}"
    );
}

#[test]
fn wrong_type_names_path_and_expectation() {
    let src = GOOD.replace("workers = 1", "workers = \"many\"");
    let e = one_error(&src);
    assert_eq!(e.path, "server.workers");
    assert_eq!(e.line, Some(3));
    assert!(e.message.contains("expected"), "{}", e.message);
}

#[test]
fn route_naming_missing_pool_is_refused() {
    let src = GOOD.replace("upstream = \"backend\"", "upstream = \"nope\"");
    let e = one_error(&src);
    assert_eq!(e.path, "routes[0].upstream");
    assert_eq!(e.line, Some(12));
    assert!(
        e.message.contains("\"nope\" is not defined"),
        "{}",
        e.message
    );
    assert!(e.message.contains("backend"));
}

#[test]
fn bad_values_are_all_reported() {
    let src = GOOD
        .replace("\"127.0.0.1:8080\"", "\"localhost\"")
        .replace("prefix = \"/api\"", "regex = \"(unclosed\"")
        .replace("\"[::1]:9001\"", "\"http://x:1\"");
    let errs = parse(&src, None, no_env).unwrap_err().0;
    let paths: Vec<_> = errs.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "listeners.main.address",
            "routes[0].path.regex",
            "upstreams.backend.servers[1]"
        ]
    );
}

#[test]
fn durations_and_sizes_are_checked() {
    let src = format!("{GOOD}\n[limits]\nheader_read_timeout = \"10 parsecs\"\n");
    let e = one_error(&src);
    assert_eq!(e.path, "limits.header_read_timeout");
    assert!(e.message.contains("duration"), "{}", e.message);
}

#[test]
fn env_vars_expand_and_missing_ones_fail() {
    let src = GOOD.replace("127.0.0.1:8080", "${ADDR}");
    let ok = parse(&src, None, |n| {
        (n == "ADDR").then(|| "127.0.0.1:9999".to_string())
    })
    .unwrap();
    assert_eq!(ok.config.listeners["main"].address, "127.0.0.1:9999");
    let e = one_error(&src);
    assert!(e.message.contains("ADDR"));
    assert_eq!(e.line, Some(6));
}

#[test]
fn hash_on_needs_consistent_hash() {
    let src = GOOD.replace("balance = \"consistent_hash\"\n", "");
    let e = one_error(&src);
    assert_eq!(e.path, "upstreams.backend.hash_on");
}

#[test]
fn missing_tls_files_are_named() {
    let src = format!(
        "{GOOD}\n[listeners.tls]\naddress = \"127.0.0.1:8443\"\n[listeners.tls.tls]\ncertificates = [{{ cert = \"nope.pem\", key = \"nope.key\", server_names = [\"a.test\"] }}]\n"
    );
    let errs = parse(&src, Some(Path::new("/etc/rampart/gw.toml")), no_env)
        .unwrap_err()
        .0;
    assert_eq!(errs[0].path, "listeners.tls.tls.certificates[0].cert");
    assert!(
        errs[0].message.contains("/etc/rampart/nope.pem"),
        "{}",
        errs[0].message
    );
}

/// Seeded random edits of a valid file: every outcome is a config or errors
/// that render with a location (the cargo-fuzz target `config_parse` goes further).
#[test]
fn mutated_configs_never_panic() {
    let mut rng = fastrand::Rng::with_seed(11);
    let alphabet = b"[]{}=\"'#.,\n ${}abcxyz0123456789:/_-*";
    for _ in 0..2000 {
        let mut bytes = GOOD.as_bytes().to_vec();
        for _ in 0..rng.usize(1..6) {
            let i = rng.usize(..bytes.len());
            match rng.u8(..3) {
                0 => bytes[i] = alphabet[rng.usize(..alphabet.len())],
                1 => {
                    bytes.remove(i);
                }
                _ => bytes.insert(i, alphabet[rng.usize(..alphabet.len())]),
            }
        }
        let Ok(text) = String::from_utf8(bytes) else {
            continue;
        };
        if let Err(errs) = parse(&text, Some(Path::new("m.toml")), |_| None) {
            assert!(!errs.0.is_empty());
            assert!(errs.to_string().starts_with("m.toml"));
        }
    }
}
