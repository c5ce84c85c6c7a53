//! The request handler: hygiene → route → request filters → upstream (with
//! balancing, timeouts, retries) → response filters → client.
//!
//! Every refusal, whether a filter's or the gateway's own (no route, upstream
//! down, timeout), leaves through [`deny`], which renders it with
//! `rampart_core::respond` and logs it like any other exchange.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderValue, ALLOW, LOCATION, STRICT_TRANSPORT_SECURITY};
use http::uri::PathAndQuery;
use http::{Method, Request, Response, StatusCode, Uri, Version};
use http_body::Body as _;
use rampart_core::reason::codes;
use rampart_core::{Decision, Denial, Mode, RequestCtx};
use tokio::sync::mpsc;

use crate::body::{BodyError, ClientBody, RequestBody, ResponseBody, TimedIncoming};
use crate::headers::{self, X_REQUEST_ID};
use crate::hold::{self, Held};
use crate::hygiene::{self, Framing, FramingVerdicts};
use crate::log::Exchange;
use crate::router::{self, RouteMatch};
use crate::snapshot::{RouteRuntime, Snapshot};
use crate::upstream::fields::RawHead;
use crate::upstream::{InFlight, Pool, SendError, UpstreamResponse};

/// What the handler knows about the connection a request came on.
pub struct ConnInfo {
    pub peer: SocketAddr,
    /// The peer's address, formatted once for the forwarding headers.
    pub peer_addr: headers::PeerAddr,
    pub listener: Arc<str>,
    pub tls: bool,
    /// Client certificate and JA4 from the TLS handshake.
    pub peer_tls: Option<Arc<rampart_core::PeerTls>>,
    /// Raw-byte framing verdicts (HTTP/1 connections only).
    pub framing: Option<Arc<FramingVerdicts>>,
    /// Gateway-wide load figures (shared by all connections).
    pub load: Arc<crate::flood::Load>,
    pub events: Arc<crate::events::EventHub>,
    pub services: Arc<crate::services::Services>,
}

type Resp = Response<ResponseBody>;

/// Handles one request against the snapshot current when it arrived.
pub async fn handle(
    req: Request<ClientBody>,
    conn: Arc<ConnInfo>,
    snap: Arc<Snapshot>,
) -> Result<Resp, Infallible> {
    // Taken first, for every request, so verdicts stay in step with requests.
    let framing = conn.framing.as_ref().map_or(Framing::Clean, |f| f.next());
    let (mut parts, body) = req.into_parts();
    let trusted_peer = snap.trusted_proxies.contains(conn.peer.ip().to_canonical());
    let mut ctx = RequestCtx::new(
        headers::request_id(&parts.headers, trusted_peer),
        headers::client_ip(conn.peer, &parts.headers, &snap.trusted_proxies),
        conn.peer,
        conn.listener.clone(),
    );
    ctx.tls = conn.tls;
    ctx.peer_tls = conn.peer_tls.clone();
    let mut out = Outcome::new(&parts, &snap, &conn);

    if let Err(d) = hygiene::check(
        &parts.method,
        parts.version,
        &parts.uri,
        &parts.headers,
        framing,
        &snap.limits,
    ) {
        let d = ctx
            .apply("protocol", Mode::Enforce, Decision::Deny(d))
            .expect("enforced");
        return Ok(deny(ctx, &d, out));
    }
    let host = router::request_host(&parts.uri, &parts.headers).unwrap_or("");
    if let Some(port) = snap
        .listeners
        .get(&*conn.listener)
        .and_then(|l| l.redirect_https_port)
    {
        return Ok(redirect_https(ctx, host, port, &parts.uri, out));
    }
    let route = match snap
        .router
        .find(&conn.listener, host, &parts.method, parts.uri.path())
    {
        RouteMatch::Found(r) => r.clone(),
        RouteMatch::NotFound => {
            let d = Denial::new(
                StatusCode::NOT_FOUND,
                codes::NO_ROUTE,
                "no route matches this request",
            );
            return Ok(deny(ctx, &d, out));
        }
        RouteMatch::MethodNotAllowed(methods) => {
            let allow = methods
                .iter()
                .map(Method::as_str)
                .collect::<Vec<_>>()
                .join(", ");
            let mut d = Denial::new(
                StatusCode::METHOD_NOT_ALLOWED,
                codes::METHOD_NOT_ALLOWED,
                "method not allowed on this route",
            );
            if let Ok(v) = HeaderValue::try_from(allow) {
                d = d.with_header(ALLOW, v);
            }
            return Ok(deny(ctx, &d, out));
        }
    };
    ctx.route = Some(route.name.clone());
    ctx.has_request_body = !body.is_end_stream();
    out.route = Some(route.clone());
    let _in_flight = conn.load.enter();
    let _route_in_flight = route.in_flight.enter();
    if let Some(d) = overload(&snap, &conn.load, &route) {
        let d = ctx
            .apply("overload", Mode::Enforce, Decision::Deny(d))
            .expect("enforced");
        return Ok(deny(ctx, &d, out));
    }

    for f in &route.filters {
        if rampart_guard::reputation::SkipFilters::skips(&ctx, f.name()) {
            continue;
        }
        let decision = f.request_headers(&mut ctx, &mut parts).resolve().await;
        if let Some(d) = ctx.apply(f.name(), f.mode(), decision) {
            return Ok(deny(ctx, &d, out));
        }
    }
    let hop = Hop {
        conn: &conn,
        trusted_peer,
        body_timeout: snap.body_read_timeout,
        min_body_rate: snap.min_body_rate,
    };
    Ok(forward(ctx, parts, body, hop, route, out).await)
}

