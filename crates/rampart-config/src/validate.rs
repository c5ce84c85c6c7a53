//! Stage two: values and cross-references, collecting every problem found.

use std::collections::HashSet;
use std::net::SocketAddr;

use crate::error::ConfigError;
use crate::model::{Balance, Config, Listener, PathMatch, Route, Upstream};

/// Checks what types alone cannot; returns all errors, not just the first.
pub fn validate(cfg: &Config) -> Vec<ConfigError> {
    let mut errs = Vec::new();
    let mut err = |path: String, msg: String| errs.push(ConfigError::new(path, msg));

    if cfg.server.workers > 1024 {
        err(
            "server.workers".into(),
            format!(
                "expected 0 (one per core) to 1024, found {}",
                cfg.server.workers
            ),
        );
    }
    if cfg.admin.enabled {
        check_addr(&cfg.admin.listen, "admin.listen", &mut err);
    }
    if let Some(s) = &cfg.sample_api {
        check_addr(&s.listen, "sample_api.listen", &mut err);
    }
    if let Some(url) = &cfg.cluster.redis {
        if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
            // The URL may hold a password: never echo it.
            err(
                "cluster.redis".into(),
                "expected a URL starting with redis:// or rediss://".into(),
            );
        }
    }
    if cfg.log.level.trim().is_empty() {
        err(
            "log.level".into(),
            "expected a log filter such as \"info\"".into(),
        );
    }
    if cfg.listeners.is_empty() {
        err(
            "listeners".into(),
            "expected at least one listener, e.g. [listeners.main] address = \"0.0.0.0:8080\""
                .into(),
        );
    }
    let mut addrs = HashSet::new();
    for (name, l) in &cfg.listeners {
        let path = format!("listeners.{name}");
        // Port 0 (pick any free port) may repeat; a fixed port may not.
        let fixed_port = l.address.parse::<SocketAddr>().is_ok_and(|a| a.port() != 0);
        if check_addr(&l.address, &format!("{path}.address"), &mut err)
            && fixed_port
            && !addrs.insert(l.address.clone())
        {
            err(
                format!("{path}.address"),
                format!("address {} is used by another listener", l.address),
            );
        }
        check_listener(l, &path, &mut err);
    }
    let mut names = HashSet::new();
    for (i, r) in cfg.routes.iter().enumerate() {
        let path = format!("routes[{i}]");
        if r.name.trim().is_empty() {
            err(
                format!("{path}.name"),
                "expected a non-empty route name".into(),
            );
        } else if !names.insert(r.name.as_str()) {
            err(
                format!("{path}.name"),
                format!("route name {:?} is used twice", r.name),
            );
        }
        check_route(r, cfg, &path, &mut err);
    }
    for (name, u) in &cfg.upstreams {
        check_upstream(u, &format!("upstreams.{name}"), &mut err);
    }
    errs
}

fn check_addr(addr: &str, path: &str, err: &mut impl FnMut(String, String)) -> bool {
    match addr.parse::<SocketAddr>() {
        Ok(_) => true,
        Err(_) => {
            err(
                path.into(),
                format!(
                    "expected IP:port such as \"127.0.0.1:8080\" or \"[::1]:8080\", found {addr:?}"
                ),
            );
            false
        }
    }
}

