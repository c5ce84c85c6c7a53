//! The config file's shape: serde structs that reject unknown keys.
//!
//! Every field has a documented default (see `docs/configuration.md`); this
//! stage only checks types. Cross-references and values are checked by
//! `validate`, and the gateway compiles the result into its runtime snapshot.

use std::collections::BTreeMap;
use std::path::PathBuf;

use ipnet::IpNet;
use serde::Deserialize;

use crate::units::{Bytes, Dur};

/// The whole config file.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: Server,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub shedding: Shedding,
    #[serde(default)]
    pub cluster: crate::traffic::Cluster,
    #[serde(default)]
    pub store: crate::traffic::Store,
    #[serde(default)]
    pub reputation: crate::traffic::Reputation,
    /// Trusted JWT issuers (routes opt in with `auth.methods`).
    #[serde(default)]
    pub jwt: crate::identity::Jwt,
    #[serde(default)]
    pub admin: Admin,
    #[serde(default)]
    pub log: Log,
    #[serde(default)]
    pub listeners: BTreeMap<String, Listener>,
    #[serde(default)]
    pub routes: Vec<Route>,
    #[serde(default)]
    pub upstreams: BTreeMap<String, Upstream>,
    /// Starts rampart's built-in sample JSON API (for the demo).
    pub sample_api: Option<SampleApi>,
}

/// Process-wide settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    /// Worker threads serving traffic; 0 means one per core.
    #[serde(default)]
    pub workers: usize,
    /// How long in-flight requests may take to finish on shutdown.
    #[serde(default = "default_drain")]
    pub drain_timeout: Dur,
    /// Peers whose `X-Forwarded-For` / `Forwarded` / `X-Request-Id` are believed.
    #[serde(default)]
    pub trusted_proxies: Vec<IpNet>,
    /// Watch the config file (and TLS files) and reload on change.
    #[serde(default = "yes")]
    pub watch: bool,
}

impl Default for Server {
    fn default() -> Self {
        Server {
            workers: 0,
            drain_timeout: default_drain(),
            trusted_proxies: Vec::new(),
            watch: true,
        }
    }
}

fn default_drain() -> Dur {
    Dur::secs(30)
}
fn yes() -> bool {
    true
}

/// Protocol limits applied to every request before routing (slowloris,
/// oversized requests, smuggling).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    #[serde(default = "default_max_uri")]
    pub max_uri_bytes: Bytes,
    /// Total size of all request header names and values.
    #[serde(default = "default_max_header_bytes")]
    pub max_header_bytes: Bytes,
    #[serde(default = "default_max_headers")]
    pub max_headers: usize,
    /// Time allowed to receive a request's complete header block; it also
    /// bounds how long an idle keep-alive connection waits for its next request.
    #[serde(default = "default_header_timeout")]
    pub header_read_timeout: Dur,
    /// Longest pause allowed between two request body chunks.
    #[serde(default = "default_body_timeout")]
    pub body_read_timeout: Dur,
    /// Slowest acceptable average request-body rate once `body_read_timeout`
    /// has passed since the body started (0: no minimum).
    #[serde(default)]
    pub min_body_rate: Bytes,
    /// Open connections allowed per client IP (0: unlimited).
    #[serde(default)]
    pub max_connections_per_ip: u32,
    /// New connections per second allowed per client IP (0: unlimited).
    #[serde(default)]
    pub connection_rate_per_ip: u32,
    /// Connections allowed at once above that rate.
    #[serde(default = "default_connection_burst")]
    pub connection_burst_per_ip: u32,
    /// Requests in flight across the gateway (0: unlimited); over it, 503.
    #[serde(default)]
    pub max_concurrent_requests: usize,
}

fn default_connection_burst() -> u32 {
    20
}

/// Adaptive load shedding: refuse less important routes first when the
/// upstreams slow down or too many requests queue.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shedding {
    #[serde(default)]
    pub enabled: bool,
    /// Average upstream latency that counts as full pressure.
    #[serde(default = "default_latency_target")]
    pub latency_target: Dur,
    /// Requests in flight that count as full pressure.
    #[serde(default = "default_shed_in_flight")]
    pub max_in_flight: usize,
    /// `Retry-After` sent with a shed request.
    #[serde(default = "default_shed_retry")]
    pub retry_after: Dur,
}

impl Default for Shedding {
    fn default() -> Self {
        Shedding {
            enabled: false,
            latency_target: default_latency_target(),
            max_in_flight: default_shed_in_flight(),
            retry_after: default_shed_retry(),
        }
    }
}

fn default_latency_target() -> Dur {
    Dur::millis(500)
}
fn default_shed_in_flight() -> usize {
    10_000
}
fn default_shed_retry() -> Dur {
    Dur::secs(2)
}