/// The concurrency caps and load shedding, checked once the route is known.
fn overload(snap: &Snapshot, load: &crate::flood::Load, route: &RouteRuntime) -> Option<Denial> {
    let busy = |reason, detail| {
        Denial::new(StatusCode::SERVICE_UNAVAILABLE, reason, detail)
            .with_header(http::header::RETRY_AFTER, HeaderValue::from_static("1"))
    };
    if snap.max_concurrent_requests > 0 && load.in_flight() > snap.max_concurrent_requests {
        return Some(busy(
            codes::OVERLOADED,
            "the gateway is at its request limit",
        ));
    }
    if route.max_concurrent > 0 && route.in_flight.in_flight() > route.max_concurrent {
        return Some(busy(
            codes::ROUTE_OVERLOADED,
            "this route is at its request limit",
        ));
    }
    let shed = snap.shedding.as_ref()?;
    if !load.should_shed(shed, route.criticality) {
        return None;
    }
    let retry = HeaderValue::from(shed.retry_after.as_secs().max(1));
    Some(
        Denial::new(
            StatusCode::SERVICE_UNAVAILABLE,
            codes::LOAD_SHED,
            "the service is under heavy load; retry later",
        )
        .with_header(http::header::RETRY_AFTER, retry),
    )
}

/// Per-exchange facts gathered on the way, turned into the log at the end.
struct Outcome {
    method: Method,
    path: String,
    access_log: bool,
    unmatched: Arc<crate::log::RouteMetrics>,
    route: Option<Arc<RouteRuntime>>,
    upstream: Option<(Arc<Pool>, usize)>,
    upstream_ms: Option<f64>,
    bytes_in: Option<Arc<std::sync::atomic::AtomicU64>>,
    /// Whether refusals render as HTML (the client prefers it).
    html: bool,
    events: Arc<crate::events::EventHub>,
    /// Holds off the header-read timeout while the exchange runs (HTTP/1).
    open: Option<hygiene::OpenExchange>,
}

