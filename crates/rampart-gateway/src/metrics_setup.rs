//! The Prometheus recorder: installed once per process, rendered by the admin
//! listener's `/metrics`.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Latency buckets from 0.25 ms to 10 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Installs the global recorder (first call wins) and returns its handle.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .expect("static buckets are valid")
                .build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be set (embedding); keep ours for rendering.
            let _ = metrics::set_global_recorder(recorder);
            describe();
            handle
        })
        .clone()
}

fn describe() {
    metrics::describe_counter!(
        "rampart_requests_total",
        "Requests by route and status class"
    );
    metrics::describe_histogram!(
        "rampart_request_duration_seconds",
        "Request duration, first byte in to last byte out"
    );
    metrics::describe_counter!(
        "rampart_decisions_total",
        "Filter decisions by filter, decision, reason and mode"
    );
    metrics::describe_gauge!(
        "rampart_upstream_healthy",
        "1 when an upstream server passes its health checks"
    );
    metrics::describe_counter!(
        "rampart_upstream_failures_total",
        "Failed upstream attempts by reason"
    );
    metrics::describe_counter!(
        "rampart_connections_total",
        "Accepted client connections by listener"
    );
    metrics::describe_gauge!("rampart_connections_active", "Open client connections");
    metrics::describe_counter!(
        "rampart_config_reloads_total",
        "Configuration loads by result"
    );
    metrics::describe_counter!(
        "rampart_tls_handshake_failures_total",
        "Failed TLS handshakes by listener"
    );
}

/// Runs the exporter's periodic upkeep until `stop` turns true. Without it,
/// histogram samples pile up between scrapes (memory grows with traffic).
pub async fn upkeep(mut stop: tokio::sync::watch::Receiver<bool>) {
    let handle = install();
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = tick.tick() => handle.run_upkeep(),
            _ = stop.wait_for(|&s| s) => return,
        }
    }
}

/// Renders the metrics in Prometheus text format.
pub fn render() -> String {
    let h = install();
    h.run_upkeep();
    h.render()
}