/// How much a route matters when load is shed (`low` goes first,
/// `critical` never).
#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Criticality {
    Low,
    #[default]
    Normal,
    High,
    Critical,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_uri_bytes: default_max_uri(),
            max_header_bytes: default_max_header_bytes(),
            max_headers: default_max_headers(),
            header_read_timeout: default_header_timeout(),
            body_read_timeout: default_body_timeout(),
            min_body_rate: Bytes::default(),
            max_connections_per_ip: 0,
            connection_rate_per_ip: 0,
            connection_burst_per_ip: default_connection_burst(),
            max_concurrent_requests: 0,
        }
    }
}

fn default_max_uri() -> Bytes {
    Bytes(8 * 1024)
}
fn default_max_header_bytes() -> Bytes {
    Bytes(32 * 1024)
}
fn default_max_headers() -> usize {
    100
}
fn default_header_timeout() -> Dur {
    Dur::secs(10)
}
fn default_body_timeout() -> Dur {
    Dur::secs(30)
}

/// The admin listener: health, readiness, metrics, reload.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Admin {
    #[serde(default = "default_admin_listen")]
    pub listen: String,
    #[serde(default = "yes")]
    pub enabled: bool,
}

impl Default for Admin {
    fn default() -> Self {
        Admin {
            listen: default_admin_listen(),
            enabled: true,
        }
    }
}

fn default_admin_listen() -> String {
    "127.0.0.1:9901".into()
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Json,
    Pretty,
}

/// Logging.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Log {
    /// A `tracing` filter such as `info` or `rampart=debug,info`.
    #[serde(default = "default_level")]
    pub level: String,
    #[serde(default)]
    pub format: LogFormat,
    /// One line per request; turn off only for benchmarks.
    #[serde(default = "yes")]
    pub access_log: bool,
}

impl Default for Log {
    fn default() -> Self {
        Log {
            level: default_level(),
            format: LogFormat::Json,
            access_log: true,
        }
    }
}

fn default_level() -> String {
    "info".into()
}

/// A socket that accepts client traffic.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listener {
    /// `IP:port`, e.g. `0.0.0.0:8080` or `[::]:8443`.
    pub address: String,
    pub tls: Option<ListenerTls>,
    /// Accept HTTP/2 without TLS (prior knowledge, for gRPC behind a TLS
    /// terminator). Plain listeners otherwise speak HTTP/1.1.
    #[serde(default)]
    pub h2c: bool,
    /// Answer every request with a redirect to HTTPS on this port.
    pub redirect_https_port: Option<u16>,
    /// Networks allowed or refused on this listener, checked on the TCP
    /// peer at accept (a refused connection is closed unanswered).
    pub ip_list: Option<ListenerIpList>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ListenerIpList {
    #[serde(default)]
    pub allow: Vec<IpNet>,
    #[serde(default)]
    pub deny: Vec<IpNet>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum TlsVersion {
    #[default]
    #[serde(rename = "1.2")]
    V1_2,
    #[serde(rename = "1.3")]
    V1_3,
}

/// TLS termination for a listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerTls {
    /// One entry per certificate; chosen by SNI.
    pub certificates: Vec<Certificate>,
    #[serde(default)]
    pub min_version: TlsVersion,
    /// Protocols offered by ALPN, in preference order.
    #[serde(default = "default_alpn")]
    pub alpn: Vec<String>,
    pub client_auth: Option<ClientAuth>,
}

fn default_alpn() -> Vec<String> {
    vec!["h2".into(), "http/1.1".into()]
}

/// A certificate chain and key, served for the given SNI names.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Certificate {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// SNI names (exact, or `*.example.com`) this certificate answers.
    pub server_names: Vec<String>,
    /// Served to clients that send no SNI (at most one per listener).
    #[serde(default)]
    pub default: bool,
}

/// Client-certificate verification (mTLS).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientAuth {
    /// PEM bundle of CAs that client certificates must chain to.
    pub ca: PathBuf,
    /// Refuse the handshake without a valid client certificate.
    #[serde(default = "yes")]
    pub required: bool,
}

/// How a route matches the request path.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum PathMatch {
    Exact(String),
    Prefix(String),
    Regex(String),
}