impl Outcome {
    fn new(head: &http::request::Parts, snap: &Snapshot, conn: &ConnInfo) -> Self {
        Outcome {
            method: head.method.clone(),
            // Only the access log needs the path: skip the copy without it.
            path: if snap.access_log {
                head.uri.path().to_string()
            } else {
                String::new()
            },
            access_log: snap.access_log,
            unmatched: snap.unmatched.clone(),
            route: None,
            upstream: None,
            upstream_ms: None,
            bytes_in: None,
            html: rampart_core::respond::prefers_html(&head.headers),
            events: conn.events.clone(),
            open: conn.framing.as_ref().map(FramingVerdicts::exchange_started),
        }
    }

    fn into_exchange(self, ctx: RequestCtx, status: StatusCode) -> Box<Exchange> {
        Box::new(Exchange {
            metrics: self
                .route
                .as_ref()
                .map_or(self.unmatched, |r| r.metrics.clone()),
            ctx,
            method: self.method,
            path: self.path,
            status: status.as_u16(),
            route: self.route,
            upstream: self.upstream,
            upstream_ms: self.upstream_ms,
            access_log: self.access_log,
            bytes_in: self.bytes_in,
            events: self.events,
            open: self.open,
            raw_head: None,
        })
    }
}

/// Renders a refusal and logs the exchange.
fn deny(ctx: RequestCtx, d: &Denial, out: Outcome) -> Resp {
    let rendered = rampart_core::respond::render_as(d, &ctx.request_id, out.html);
    let (mut parts, body) = rendered.into_parts();
    if let (true, Some(hsts)) = (ctx.tls, out.route.as_ref().and_then(|r| r.hsts.clone())) {
        parts.headers.insert(STRICT_TRANSPORT_SECURITY, hsts);
    }
    let ex = out.into_exchange(ctx, parts.status);
    Response::from_parts(parts, ResponseBody::full(body, Some(ex)))
}

fn redirect_https(ctx: RequestCtx, host: &str, port: u16, uri: &Uri, out: Outcome) -> Resp {
    let pq = uri.path_and_query().map_or("/", PathAndQuery::as_str);
    let authority = match (host.contains(':'), port) {
        (true, 443) => format!("[{host}]"),
        (true, p) => format!("[{host}]:{p}"),
        (false, 443) => host.to_string(),
        (false, p) => format!("{host}:{p}"),
    };
    let location = match HeaderValue::try_from(format!("https://{authority}{pq}")) {
        Ok(loc) if !host.is_empty() => loc,
        _ => {
            let d = Denial::new(
                StatusCode::BAD_REQUEST,
                codes::MISSING_HOST,
                "a redirect to HTTPS needs a valid Host",
            );
            return deny(ctx, &d, out);
        }
    };
    let mut resp = Response::new(());
    *resp.status_mut() = StatusCode::PERMANENT_REDIRECT;
    resp.headers_mut().insert(LOCATION, location);
    if let Ok(v) = HeaderValue::from_str(&ctx.request_id) {
        resp.headers_mut().insert(&X_REQUEST_ID, v);
    }
    let ex = out.into_exchange(ctx, StatusCode::PERMANENT_REDIRECT);
    resp.map(|()| ResponseBody::full(Bytes::new(), Some(ex)))
}

fn is_upgrade(parts: &http::request::Parts) -> bool {
    parts.version == Version::HTTP_11
        && parts.headers.contains_key(http::header::UPGRADE)
        && parts
            .headers
            .get_all(http::header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| {
                v.split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
            })
}

/// The connection-level facts `forward` needs.
struct Hop<'a> {
    conn: &'a ConnInfo,
    trusted_peer: bool,
    body_timeout: std::time::Duration,
    min_body_rate: u64,
}