fn check_listener(l: &Listener, path: &str, err: &mut impl FnMut(String, String)) {
    if let Some(tls) = &l.tls {
        if tls.certificates.is_empty() {
            err(
                format!("{path}.tls.certificates"),
                "expected at least one certificate".into(),
            );
        }
        if tls.certificates.iter().filter(|c| c.default).count() > 1 {
            err(
                format!("{path}.tls.certificates"),
                "at most one certificate may be `default = true`".into(),
            );
        }
        for (i, c) in tls.certificates.iter().enumerate() {
            let cpath = format!("{path}.tls.certificates[{i}]");
            if c.server_names.is_empty() {
                err(
                    format!("{cpath}.server_names"),
                    "expected at least one SNI name".into(),
                );
            }
            for (j, n) in c.server_names.iter().enumerate() {
                if let Err(m) = check_host_pattern(n) {
                    err(format!("{cpath}.server_names[{j}]"), m);
                }
            }
            check_file(&c.cert, &format!("{cpath}.cert"), err);
            check_file(&c.key, &format!("{cpath}.key"), err);
        }
        for (i, a) in tls.alpn.iter().enumerate() {
            if a != "h2" && a != "http/1.1" {
                err(
                    format!("{path}.tls.alpn[{i}]"),
                    format!("expected \"h2\" or \"http/1.1\", found {a:?}"),
                );
            }
        }
        if let Some(ca) = &tls.client_auth {
            check_file(&ca.ca, &format!("{path}.tls.client_auth.ca"), err);
        }
        if l.h2c {
            err(
                format!("{path}.h2c"),
                "h2c is for plain listeners; TLS listeners negotiate h2 by ALPN".into(),
            );
        }
        if l.redirect_https_port.is_some() {
            err(
                format!("{path}.redirect_https_port"),
                "a TLS listener cannot redirect to HTTPS; set this on the plain listener".into(),
            );
        }
    }
}

fn check_file(p: &std::path::Path, path: &str, err: &mut impl FnMut(String, String)) {
    if !p.is_file() {
        err(
            path.into(),
            format!("expected a readable file, {} does not exist", p.display()),
        );
    }
}

/// Accepts `example.com`, `*.example.com`; rejects ports, schemes and spaces.
pub fn check_host_pattern(h: &str) -> Result<(), String> {
    let name = h.strip_prefix("*.").unwrap_or(h);
    let ok = !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "expected a host name such as \"api.example.com\" or \"*.example.com\", found {h:?}"
        ))
    }
}

fn check_route(r: &Route, cfg: &Config, path: &str, err: &mut impl FnMut(String, String)) {
    if !cfg.upstreams.contains_key(&r.upstream) {
        let known: Vec<_> = cfg.upstreams.keys().map(String::as_str).collect();
        err(
            format!("{path}.upstream"),
            format!(
                "upstream {:?} is not defined; defined upstreams: [{}]",
                r.upstream,
                known.join(", ")
            ),
        );
    }
    for (i, l) in r.listeners.iter().enumerate() {
        if !cfg.listeners.contains_key(l) {
            err(
                format!("{path}.listeners[{i}]"),
                format!("listener {l:?} is not defined"),
            );
        }
    }
    for (i, h) in r.hosts.iter().enumerate() {
        if let Err(m) = check_host_pattern(h) {
            err(format!("{path}.hosts[{i}]"), m);
        }
    }
    for (i, m) in r.methods.iter().enumerate() {
        let valid = !m.is_empty() && m.bytes().all(|b| b.is_ascii_uppercase());
        if !valid {
            err(
                format!("{path}.methods[{i}]"),
                format!("expected an upper-case HTTP method such as \"GET\", found {m:?}"),
            );
        }
    }
    match &r.path {
        Some(PathMatch::Exact(p)) | Some(PathMatch::Prefix(p)) if !p.starts_with('/') => {
            err(
                format!("{path}.path"),
                format!("expected a path starting with '/', found {p:?}"),
            );
        }
        Some(PathMatch::Regex(re)) => {
            if let Err(e) = regex::Regex::new(re) {
                err(
                    format!("{path}.path.regex"),
                    format!("invalid regular expression: {e}"),
                );
            }
        }
        _ => {}
    }
    if let Some(w) = &r.waf {
        check_waf(w, &format!("{path}.waf"), err);
    }
    if let Some(rl) = &r.rate_limit {
        check_rate_limit(rl, &format!("{path}.rate_limit"), err);
    }
    if let Some(b) = &r.bot {
        crate::bot::check_bot(b, r, &format!("{path}.bot"), err);
    }
    if let Some(l) = &r.login_guard {
        crate::bot::check_login_guard(l, r, &format!("{path}.login_guard"), err);
    }
    if let Some(p) = &r.strip_prefix {
        if !p.starts_with('/') {
            err(
                format!("{path}.strip_prefix"),
                format!("expected a path starting with '/', found {p:?}"),
            );
        }
    }
}

