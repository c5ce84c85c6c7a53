//! Stage three of config: the runtime snapshot. Everything that can be done
//! once per config — routes, regexes, filters, pools, TLS contexts, metric
//! handles — is done here; a reload builds a whole new snapshot and swaps it
//! in atomically, so a request sees one config from start to end.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;
use rampart_config::{ConfigError, ConfigErrors, LoadedConfig, Route};
use rampart_core::{Filter, IpSet};
use rampart_guard::{ip_list::IpListFilter, request_limits::RequestLimitsFilter, waf::WafFilter};
use rampart_openapi::OpenApi;
use rampart_waf::RuleSet;
use tokio_rustls::TlsAcceptor;

use crate::hygiene::ProtocolLimits;
use crate::log::RouteMetrics;
use crate::router::{Matcher, Router};
use crate::services::Services;
use crate::upstream::Pool;

/// A listener's per-connection behaviour (its socket lives in the server).
pub struct ListenerRuntime {
    pub name: Arc<str>,
    pub tls: Option<TlsAcceptor>,
    pub h2c: bool,
    pub redirect_https_port: Option<u16>,
    /// Peer networks refused at accept.
    pub ip_lists: Option<rampart_guard::ip_list::NetLists>,
}

/// A compiled route.
pub struct RouteRuntime {
    pub name: Arc<str>,
    pub filters: Vec<Arc<dyn Filter>>,
    pub wants_request_body: bool,
    pub wants_response_body: bool,
    /// Request body bytes held back until inspected (largest filter hold).
    pub request_hold: u64,
    /// Response body bytes held back until inspected (largest filter hold).
    pub response_hold: u64,
    /// Requests in flight on this route, and its cap (0: none).
    pub in_flight: Arc<crate::flood::Load>,
    pub max_concurrent: usize,
    pub criticality: crate::flood::Criticality,
    /// Record this route's traffic for API discovery.
    pub discovery: bool,
    /// The route's OpenAPI document, for the discovery diff.
    pub spec: Option<Arc<rampart_openapi::OpenApi>>,
    pub pool: Arc<Pool>,
    pub strip_prefix: Option<String>,
    pub hsts: Option<HeaderValue>,
    pub metrics: Arc<RouteMetrics>,
}

/// One immutable, fully built configuration.
pub struct Snapshot {
    pub config: Arc<LoadedConfig>,
    pub listeners: HashMap<String, ListenerRuntime>,
    pub router: Router<RouteRuntime>,
    pub pools: HashMap<String, Arc<Pool>>,
    pub limits: ProtocolLimits,
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
    /// Slowest average request-body rate, bytes per second (0: none).
    pub min_body_rate: u64,
    pub conn_limits: crate::flood::ConnLimits,
    pub max_concurrent_requests: usize,
    pub shedding: Option<crate::flood::SheddingLimits>,
    /// Refuse banned clients' connections at accept.
    pub bans_at_accept: bool,
    pub trusted_proxies: IpSet,
    pub access_log: bool,
    pub unmatched: Arc<RouteMetrics>,
}

fn err(path: String, message: String) -> ConfigError {
    ConfigError::new(path, message)
}