async fn forward(
    mut ctx: RequestCtx,
    mut parts: http::request::Parts,
    body: ClientBody,
    hop: Hop<'_>,
    route: Arc<RouteRuntime>,
    mut out: Outcome,
) -> Resp {
    let pool = route.pool.clone();
    let upgrade = is_upgrade(&parts);
    let client_upgrade = upgrade
        .then(|| parts.extensions.remove::<hyper::upgrade::OnUpgrade>())
        .flatten();
    let key = pool.hash_key(ctx.client_ip, &parts.headers);
    let seen = route.discovery.then(|| crate::discover::Seen::of(&parts));
    // Made once, sent both ways: to the upstream and back to the client.
    let request_id = headers::shared_value(&ctx.request_id);
    let added = prepare_upstream_request(request_id.clone(), &mut parts, &hop, &route, upgrade);

    let has_body = !body.is_end_stream();
    let idempotent = matches!(
        parts.method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    );
    let retries = if !has_body && idempotent && !upgrade {
        pool.retry_budget()
    } else {
        0
    };
    let started = tokio::time::Instant::now();

    let result = if has_body && route.wants_request_body {
        // Boxed: only bodies that filters inspect come this way; inline, its
        // state would make every request's future larger (and its moves).
        let to = Upstream {
            key,
            added: &added,
            started,
        };
        let inspected = send_inspected(&mut ctx, parts, body, &hop, &route, to, &mut out);
        Box::pin(inspected).await
    } else {
        let req_body = if has_body {
            let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
            out.bytes_in = Some(counter.clone());
            RequestBody::Stream(
                TimedIncoming::new(body, hop.body_timeout)
                    .min_rate(hop.min_body_rate)
                    .counted(counter),
            )
        } else {
            RequestBody::Full(None)
        };
        let to = Upstream {
            key,
            added: &added,
            started,
        };
        send_with_retries(&pool, parts, req_body, to, retries, &mut out).await
    };
    let done = tokio::time::Instant::now();
    let upstream_time = done - started;
    out.upstream_ms = Some(upstream_time.as_secs_f64() * 1000.0);
    hop.conn.load.record_latency(upstream_time, done.into_std());

    let answered = match result {
        Ok(r) => r,
        Err(d) => {
            let d = ctx
                .apply("upstream", Mode::Enforce, Decision::Deny(d))
                .expect("enforced");
            // Gateway-side failures are not security events unless a filter acted.
            if matches!(
                d.reason,
                codes::UPSTREAM_UNAVAILABLE | codes::UPSTREAM_TIMEOUT | codes::UPSTREAM_ERROR
            ) {
                ctx.events.retain(|e| e.filter != "upstream");
            }
            return deny(ctx, &d, out);
        }
    };
    // Nothing reads the fields on the way and the proxy changes none of
    // them: they go to the client as the upstream sent them, with no map.
    let plain = !upgrade && seen.is_none() && route.filters.is_empty() && route.response_hold == 0;
    let answered = if plain {
        match answered.into_unedited() {
            Ok((resp, fields)) => {
                let hsts = route.hsts.clone().filter(|_| ctx.tls);
                let head = RawHead {
                    fields,
                    request_id,
                    hsts,
                };
                let (parts, body) = resp.into_parts();
                let mut ex = out.into_exchange(ctx, parts.status);
                ex.raw_head = Some(head);
                return Response::from_parts(parts, ResponseBody::upstream(body, Some(ex)));
            }
            Err(back) => back,
        }
    } else {
        answered
    };
    let mut resp = answered.into_response();
    if upgrade && resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        if let Some(client) = client_upgrade {
            let upstream = match resp.body_mut().take_upgrade() {
                Some(raw) => crate::websocket::UpstreamSide::Raw(raw),
                None => crate::websocket::UpstreamSide::Hyper(hyper::upgrade::on(&mut resp)),
            };
            crate::websocket::tunnel(client, upstream);
        }
    }
    let switched = upgrade && resp.status() == StatusCode::SWITCHING_PROTOCOLS;
    headers::remove_hop_by_hop(resp.headers_mut(), switched);
    if let Some(v) = request_id {
        resp.headers_mut().insert(&X_REQUEST_ID, v);
    }
    if let (true, Some(hsts)) = (ctx.tls, route.hsts.clone()) {
        resp.headers_mut().insert(STRICT_TRANSPORT_SECURITY, hsts);
    }
    let (mut rparts, rbody) = resp.into_parts();
    if let Some(seen) = seen {
        seen.record(&hop.conn.services.discovery, &ctx, &rparts);
    }
    for f in &route.filters {
        let decision = f.response_headers(&mut ctx, &mut rparts);
        if let Some(d) = ctx.apply(f.name(), f.mode(), decision) {
            return deny(ctx, &d, out);
        }
    }
    if route.response_hold > 0 && !switched && hold::may_have_body(&out.method, rparts.status) {
        let timeout = pool.read_timeout();
        // Boxed for the same reason as `send_inspected`.
        let held = Box::pin(hold::hold(
            &mut ctx,
            &route,
            rbody,
            route.response_hold,
            timeout,
        ));
        return match held.await {
            Held::Refused(d) => deny(ctx, &d, out),
            Held::Complete { body, trailers } => {
                hold::fix_length(&mut rparts.headers, body.len());
                let ex = out.into_exchange(ctx, rparts.status);
                let body = ResponseBody::full_with_trailers(body, trailers, Some(ex));
                Response::from_parts(rparts, body)
            }
            Held::Partial { prefix, rest } => {
                let ex = out.into_exchange(ctx, rparts.status);
                Response::from_parts(rparts, ResponseBody::held(prefix, rest, Some(ex)))
            }
        };
    }
    let ex = out.into_exchange(ctx, rparts.status);
    Response::from_parts(rparts, ResponseBody::upstream(rbody, Some(ex)))
}

