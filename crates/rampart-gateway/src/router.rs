//! Route matching, compiled once per config: host (exact or `*.suffix`),
//! path (exact, prefix or regex), methods, listener; first match by priority.

use std::sync::Arc;

use http::Method;
use rampart_config::{PathMatch, Route as RouteConfig};
use regex::Regex;

/// How a route's path matcher was compiled.
#[derive(Debug)]
pub enum PathRule {
    Any,
    Exact(String),
    Prefix(String),
    Regex(Regex),
}

impl PathRule {
    fn compile(p: &Option<PathMatch>) -> Result<Self, String> {
        Ok(match p {
            None => PathRule::Any,
            Some(PathMatch::Exact(s)) => PathRule::Exact(s.clone()),
            Some(PathMatch::Prefix(s)) => PathRule::Prefix(s.clone()),
            Some(PathMatch::Regex(r)) => PathRule::Regex(Regex::new(r).map_err(|e| e.to_string())?),
        })
    }

    fn matches(&self, path: &str) -> bool {
        match self {
            PathRule::Any => true,
            PathRule::Exact(s) => path == s,
            PathRule::Prefix(s) => path.starts_with(s.as_str()),
            PathRule::Regex(r) => r.is_match(path),
        }
    }
}

/// A host pattern, lower-cased at compile time.
#[derive(Debug)]
enum HostRule {
    Exact(String),
    /// `*.example.com` stored as `.example.com`; matches one or more labels.
    Suffix(String),
}

impl HostRule {
    fn compile(h: &str) -> Self {
        let h = h.to_ascii_lowercase();
        match h.strip_prefix('*') {
            Some(suffix) => HostRule::Suffix(suffix.to_string()),
            None => HostRule::Exact(h),
        }
    }

    fn matches(&self, host: &str) -> bool {
        match self {
            HostRule::Exact(h) => host.eq_ignore_ascii_case(h),
            HostRule::Suffix(s) => {
                host.len() > s.len()
                    && host.is_char_boundary(host.len() - s.len())
                    && host[host.len() - s.len()..].eq_ignore_ascii_case(s)
            }
        }
    }
}

/// The matching part of a route; `T` is what the route leads to.
#[derive(Debug)]
pub struct Matcher {
    hosts: Vec<HostRule>,
    listeners: Vec<String>,
    path: PathRule,
    methods: Vec<Method>,
}

impl Matcher {
    pub fn compile(r: &RouteConfig) -> Result<Self, String> {
        Ok(Matcher {
            hosts: r.hosts.iter().map(|h| HostRule::compile(h)).collect(),
            listeners: r.listeners.clone(),
            path: PathRule::compile(&r.path)?,
            methods: r
                .methods
                .iter()
                .map(|m| Method::from_bytes(m.as_bytes()).map_err(|e| e.to_string()))
                .collect::<Result<_, _>>()?,
        })
    }

    fn matches_target(&self, listener: &str, host: &str, path: &str) -> bool {
        (self.listeners.is_empty() || self.listeners.iter().any(|l| l == listener))
            && (self.hosts.is_empty() || self.hosts.iter().any(|h| h.matches(host)))
            && self.path.matches(path)
    }

    fn allows(&self, method: &Method) -> bool {
        self.methods.is_empty() || self.methods.contains(method)
    }

    pub fn methods(&self) -> &[Method] {
        &self.methods
    }
}

/// The result of a lookup.
pub enum RouteMatch<'a, T> {
    Found(&'a T),
    /// A route matched host and path, but not the method: 405 with these.
    MethodNotAllowed(&'a [Method]),
    NotFound,
}

/// Routes in match order.
pub struct Router<T> {
    routes: Vec<(Matcher, Arc<T>)>,
}

impl<T> Router<T> {
    /// `routes` in file order with their priorities; sorted here, stably.
    pub fn new(mut routes: Vec<(i32, Matcher, Arc<T>)>) -> Self {
        routes.sort_by_key(|(prio, _, _)| std::cmp::Reverse(*prio));
        Router {
            routes: routes.into_iter().map(|(_, m, t)| (m, t)).collect(),
        }
    }

    /// Every route, in match order.
    pub fn routes(&self) -> impl Iterator<Item = &Arc<T>> {
        self.routes.iter().map(|(_, t)| t)
    }

    pub fn find(
        &self,
        listener: &str,
        host: &str,
        method: &Method,
        path: &str,
    ) -> RouteMatch<'_, Arc<T>> {
        let mut method_mismatch: Option<&[Method]> = None;
        for (m, target) in &self.routes {
            if m.matches_target(listener, host, path) {
                if m.allows(method) {
                    return RouteMatch::Found(target);
                }
                method_mismatch.get_or_insert(m.methods());
            }
        }
        match method_mismatch {
            Some(methods) => RouteMatch::MethodNotAllowed(methods),
            None => RouteMatch::NotFound,
        }
    }
}