fn check_rate_limit(
    rl: &crate::traffic::RateLimitPolicy,
    path: &str,
    err: &mut impl FnMut(String, String),
) {
    if rl.limits.is_empty() {
        err(
            format!("{path}.limits"),
            "expected at least one limit, e.g. { name = \"burst\", rate = \"10/s\" }".into(),
        );
    }
    let mut names = HashSet::new();
    for (i, l) in rl.limits.iter().enumerate() {
        let lp = format!("{path}.limits[{i}]");
        if l.name.is_empty() || !names.insert(l.name.as_str()) {
            err(
                format!("{lp}.name"),
                format!("expected a unique, non-empty name, found {:?}", l.name),
            );
        }
        if l.name.contains(['"', '\\', ';', ',']) {
            err(
                format!("{lp}.name"),
                "expected a name without quotes, backslashes, ';' or ','".into(),
            );
        }
        if l.key.is_empty() {
            err(
                format!("{lp}.key"),
                "expected at least one key part, e.g. [\"ip\"]".into(),
            );
        }
        for (j, part) in l.key.iter().enumerate() {
            if let Err(e) = crate::traffic::parse_key_part(part) {
                err(format!("{lp}.key[{j}]"), e);
            }
        }
        if l.ipv4_prefix > 32 || l.ipv6_prefix > 128 {
            err(
                format!("{lp}.ipv4_prefix"),
                "expected ipv4_prefix <= 32 and ipv6_prefix <= 128".into(),
            );
        }
        for m in l.method_costs.keys() {
            if http::Method::from_bytes(m.as_bytes()).is_err() || m.to_uppercase() != *m {
                err(
                    format!("{lp}.method_costs.{m}"),
                    "expected an upper-case HTTP method".into(),
                );
            }
        }
    }
}

fn check_waf(w: &crate::model::WafPolicy, path: &str, err: &mut impl FnMut(String, String)) {
    if !(1..=4).contains(&w.paranoia) {
        err(
            format!("{path}.paranoia"),
            format!(
                "expected a paranoia level from 1 to 4, found {}",
                w.paranoia
            ),
        );
    }
    if w.inbound_threshold == 0 {
        err(
            format!("{path}.inbound_threshold"),
            "expected a positive anomaly score".into(),
        );
    }
    match (w.rules, &w.crs_dir) {
        (crate::model::WafRules::Crs, None) => err(
            format!("{path}.crs_dir"),
            "rules = \"crs\" needs crs_dir, the CRS folder".into(),
        ),
        (crate::model::WafRules::Crs, Some(dir)) if !dir.join("rules").is_dir() => err(
            format!("{path}.crs_dir"),
            format!(
                "expected a CRS folder with rules/, {} has none",
                dir.display()
            ),
        ),
        (crate::model::WafRules::Builtin, Some(_)) => err(
            format!("{path}.crs_dir"),
            "crs_dir applies only with rules = \"crs\"".into(),
        ),
        _ => {}
    }
    for (i, f) in w.extra_rules.iter().enumerate() {
        check_file(f, &format!("{path}.extra_rules[{i}]"), err);
    }
    for (i, t) in w.exclude_targets.iter().enumerate() {
        let ok =
            !t.target.is_empty() && t.target.bytes().all(|b| b.is_ascii_graphic() && b != b'"');
        if !ok {
            err(
                format!("{path}.exclude_targets[{i}].target"),
                format!(
                    "expected a target such as \"ARGS:password\", found {:?}",
                    t.target
                ),
            );
        }
    }
    for (i, t) in w.exclude_tags.iter().enumerate() {
        if t.is_empty() || t.contains('"') {
            err(
                format!("{path}.exclude_tags[{i}]"),
                format!("expected a tag such as \"attack-sqli\", found {t:?}"),
            );
        }
    }
}