/// Sends a request whose body the route's filters inspect: the held start
/// of the body is judged before the upstream is contacted, the rest is
/// pumped through the filters while it streams.
async fn send_inspected(
    ctx: &mut RequestCtx,
    mut parts: http::request::Parts,
    body: ClientBody,
    hop: &Hop<'_>,
    route: &RouteRuntime,
    to: Upstream<'_>,
    out: &mut Outcome,
) -> Result<UpstreamResponse, Denial> {
    let mut hint = body.size_hint();
    let mut incoming = TimedIncoming::new(body, hop.body_timeout).min_rate(hop.min_body_rate);
    let mut held = crate::pump::hold(ctx, &mut incoming, route).await?;
    if let Some(len) = crate::pump::replace(ctx, &parts, route, &mut held) {
        parts.headers.remove(http::header::TRANSFER_ENCODING);
        parts
            .headers
            .insert(http::header::CONTENT_LENGTH, HeaderValue::from(len));
        hint = http_body::SizeHint::with_exact(len as u64);
    }
    let (tx, rx) = mpsc::channel(8);
    let req_body = RequestBody::Pumped(rx, hint);
    let send = send_with_retries(&route.pool, parts, req_body, to, 0, out);
    let pump = crate::pump::stream(ctx, held, incoming, route, tx);
    let (sent, pumped) = tokio::join!(send, pump);
    pumped.and(sent)
}

/// Rewrites headers and URI for the upstream: hop-by-hop headers out,
/// prefix stripped; returns the forwarding headers and request id, which
/// go out beside the request's own (see `headers::Added`).
fn prepare_upstream_request(
    request_id: Option<HeaderValue>,
    parts: &mut http::request::Parts,
    hop: &Hop<'_>,
    route: &RouteRuntime,
    upgrade: bool,
) -> headers::Added {
    // The Host value is shared with the request, not copied. Hygiene has
    // checked it is a plain host[:port]; without one (HTTP/2), the authority.
    let (host, from_authority) = match parts.headers.get(http::header::HOST) {
        Some(h) => (Some(h.clone()), false),
        None => (
            parts
                .uri
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok()),
            true,
        ),
    };
    let from = headers::Forwarding {
        peer: &hop.conn.peer_addr,
        trusted_peer: hop.trusted_peer,
        tls: hop.conn.tls,
        host: host.as_ref(),
        request_id,
    };
    let added = headers::for_upstream(&mut parts.headers, upgrade, from);
    if let (true, Some(h)) = (from_authority, host) {
        parts.headers.insert(http::header::HOST, h);
    }
    let pq = parts.uri.path_and_query().map_or("/", PathAndQuery::as_str);
    let new_pq = match route
        .strip_prefix
        .as_deref()
        .and_then(|p| pq.strip_prefix(p))
    {
        Some(rest) if rest.starts_with('/') => PathAndQuery::try_from(rest).ok(),
        Some(rest) => PathAndQuery::try_from(format!("/{rest}")).ok(),
        None => None,
    };
    if let Some(pq) = new_pq {
        let mut up = std::mem::take(&mut parts.uri).into_parts();
        up.path_and_query = Some(pq);
        parts.uri = Uri::from_parts(up).unwrap_or_default();
    }
    parts.version = Version::HTTP_11;
    added
}