/// A route: which requests, which upstream, which protections.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    pub name: String,
    /// Higher runs first; equal priorities keep file order.
    #[serde(default)]
    pub priority: i32,
    /// Host names (exact or `*.example.com`); empty matches any host.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Listeners this route serves; empty means all.
    #[serde(default)]
    pub listeners: Vec<String>,
    pub path: Option<PathMatch>,
    /// Allowed methods; empty allows all.
    #[serde(default)]
    pub methods: Vec<String>,
    /// The upstream pool's name.
    pub upstream: String,
    /// Strip this prefix from the path before forwarding.
    pub strip_prefix: Option<String>,
    pub hsts: Option<Hsts>,
    pub ip_list: Option<IpListPolicy>,
    pub request_limits: Option<RequestLimitsPolicy>,
    pub waf: Option<WafPolicy>,
    pub auth: Option<crate::exposure::AuthPolicy>,
    /// TOTP step-up for consumers that enrolled (runs after `auth`).
    pub step_up: Option<crate::identity::StepUpPolicy>,
    pub rate_limit: Option<crate::traffic::RateLimitPolicy>,
    pub reputation: Option<crate::traffic::ReputationPolicy>,
    pub dlp: Option<crate::exposure::DlpPolicy>,
    pub openapi: Option<crate::exposure::OpenApiPolicy>,
    /// Bot score, challenges and clearance (after auth and rate limits).
    pub bot: Option<crate::bot::BotPolicy>,
    /// Credential-stuffing protection of the route's login endpoint.
    pub login_guard: Option<crate::bot::LoginGuardPolicy>,
    /// Learn this route's endpoints from its traffic (API discovery).
    #[serde(default)]
    pub discovery: bool,
    /// Requests in flight on this route (0: unlimited); over it, 503.
    #[serde(default)]
    pub max_concurrent: usize,
    /// Which routes are shed first under load.
    #[serde(default)]
    pub criticality: Criticality,
}

/// `Strict-Transport-Security` added to responses on TLS connections.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hsts {
    #[serde(default = "default_hsts_age")]
    pub max_age: Dur,
    #[serde(default)]
    pub include_subdomains: bool,
    #[serde(default)]
    pub preload: bool,
}

fn default_hsts_age() -> Dur {
    Dur::secs(365 * 86400)
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum FilterMode {
    #[default]
    Enforce,
    Monitor,
}

/// Static IP allow/deny lists for a route.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpListPolicy {
    #[serde(default)]
    pub mode: FilterMode,
    /// When non-empty, only these networks may use the route.
    #[serde(default)]
    pub allow: Vec<IpNet>,
    /// These networks are refused (checked before `allow`).
    #[serde(default)]
    pub deny: Vec<IpNet>,
}

/// Request size limits for a route.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestLimitsPolicy {
    #[serde(default)]
    pub mode: FilterMode,
    pub max_body_bytes: Option<Bytes>,
    pub max_uri_bytes: Option<Bytes>,
    pub max_query_args: Option<usize>,
    pub max_headers: Option<usize>,
    pub max_header_bytes: Option<Bytes>,
}

/// Which rules a route's WAF runs.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Hash, Default)]
#[serde(rename_all = "snake_case")]
pub enum WafRules {
    /// rampart's own compact rule set, built in.
    #[default]
    Builtin,
    /// The OWASP Core Rule Set from `crs_dir`.
    Crs,
}

/// What happens to a request body larger than the WAF inspects.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Hash, Default)]
#[serde(rename_all = "snake_case")]
pub enum OnBodyLimit {
    /// Refuse with 413.
    #[default]
    Reject,
    /// Inspect the first `body_limit` bytes, let the rest through.
    Partial,
}

/// A rule a route's WAF ignores for one target (e.g. `ARGS:password`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq, Hash)]
#[serde(deny_unknown_fields)]
pub struct WafTargetExclusion {
    pub target: String,
    pub ids: Vec<u64>,
}

/// The WAF on a route: ModSecurity SecLang rules, CRS or built in.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WafPolicy {
    #[serde(default)]
    pub mode: FilterMode,
    #[serde(default)]
    pub rules: WafRules,
    /// The CRS folder (with `crs-setup.conf[.example]` and `rules/`).
    pub crs_dir: Option<PathBuf>,
    /// More SecLang files, loaded after the rule set.
    #[serde(default)]
    pub extra_rules: Vec<PathBuf>,
    #[serde(default = "default_paranoia")]
    pub paranoia: u8,
    /// Anomaly score at which a request is blocked.
    #[serde(default = "default_inbound_threshold")]
    pub inbound_threshold: u32,
    #[serde(default)]
    pub exclude_ids: Vec<u64>,
    #[serde(default)]
    pub exclude_tags: Vec<String>,
    #[serde(default)]
    pub exclude_targets: Vec<WafTargetExclusion>,
    /// Request body bytes inspected (and held back from the upstream until
    /// inspected).
    #[serde(default = "default_waf_body_limit")]
    pub body_limit: Bytes,
    #[serde(default)]
    pub on_body_limit: OnBodyLimit,
    /// Run the response phases (3 and 4: CRS's data-leakage rules) and block
    /// responses whose outbound anomaly score reaches `outbound_threshold`.
    #[serde(default)]
    pub inspect_response: bool,
    #[serde(default = "default_outbound_threshold")]
    pub outbound_threshold: u32,
    /// Response body bytes inspected; the gateway holds the response back
    /// from the client until they are, and inspects the rest no further.
    #[serde(default = "default_waf_response_limit")]
    pub response_body_limit: Bytes,
    /// Response content types whose bodies are inspected.
    #[serde(default = "default_waf_response_types")]
    pub response_content_types: Vec<String>,
    /// Remember, per worker thread, what the rules found in short values
    /// (header values, names, paths) from one request to the next, keyed
    /// on their exact bytes: a value seen again skips its transformations
    /// and scans. Verdicts are the same either way.
    #[serde(default = "yes")]
    pub value_memo: bool,
}