fn check_upstream(u: &Upstream, path: &str, err: &mut impl FnMut(String, String)) {
    if u.servers.is_empty() {
        err(
            format!("{path}.servers"),
            "expected at least one server such as \"127.0.0.1:9000\"".into(),
        );
    }
    for (i, s) in u.servers.iter().enumerate() {
        if let Err(m) = check_server(s) {
            err(format!("{path}.servers[{i}]"), m);
        }
    }
    match (u.balance, &u.hash_on) {
        (Balance::ConsistentHash, None) => err(
            format!("{path}.hash_on"),
            "consistent_hash needs hash_on: \"client_ip\", \"header:NAME\" or \"cookie:NAME\""
                .into(),
        ),
        (Balance::ConsistentHash, Some(h)) => {
            if let Err(m) = parse_hash_on(h) {
                err(format!("{path}.hash_on"), m);
            }
        }
        (_, Some(_)) => err(
            format!("{path}.hash_on"),
            "hash_on only applies with balance = \"consistent_hash\"".into(),
        ),
        _ => {}
    }
    if u.retries > 10 {
        err(
            format!("{path}.retries"),
            format!("expected 0 to 10, found {}", u.retries),
        );
    }
    if let Some(h) = &u.health_check {
        if !h.path.starts_with('/') {
            err(
                format!("{path}.health_check.path"),
                format!("expected a path starting with '/', found {:?}", h.path),
            );
        }
        if h.healthy_threshold == 0 || h.unhealthy_threshold == 0 {
            err(
                format!("{path}.health_check"),
                "thresholds must be at least 1".into(),
            );
        }
        if h.interval.0.is_zero() {
            err(
                format!("{path}.health_check.interval"),
                "expected a positive interval".into(),
            );
        }
    }
    if let Some(t) = &u.tls {
        match (&t.client_cert, &t.client_key) {
            (Some(c), Some(k)) => {
                check_file(c, &format!("{path}.tls.client_cert"), err);
                check_file(k, &format!("{path}.tls.client_key"), err);
            }
            (None, None) => {}
            _ => err(
                format!("{path}.tls"),
                "client_cert and client_key must be given together".into(),
            ),
        }
        if let Some(ca) = &t.ca {
            check_file(ca, &format!("{path}.tls.ca"), err);
        }
    }
}

/// A server is `host:port` (host a name, IPv4 or bracketed IPv6).
pub fn check_server(s: &str) -> Result<(), String> {
    let expected = || {
        format!("expected host:port such as \"10.0.0.5:8080\" or \"api.internal:443\", found {s:?}")
    };
    if s.contains("://") || s.contains('/') {
        return Err(format!(
            "{}; the scheme comes from the pool's `tls` setting",
            expected()
        ));
    }
    let (host, port) = s.rsplit_once(':').ok_or_else(expected)?;
    port.parse::<u16>().map_err(|_| expected())?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(expected());
    }
    if host.parse::<std::net::IpAddr>().is_ok()
        || check_host_pattern(host).is_ok() && !host.starts_with("*.")
    {
        Ok(())
    } else {
        Err(expected())
    }
}

/// What a consistent hash is computed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashOn {
    ClientIp,
    Header(http::HeaderName),
    Cookie(String),
}

pub fn parse_hash_on(s: &str) -> Result<HashOn, String> {
    if s == "client_ip" {
        return Ok(HashOn::ClientIp);
    }
    if let Some(h) = s.strip_prefix("header:") {
        return http::HeaderName::from_bytes(h.as_bytes())
            .map(HashOn::Header)
            .map_err(|_| format!("invalid header name {h:?}"));
    }
    if let Some(c) = s.strip_prefix("cookie:") {
        if !c.is_empty() {
            return Ok(HashOn::Cookie(c.to_string()));
        }
    }
    Err(format!(
        "expected \"client_ip\", \"header:NAME\" or \"cookie:NAME\", found {s:?}"
    ))
}