/// Where a request goes: the balancing key, and the fields the proxy adds;
/// and when it started for the upstream (the total timeout runs from then).
#[derive(Clone, Copy)]
struct Upstream<'a> {
    key: Option<u64>,
    added: &'a headers::Added,
    started: tokio::time::Instant,
}

/// Sends to a picked server; retries other servers on failure when allowed.
/// Every attempt sends the same head; the body goes with the first (only
/// body-less requests are retried).
async fn send_with_retries(
    pool: &Arc<Pool>,
    head: http::request::Parts,
    body: RequestBody,
    to: Upstream<'_>,
    retries: u32,
    out: &mut Outcome,
) -> Result<UpstreamResponse, Denial> {
    let mut now = to.started;
    let deadline = now + pool.total_timeout();
    let mut body = Some(body);
    let mut attempt = 0;
    let result = loop {
        let Some(idx) = pool.pick(to.key) else {
            break Err(Denial::new(
                StatusCode::SERVICE_UNAVAILABLE,
                codes::UPSTREAM_UNAVAILABLE,
                "no healthy upstream server",
            ));
        };
        let server = &pool.servers[idx];
        out.upstream = Some((pool.clone(), idx));
        let attempt_body = body.take().unwrap_or(RequestBody::Full(None));
        let _in_flight = InFlight::new(server);
        let wait_until = (now + pool.read_timeout()).min(deadline);
        let failure = match pool
            .send(idx, &head, to.added, attempt_body, wait_until)
            .await
        {
            Ok(resp) => {
                let bad_gateway = matches!(resp.status().as_u16(), 502..=504);
                pool.report(idx, !bad_gateway);
                break Ok(resp);
            }
            Err(e) if e.is_timeout() => Denial::new(
                StatusCode::GATEWAY_TIMEOUT,
                codes::UPSTREAM_TIMEOUT,
                "the upstream server did not answer in time",
            ),
            Err(e) => classify(&e),
        };
        if failure.reason != codes::BODY_TIMEOUT {
            pool.report(idx, false);
        }
        metrics::counter!("rampart_upstream_failures_total", "upstream" => pool.name.clone(), "reason" => failure.reason).increment(1);
        now = tokio::time::Instant::now();
        if attempt >= retries || now >= deadline {
            break Err(failure);
        }
        attempt += 1;
    };
    // Written, and no longer needed: its map serves a later request.
    crate::map_pool::give_back(head.headers);
    result
}

/// Maps a client error to the refusal the client sees (no internals leak).
fn classify(e: &SendError) -> Denial {
    let mut source = Some(e.as_error());
    while let Some(s) = source {
        if let Some(BodyError::Timeout) = s.downcast_ref::<BodyError>() {
            return Denial::new(
                StatusCode::REQUEST_TIMEOUT,
                codes::BODY_TIMEOUT,
                "request body was not received in time",
            );
        }
        source = s.source();
    }
    if e.is_connect() {
        return Denial::new(
            StatusCode::BAD_GATEWAY,
            codes::UPSTREAM_UNAVAILABLE,
            "could not connect to the upstream server",
        );
    }
    Denial::new(
        StatusCode::BAD_GATEWAY,
        codes::UPSTREAM_ERROR,
        "the upstream server failed to answer",
    )
}