impl Snapshot {
    /// Compiles a validated config for `workers` worker threads.
    pub fn build(
        loaded: Arc<LoadedConfig>,
        workers: usize,
        services: &Services,
    ) -> Result<Snapshot, ConfigErrors> {
        let cfg = &loaded.config;
        let mut errors = Vec::new();
        let mut pools = HashMap::new();
        for (name, u) in &cfg.upstreams {
            match Pool::new(name, u, workers) {
                Ok(p) => {
                    pools.insert(name.clone(), Arc::new(p));
                }
                Err((path, msg)) => errors.push(err(path, msg)),
            }
        }
        let mut listeners = HashMap::new();
        for (name, l) in &cfg.listeners {
            let tls = match &l.tls {
                None => None,
                Some(t) => match crate::tls::server_config(t, &format!("listeners.{name}")) {
                    Ok(c) => Some(TlsAcceptor::from(c)),
                    Err((path, msg)) => {
                        errors.push(err(path, msg));
                        None
                    }
                },
            };
            listeners.insert(
                name.clone(),
                ListenerRuntime {
                    name: Arc::from(name.as_str()),
                    tls,
                    h2c: l.h2c,
                    redirect_https_port: l.redirect_https_port,
                    ip_lists: l
                        .ip_list
                        .as_ref()
                        .map(|p| rampart_guard::ip_list::NetLists::new(&p.allow, &p.deny)),
                },
            );
        }
        let mut routes = Vec::new();
        let mut rule_sets = HashMap::new();
        let jwt = crate::build::jwt::verifier(&cfg.jwt).unwrap_or_else(|(path, msg)| {
            errors.push(err(path, msg));
            None
        });
        for (i, r) in cfg.routes.iter().enumerate() {
            let build = Build {
                services,
                cluster: &cfg.cluster,
                config: cfg,
                jwt: jwt.as_ref(),
            };
            match compile_route(r, &pools, &mut rule_sets, &build) {
                Ok((m, rt)) => routes.push((r.priority, m, Arc::new(rt))),
                Err((key, msg)) => errors.push(err(format!("routes[{i}]{key}"), msg)),
            }
        }
        if !errors.is_empty() {
            return Err(loaded.annotate(errors));
        }
        let l = &cfg.limits;
        Ok(Snapshot {
            listeners,
            router: Router::new(routes),
            pools,
            limits: ProtocolLimits {
                max_uri: l.max_uri_bytes.0 as usize,
                max_headers: l.max_headers,
                max_header_bytes: l.max_header_bytes.0 as usize,
            },
            header_read_timeout: l.header_read_timeout.0,
            body_read_timeout: l.body_read_timeout.0,
            min_body_rate: l.min_body_rate.0,
            conn_limits: crate::flood::ConnLimits {
                max_per_ip: l.max_connections_per_ip,
                rate_per_ip: l.connection_rate_per_ip,
                burst_per_ip: l.connection_burst_per_ip,
            },
            max_concurrent_requests: l.max_concurrent_requests,
            bans_at_accept: cfg.reputation.bans.check_at_accept,
            shedding: cfg
                .shedding
                .enabled
                .then_some(crate::flood::SheddingLimits {
                    latency_target: cfg.shedding.latency_target.0,
                    max_in_flight: cfg.shedding.max_in_flight,
                    retry_after: cfg.shedding.retry_after.0,
                }),
            trusted_proxies: IpSet::new(&cfg.server.trusted_proxies),
            access_log: cfg.log.access_log,
            unmatched: Arc::new(RouteMetrics::new("")),
            config: loaded,
        })
    }

    /// Starts the active health checks of every pool (on the calling runtime).
    pub fn start_health_checks(&self) {
        for p in self.pools.values() {
            crate::upstream::health::spawn(p);
        }
    }
}

/// Compiled WAF rule sets by policy, so routes with equal policies share one.
type RuleSets = HashMap<String, Arc<RuleSet>>;

/// The spec's own policies are enforced unless the route only monitors its
/// contract.
fn p_mode(p: &rampart_config::OpenApiPolicy) -> rampart_config::FilterMode {
    if p.request_validation == "monitor" {
        rampart_config::FilterMode::Monitor
    } else {
        rampart_config::FilterMode::Enforce
    }
}

/// A route's filters in order, and its OpenAPI document if it has one.
type RouteFilters = (Vec<Arc<dyn Filter>>, Option<Arc<OpenApi>>);

/// What filters need besides their own section: long-lived stores and the
/// process-wide settings they depend on.
struct Build<'a> {
    services: &'a Services,
    cluster: &'a rampart_config::Cluster,
    config: &'a rampart_config::Config,
    /// The `[jwt]` verifier, shared by the routes that accept tokens.
    jwt: Option<&'a Arc<rampart_jwt::Verifier>>,
}