fn default_outbound_threshold() -> u32 {
    4
}
fn default_waf_response_limit() -> Bytes {
    Bytes(512 * 1024)
}
fn default_waf_response_types() -> Vec<String> {
    [
        "text/plain",
        "text/html",
        "text/xml",
        "application/json",
        "application/problem+json",
    ]
    .map(String::from)
    .to_vec()
}

fn default_paranoia() -> u8 {
    1
}
fn default_inbound_threshold() -> u32 {
    5
}
fn default_waf_body_limit() -> Bytes {
    Bytes(128 * 1024)
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Balance {
    #[default]
    RoundRobin,
    LeastConnections,
    ConsistentHash,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum UpstreamProtocol {
    /// HTTP/1.1, or what ALPN picks on TLS.
    #[default]
    Auto,
    Http1,
    /// HTTP/2 only (prior knowledge on plain TCP): gRPC upstreams.
    Http2,
}

/// A pool of upstream servers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    /// `host:port` entries; use `tls` for HTTPS upstreams.
    pub servers: Vec<String>,
    #[serde(default)]
    pub balance: Balance,
    /// For `consistent_hash`: `client_ip`, `header:NAME` or `cookie:NAME`.
    pub hash_on: Option<String>,
    #[serde(default)]
    pub protocol: UpstreamProtocol,
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: Dur,
    /// Time to receive the response headers once the request is sent.
    #[serde(default = "default_read_timeout")]
    pub read_timeout: Dur,
    /// Time for the whole exchange up to the response headers, retries included.
    #[serde(default = "default_total_timeout")]
    pub total_timeout: Dur,
    /// Extra attempts for idempotent requests without a body.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Idle keep-alive connections kept per server and worker.
    #[serde(default = "default_pool_idle")]
    pub max_idle_per_server: usize,
    pub health_check: Option<HealthCheck>,
    #[serde(default)]
    pub passive_health: PassiveHealth,
    pub tls: Option<UpstreamTls>,
}

fn default_connect_timeout() -> Dur {
    Dur::secs(3)
}
fn default_read_timeout() -> Dur {
    Dur::secs(30)
}
fn default_total_timeout() -> Dur {
    Dur::secs(60)
}
fn default_retries() -> u32 {
    1
}
fn default_pool_idle() -> usize {
    64
}

/// Active health checks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheck {
    #[serde(default = "default_health_path")]
    pub path: String,
    #[serde(default = "default_health_interval")]
    pub interval: Dur,
    #[serde(default = "default_health_timeout")]
    pub timeout: Dur,
    /// Consecutive successes that bring a server back.
    #[serde(default = "default_two")]
    pub healthy_threshold: u32,
    /// Consecutive failures that take a server out.
    #[serde(default = "default_two")]
    pub unhealthy_threshold: u32,
    /// Optional `Host` header for the probe.
    pub host: Option<String>,
}

fn default_health_path() -> String {
    "/".into()
}
fn default_health_interval() -> Dur {
    Dur::secs(5)
}
fn default_health_timeout() -> Dur {
    Dur::secs(2)
}
fn default_two() -> u32 {
    2
}

/// Passive ejection: servers that fail live requests are rested.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PassiveHealth {
    /// Consecutive failures (connect errors, timeouts, 5xx from 502–504) that eject; 0 disables.
    #[serde(default = "default_passive_failures")]
    pub max_failures: u32,
    #[serde(default = "default_eject")]
    pub eject_for: Dur,
}

impl Default for PassiveHealth {
    fn default() -> Self {
        PassiveHealth {
            max_failures: default_passive_failures(),
            eject_for: default_eject(),
        }
    }
}

fn default_passive_failures() -> u32 {
    5
}
fn default_eject() -> Dur {
    Dur::secs(30)
}

/// TLS to the upstream, always verified.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamTls {
    /// PEM CA bundle; the system roots when absent.
    pub ca: Option<PathBuf>,
    /// Client certificate and key presented to the upstream.
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    /// Name to verify (and send as SNI); the server's host by default.
    pub server_name: Option<String>,
}

/// The built-in sample JSON API (users, orders, login) for demos.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SampleApi {
    pub listen: String,
}
