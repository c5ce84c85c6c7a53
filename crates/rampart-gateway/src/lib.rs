//! rampart-gateway: the data plane on hyper.
//!
//! [`Gateway::start`] compiles a config into a [`snapshot::Snapshot`], binds
//! its listeners and starts the worker threads; [`Gateway::reload`] swaps in a
//! new snapshot atomically (a bad config keeps the old one serving);
//! [`Gateway::shutdown`] drains in-flight requests. The request path itself
//! lives in [`proxy`]; everything a reload changes is in the snapshot.

pub mod admin;
pub mod adminapi;
pub mod body;
pub mod build;
pub mod control;
pub mod discover;
pub mod events;
pub mod flood;
pub mod h1server;
pub mod headers;
pub mod hold;
pub mod hygiene;
mod io_wrap;
pub mod log;
mod map_pool;
pub mod metrics_setup;
pub mod name_memo;
pub mod peer_tls;
pub mod proxy;
pub mod pump;
pub mod reputation;
pub mod router;
pub mod server;
pub mod services;
pub mod snapshot;
pub mod tls;
pub mod upstream;
pub mod websocket;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use rampart_config::{ConfigError, ConfigErrors, LoadedConfig};
use serde::Serialize;
use tokio::sync::watch;

use server::{Shared, WorkerCmd, WorkerHandle};
use snapshot::Snapshot;

/// The outcome of the latest (re)load, reported by the admin API.
#[derive(Debug, Clone, Serialize, Default)]
pub struct ReloadStatus {
    pub generation: u64,
    pub last_reload_ok: bool,
    pub last_error: Option<String>,
    /// Unix time of the last successful load.
    pub loaded_at: u64,
    pub reloads_ok: u64,
    pub reloads_failed: u64,
}

/// A listener's configured address and the address it is bound to.
#[derive(Debug, Clone)]
struct Bound {
    configured: String,
    local: SocketAddr,
}

/// A running gateway.
pub struct Gateway {
    shared: Arc<Shared>,
    workers: Mutex<Vec<WorkerHandle>>,
    worker_count: usize,
    bound: Mutex<HashMap<String, Bound>>,
    status: Mutex<ReloadStatus>,
    generation: AtomicU64,
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Effective worker count: configured, or one per core.
pub fn worker_count(configured: usize) -> usize {
    if configured > 0 {
        configured
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }
}

impl Gateway {
    /// Builds the snapshot, binds listeners, starts workers. Must run inside a
    /// tokio runtime: health checks are spawned on it.
    pub fn start(loaded: LoadedConfig) -> Result<Arc<Gateway>, ConfigErrors> {
        Self::start_with(loaded, Arc::new(services::Services::default()))
    }

    /// Like [`start`](Self::start), with stores made beforehand
    /// ([`services::Services::start`] connects to the cluster's Redis).
    pub fn start_with(
        loaded: LoadedConfig,
        services: Arc<services::Services>,
    ) -> Result<Arc<Gateway>, ConfigErrors> {
        metrics_setup::install();
        let loaded = Arc::new(loaded);
        let workers = worker_count(loaded.config.server.workers);
        let snap = Snapshot::build(loaded.clone(), workers, &services)?;
        let (shutdown, _) = watch::channel(false);
        let (stopped, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            snapshot: ArcSwap::from_pointee(snap),
            connections: Default::default(),
            conn_table: Default::default(),
            load: Default::default(),
            events: Default::default(),
            services: services.clone(),
            shutdown,
            stopped,
        });
        let mut handles = Vec::with_capacity(workers);
        for i in 0..workers {
            let h = server::spawn_worker(i, shared.clone()).map_err(|e| {
                ConfigErrors::from(ConfigError::new(
                    "server.workers",
                    format!("cannot start worker thread: {e}"),
                ))
            })?;
            handles.push(h);
        }
        let gw = Arc::new(Gateway {
            shared,
            workers: Mutex::new(handles),
            worker_count: workers,
            bound: Mutex::new(HashMap::new()),
            status: Mutex::new(ReloadStatus::default()),
            generation: AtomicU64::new(0),
        });
        gw.sync_listeners(&loaded)?;
        gw.shared.snapshot.load().start_health_checks();
        tokio::spawn(metrics_setup::upkeep(gw.stopped_signal()));
        if let (true, Some(tracker)) = (services.auto_ban, services.tracker.clone()) {
            let sink = Arc::new(reputation::ThreatSink(tracker));
            gw.shared.events.set_sinks(vec![sink]);
        }
        tokio::spawn(services.upkeep(gw.stopped_signal()));
        gw.record(Ok(()));
        Ok(gw)
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.shared.snapshot.load_full()
    }

    /// The bound address of listener `name` (useful with port 0).
    pub fn local_addr(&self, name: &str) -> Option<SocketAddr> {
        self.bound.lock().ok()?.get(name).map(|b| b.local)
    }