/// The host a request is for, without port, from the URI (HTTP/2) or `Host`.
pub fn request_host<'a>(uri: &'a http::Uri, headers: &'a http::HeaderMap) -> Option<&'a str> {
    let raw = match uri.host() {
        Some(h) => h,
        None => headers.get(http::header::HOST)?.to_str().ok()?,
    };
    Some(strip_port(raw))
}

fn strip_port(h: &str) -> &str {
    if let Some(rest) = h.strip_prefix('[') {
        // IPv6 literal: keep the brackets' content.
        return rest.split(']').next().unwrap_or(rest);
    }
    match h.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => h,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(toml_src: &str) -> RouteConfig {
        toml::from_str(toml_src).unwrap()
    }

    fn router(routes: &[&str]) -> Router<String> {
        Router::new(
            routes
                .iter()
                .map(|src| {
                    let r = route(src);
                    (r.priority, Matcher::compile(&r).unwrap(), Arc::new(r.name))
                })
                .collect(),
        )
    }

    fn find(r: &Router<String>, host: &str, method: &str, path: &str) -> String {
        match r.find(
            "main",
            host,
            &Method::from_bytes(method.as_bytes()).unwrap(),
            path,
        ) {
            RouteMatch::Found(t) => t.to_string(),
            RouteMatch::MethodNotAllowed(m) => format!("405 {m:?}"),
            RouteMatch::NotFound => "404".into(),
        }
    }

    #[test]
    fn hosts_paths_methods_and_priority() {
        let r = router(&[
            "name = 'catchall'\nupstream = 'u'\npriority = -1",
            "name = 'api'\nupstream = 'u'\nhosts = ['api.example.com']\npath = { prefix = '/v1/' }\nmethods = ['GET']",
            "name = 'wild'\nupstream = 'u'\nhosts = ['*.example.com']",
            "name = 'exact'\nupstream = 'u'\npath = { exact = '/health' }\npriority = 10",
            "name = 're'\nupstream = 'u'\npath = { regex = '^/users/[0-9]+$' }\npriority = 5",
        ]);
        assert_eq!(find(&r, "api.example.com", "GET", "/v1/x"), "api");
        assert_eq!(find(&r, "API.Example.COM", "GET", "/v1/x"), "api");
        assert_eq!(find(&r, "api.example.com", "GET", "/v2/x"), "wild");
        assert_eq!(find(&r, "a.b.example.com", "GET", "/"), "wild");
        assert_eq!(find(&r, "example.com", "GET", "/"), "catchall");
        assert_eq!(find(&r, "api.example.com", "GET", "/health"), "exact");
        assert_eq!(find(&r, "x.org", "GET", "/users/42"), "re");
        assert_eq!(find(&r, "x.org", "GET", "/users/4x"), "catchall");
    }

    #[test]
    fn method_mismatch_is_405_unless_a_later_route_takes_it() {
        let only = router(&["name = 'api'\nupstream = 'u'\nmethods = ['GET', 'HEAD']"]);
        assert_eq!(find(&only, "h", "POST", "/"), "405 [GET, HEAD]");
        assert_eq!(find(&only, "h", "GET", "/"), "api");
        let two = router(&[
            "name = 'get'\nupstream = 'u'\nmethods = ['GET']",
            "name = 'any'\nupstream = 'u'",
        ]);
        assert_eq!(find(&two, "h", "POST", "/"), "any");
    }

    #[test]
    fn listeners_restrict_routes() {
        let r = router(&["name = 'admin'\nupstream = 'u'\nlisteners = ['internal']"]);
        assert_eq!(find(&r, "h", "GET", "/"), "404");
    }

    #[test]
    fn host_header_parsing() {
        let mut h = http::HeaderMap::new();
        let uri: http::Uri = "/x".parse().unwrap();
        h.insert(http::header::HOST, "Example.com:8080".parse().unwrap());
        assert_eq!(request_host(&uri, &h), Some("Example.com"));
        h.insert(http::header::HOST, "[::1]:8080".parse().unwrap());
        assert_eq!(request_host(&uri, &h), Some("::1"));
        let abs: http::Uri = "https://h2.example:443/x".parse().unwrap();
        assert_eq!(
            request_host(&abs, &http::HeaderMap::new()),
            Some("h2.example")
        );
    }
}