/// The route's filters in pipeline order (DESIGN.md: ip reputation first,
/// the WAF after the cheap checks).
fn filters_for(
    r: &Route,
    rule_sets: &mut RuleSets,
    build: &Build<'_>,
) -> Result<RouteFilters, crate::build::BuildError> {
    let mut filters: Vec<Arc<dyn Filter>> = Vec::new();
    let mut spec = None;
    if let Some(p) = &r.reputation {
        let f = crate::reputation::filter(p, build.config, build.services)?;
        filters.push(Arc::new(f));
    }
    if let Some(p) = &r.ip_list {
        filters.push(Arc::new(IpListFilter::new(p)));
    }
    if let Some(p) = &r.request_limits {
        filters.push(Arc::new(RequestLimitsFilter::new(p)));
    }
    if let Some(p) = &r.auth {
        filters.push(Arc::new(crate::build::auth::filter(
            p,
            build.services,
            build.jwt,
        )?));
    }
    if let Some(p) = &r.step_up {
        filters.push(Arc::new(crate::build::step_up::filter(p, build.services)?));
    }
    if let Some(p) = &r.rate_limit {
        let f = crate::build::ratelimit::filter(p, build.cluster, build.services)?;
        filters.push(Arc::new(f));
    }
    if let Some(p) = &r.bot {
        let f = crate::build::bot::bot_filter(p, r, build.cluster, build.services)?;
        filters.push(Arc::new(f));
    }
    if let Some(p) = &r.login_guard {
        let f = crate::build::bot::login_filter(p, r, build.cluster, build.services)?;
        filters.push(Arc::new(f));
    }
    if let Some(p) = &r.waf {
        let key = rampart_guard::waf::policy_key(p);
        let rules = match rule_sets.get(&key) {
            Some(rules) => rules.clone(),
            None => {
                let rules =
                    Arc::new(rampart_guard::waf::compile(p).map_err(|e| (".waf".to_string(), e))?);
                rule_sets.insert(key, rules.clone());
                rules
            }
        };
        filters.push(Arc::new(WafFilter::new(p, rules)));
    }
    if let Some(p) = &r.openapi {
        let (api, f) = crate::build::openapi::filter(p)?;
        filters.push(Arc::new(f));
        let declares_policy = api
            .operations()
            .any(|o| o.rate_limit.is_some() || o.auth.is_some());
        if declares_policy {
            let store = build
                .services
                .rate_store(build.cluster)
                .map_err(|e| (".openapi".to_string(), e))?;
            let local = rampart_ratelimit::OnStoreError::Local(build.services.rate_local.clone());
            let f = rampart_guard::spec_policy::SpecPolicyFilter::new(
                rampart_guard::mode(p_mode(p)),
                api.operations(),
                store,
                local,
            )
            .map_err(|e| (".openapi.spec".to_string(), e))?;
            filters.push(Arc::new(f));
        }
        spec = Some(api);
    }
    if let Some(p) = &r.dlp {
        filters.push(Arc::new(crate::build::dlp::filter(p)?));
    }
    Ok((filters, spec))
}

fn compile_route(
    r: &Route,
    pools: &HashMap<String, Arc<Pool>>,
    rule_sets: &mut RuleSets,
    build: &Build<'_>,
) -> Result<(Matcher, RouteRuntime), crate::build::BuildError> {
    let matcher = Matcher::compile(r).map_err(|e| (String::new(), e))?;
    let pool = pools.get(&r.upstream).cloned().ok_or_else(|| {
        (
            ".upstream".to_string(),
            format!("upstream {:?} could not be built", r.upstream),
        )
    })?;
    let (filters, spec) = filters_for(r, rule_sets, build)?;
    let hsts = r.hsts.as_ref().map(|h| {
        let mut v = format!("max-age={}", h.max_age.0.as_secs());
        if h.include_subdomains {
            v.push_str("; includeSubDomains");
        }
        if h.preload {
            v.push_str("; preload");
        }
        HeaderValue::try_from(v).expect("digits and ASCII words only")
    });
    Ok((
        matcher,
        RouteRuntime {
            name: Arc::from(r.name.as_str()),
            wants_request_body: filters.iter().any(|f| f.body_interest().request),
            wants_response_body: filters.iter().any(|f| f.body_interest().response),
            request_hold: filters
                .iter()
                .map(|f| f.body_interest().hold_request)
                .max()
                .unwrap_or(0),
            response_hold: filters
                .iter()
                .map(|f| f.body_interest().hold_response)
                .max()
                .unwrap_or(0),
            in_flight: Default::default(),
            max_concurrent: r.max_concurrent,
            discovery: r.discovery,
            spec,
            criticality: match r.criticality {
                rampart_config::model::Criticality::Low => crate::flood::Criticality::Low,
                rampart_config::model::Criticality::Normal => crate::flood::Criticality::Normal,
                rampart_config::model::Criticality::High => crate::flood::Criticality::High,
                rampart_config::model::Criticality::Critical => crate::flood::Criticality::Critical,
            },
            filters,
            pool,
            strip_prefix: r.strip_prefix.clone(),
            hsts,
            metrics: Arc::new(RouteMetrics::new(&r.name)),
        },
    ))
}