    pub fn status(&self) -> ReloadStatus {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Long-lived stores (the threat tracker for the admin API's bans).
    pub fn services(&self) -> &Arc<services::Services> {
        &self.shared.services
    }

    /// Recent security events, and where sinks that act on them plug in.
    pub fn events(&self) -> &Arc<events::EventHub> {
        &self.shared.events
    }

    pub fn open_connections(&self) -> usize {
        self.shared.connections.load(Ordering::Acquire)
    }

    pub fn is_shutting_down(&self) -> bool {
        *self.shared.shutdown.borrow()
    }

    /// Applies a new config: build it fully, bind any new listeners, then swap.
    /// On error nothing changes and the old config keeps serving.
    pub fn reload(&self, loaded: LoadedConfig) -> Result<(), ConfigErrors> {
        let result = self.try_reload(loaded);
        self.record(result.clone());
        result
    }

    fn try_reload(&self, loaded: LoadedConfig) -> Result<(), ConfigErrors> {
        let loaded = Arc::new(loaded);
        if worker_count(loaded.config.server.workers) != self.worker_count {
            tracing::warn!(target: "rampart::config", "server.workers changed: takes effect at the next restart");
        }
        let snap = Snapshot::build(loaded.clone(), self.worker_count, &self.shared.services)?;
        // Bind before swapping, so a taken port fails the reload cleanly.
        self.sync_listeners(&loaded)?;
        snap.start_health_checks();
        self.shared.snapshot.store(Arc::new(snap));
        Ok(())
    }

    /// Records a reload that failed before a config could even be parsed.
    pub fn reload_failed(&self, errors: ConfigErrors) {
        self.record(Err(errors));
    }

    /// A receiver that turns true when shutdown starts.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shared.shutdown.subscribe()
    }

    /// A receiver that turns true when shutdown has finished draining.
    pub fn stopped_signal(&self) -> watch::Receiver<bool> {
        self.shared.stopped.subscribe()
    }

    fn record(&self, result: Result<(), ConfigErrors>) {
        let Ok(mut s) = self.status.lock() else {
            return;
        };
        match result {
            Ok(()) => {
                s.generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
                s.last_reload_ok = true;
                s.last_error = None;
                s.loaded_at = now_unix();
                s.reloads_ok += 1;
                metrics::counter!("rampart_config_reloads_total", "result" => "ok").increment(1);
                tracing::info!(target: "rampart::config", generation = s.generation, "configuration loaded");
            }
            Err(e) => {
                s.last_reload_ok = false;
                s.last_error = Some(e.to_string());
                s.reloads_failed += 1;
                metrics::counter!("rampart_config_reloads_total", "result" => "error").increment(1);
                tracing::error!(target: "rampart::config", error = %e, "configuration rejected; the previous one keeps serving");
            }
        }
    }

    /// Binds listeners that are new or moved, and tells workers to drop the
    /// ones that went away. Unchanged listeners keep their sockets.
    fn sync_listeners(&self, loaded: &LoadedConfig) -> Result<(), ConfigErrors> {
        let mut bound = self.bound.lock().expect("listener table");
        let mut new_sockets = Vec::new();
        for (name, l) in &loaded.config.listeners {
            if bound.get(name).is_some_and(|b| b.configured == l.address) {
                continue;
            }
            let path = format!("listeners.{name}.address");
            let addr: SocketAddr = l
                .address
                .parse()
                .map_err(|_| loaded.annotate(vec![ConfigError::new(&path, "invalid address")]))?;
            let sockets = self.bind_all(addr).map_err(|e| {
                loaded.annotate(vec![ConfigError::new(
                    &path,
                    format!("cannot listen on {addr}: {e}"),
                )])
            })?;
            new_sockets.push((name.clone(), l.address.clone(), sockets));
        }
        let workers = self.workers.lock().expect("workers");
        let gone: Vec<String> = bound
            .keys()
            .filter(|n| {
                loaded
                    .config
                    .listeners
                    .get(*n)
                    .is_none_or(|l| l.address != bound[*n].configured)
            })
            .cloned()
            .collect();
        for name in gone {
            bound.remove(&name);
            let name: Arc<str> = Arc::from(name.as_str());
            for w in workers.iter() {
                let _ = w.tx.send(WorkerCmd::Unlisten { name: name.clone() });
            }
        }
        for (name, configured, sockets) in new_sockets {
            let local = sockets[0]
                .local_addr()
                .expect("bound socket has an address");
            tracing::info!(target: "rampart::server", listener = %name, address = %local, "listening");
            let arc: Arc<str> = Arc::from(name.as_str());
            for (w, socket) in workers.iter().zip(sockets) {
                let _ = w.tx.send(WorkerCmd::Listen {
                    name: arc.clone(),
                    socket,
                });
            }
            bound.insert(name, Bound { configured, local });
        }
        Ok(())
    }

    /// One socket per worker on the same address (port 0 resolves on the first).
    fn bind_all(&self, addr: SocketAddr) -> std::io::Result<Vec<std::net::TcpListener>> {
        let first = server::bind_reuseport(addr)?;
        let actual = first.local_addr()?;
        let mut sockets = vec![first];
        for _ in 1..self.worker_count {
            sockets.push(server::bind_reuseport(actual)?);
        }
        Ok(sockets)
    }

    /// Stops accepting, lets in-flight requests finish for up to `drain`, then
    /// stops the workers.
    pub async fn shutdown(&self, drain: Duration) {
        tracing::info!(target: "rampart::server", "shutting down: draining connections");
        let _ = self.shared.shutdown.send(true);
        let deadline = tokio::time::Instant::now() + drain;
        while self.open_connections() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let left = self.open_connections();
        if left > 0 {
            tracing::warn!(target: "rampart::server", connections = left, "drain timeout: closing remaining connections");
            // Workers wait for the count to reach zero; zero it so they stop,
            // and dropping their runtimes closes what is left.
            self.shared.connections.store(0, Ordering::Release);
        }
        let handles = std::mem::take(&mut *self.workers.lock().expect("workers"));
        let joined = tokio::task::spawn_blocking(move || {
            for h in handles {
                drop(h.tx);
                let _ = h.thread.join();
            }
        });
        let _ = joined.await;
        let _ = self.shared.stopped.send(true);
    }
}
