//! Listeners and connections: worker threads, accept loops, TLS handshakes,
//! HTTP/1.1 and HTTP/2 serving, graceful drain.
//!
//! Each worker is one thread with its own single-threaded tokio runtime and
//! its own `SO_REUSEPORT` socket per listener, so the kernel spreads
//! connections and a request never crosses threads (nginx's model). Listener
//! sockets are bound by the control side and handed to the workers, which
//! lets a reload add or drop listeners without touching the others.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use futures_util::FutureExt;
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::AbortHandle;

use crate::body::ClientBody;
use crate::h1server;
use crate::hygiene::{header_watchdog, FramingVerdicts, ScannedIo};
use crate::proxy::{self, ConnInfo};
use crate::snapshot::{ListenerRuntime, Snapshot};

/// State shared by the workers and the control side.
pub struct Shared {
    pub snapshot: ArcSwap<Snapshot>,
    /// Open client connections across all workers.
    pub connections: AtomicUsize,
    /// Flipped to true to start a graceful shutdown.
    pub shutdown: watch::Sender<bool>,
    /// Flipped to true once draining is over and the workers stopped.
    pub stopped: watch::Sender<bool>,
    /// Open connections and connection rate per client IP.
    pub conn_table: Arc<crate::flood::ConnTable>,
    /// Requests in flight and upstream latency, for concurrency caps and shedding.
    pub load: Arc<crate::flood::Load>,
    /// Recent security events and the sinks that act on them.
    pub events: Arc<crate::events::EventHub>,
    /// Stores and connections that outlive configurations.
    pub services: Arc<crate::services::Services>,
}

pub enum WorkerCmd {
    Listen {
        name: Arc<str>,
        socket: std::net::TcpListener,
    },
    Unlisten {
        name: Arc<str>,
    },
}

pub struct WorkerHandle {
    pub tx: mpsc::UnboundedSender<WorkerCmd>,
    pub thread: std::thread::JoinHandle<()>,
}

/// Starts worker `index` on its own thread.
pub fn spawn_worker(index: usize, shared: Arc<Shared>) -> std::io::Result<WorkerHandle> {
    let (tx, rx) = mpsc::unbounded_channel();
    let thread = std::thread::Builder::new()
        .name(format!("rampart-worker-{index}"))
        .spawn(move || {
            crate::upstream::set_worker_index(index);
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("worker runtime");
            rt.block_on(worker_main(rx, shared));
        })?;
    Ok(WorkerHandle { tx, thread })
}

async fn worker_main(mut rx: mpsc::UnboundedReceiver<WorkerCmd>, shared: Arc<Shared>) {
    let mut accepting: HashMap<Arc<str>, AbortHandle> = HashMap::new();
    let mut shutdown = shared.shutdown.subscribe();
    loop {
        tokio::select! {
            cmd = rx.recv() => match cmd {
                Some(WorkerCmd::Listen { name, socket }) => {
                    match TcpListener::from_std(socket) {
                        Ok(l) => {
                            let task = tokio::spawn(accept_loop(l, name.clone(), shared.clone()));
                            if let Some(old) = accepting.insert(name, task.abort_handle()) {
                                old.abort();
                            }
                        }
                        Err(e) => tracing::error!(target: "rampart::server", listener = %name, error = %e, "cannot use listener socket"),
                    }
                }
                Some(WorkerCmd::Unlisten { name }) => {
                    if let Some(task) = accepting.remove(&name) {
                        task.abort();
                    }
                }
                None => break,
            },
            _ = shutdown.changed() => break,
        }
    }
    // Stop accepting; let open connections finish (each got the signal too).
    for task in accepting.values() {
        task.abort();
    }
    while shared.connections.load(Ordering::Acquire) > 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Binds `addr` with `SO_REUSEPORT` so every worker can own a socket for it.
pub fn bind_reuseport(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

async fn accept_loop(listener: TcpListener, name: Arc<str>, shared: Arc<Shared>) {
    let accepted = metrics::counter!("rampart_connections_total", "listener" => name.to_string());
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                accepted.increment(1);
                let snap = shared.snapshot.load();
                let ip = peer.ip().to_canonical();
                if snap.bans_at_accept && is_banned(&shared, ip) {
                    refused_connection(&name, crate::flood::ConnRefusal::Banned);
                    continue;
                }
                let lists = snap.listeners.get(&*name).and_then(|l| l.ip_lists.as_ref());
                if lists.is_some_and(|l| l.refuses(ip).is_some()) {
                    refused_connection(&name, crate::flood::ConnRefusal::IpList);
                    continue;
                }
                match shared.conn_table.admit(ip, snap.conn_limits) {
                    Ok(permit) => {
                        let conn = serve_connection(stream, peer, name.clone(), shared.clone());
                        tokio::spawn(async move {
                            conn.await;
                            drop(permit);
                        });
                    }
                    // Closed before TLS or HTTP cost anything.
                    Err(why) => refused_connection(&name, why),
                }
            }
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(target: "rampart::server", listener = %name, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

fn is_banned(shared: &Shared, ip: std::net::IpAddr) -> bool {
    let tracker = shared.services.tracker.as_ref();
    tracker.is_some_and(|t| t.is_banned(ip).is_some())
}

fn refused_connection(listener: &str, why: crate::flood::ConnRefusal) {
    metrics::counter!("rampart_connections_refused_total", "listener" => listener.to_string(), "reason" => why.as_str())
        .increment(1);
}

/// Decrements the open-connection count however a connection ends.
struct ConnGuard(Arc<Shared>);

impl Drop for ConnGuard {
    fn drop(&mut self) {
        // Saturating: a drain timeout may already have zeroed the count.
        let _ = self
            .0
            .connections
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| {
                Some(c.saturating_sub(1))
            });
        metrics::gauge!("rampart_connections_active").decrement(1.0);
    }
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    name: Arc<str>,
    shared: Arc<Shared>,
) {
    shared.connections.fetch_add(1, Ordering::AcqRel);
    metrics::gauge!("rampart_connections_active").increment(1.0);
    let _guard = ConnGuard(shared.clone());
    let _ = stream.set_nodelay(true);
    let snap = shared.snapshot.load_full();
    let Some(listener) = snap.listeners.get(&*name) else {
        return;
    };
    let shutdown = shared.shutdown.subscribe();
    let Some(acceptor) = listener.tls.clone() else {
        let plain = Negotiated::default();
        return serve_http(stream, peer, listener, plain, &snap, shared, shutdown).await;
    };
    // Boxed: the TLS states would otherwise size every connection's task,
    // plain ones included (see `drive!`).
    Box::pin(serve_tls(
        stream, peer, acceptor, listener, &snap, shared, shutdown,
    ))
    .await;
}

/// Handshakes a connection on a TLS listener, then serves HTTP on it.
async fn serve_tls(
    stream: TcpStream,
    peer: SocketAddr,
    acceptor: tokio_rustls::TlsAcceptor,
    listener: &ListenerRuntime,
    snap: &Snapshot,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
) {
    let tapped = crate::peer_tls::HelloTap::new(stream);
    let handshake = tokio::time::timeout(snap.header_read_timeout, acceptor.accept(tapped)).await;
    let mut tls = match handshake {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            metrics::counter!("rampart_tls_handshake_failures_total", "listener" => listener.name.to_string()).increment(1);
            tracing::debug!(target: "rampart::tls", %peer, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => return,
    };
    let (tap, session) = tls.get_mut();
    let hello = tap.take();
    let peer_tls = crate::peer_tls::peer_tls(session, &hello);
    let negotiated = Negotiated {
        h2: session.alpn_protocol() == Some(b"h2"),
        peer_tls: Some(peer_tls),
    };
    serve_http(tls, peer, listener, negotiated, snap, shared, shutdown).await;
}

/// What the TLS handshake settled (defaults for plain connections).
#[derive(Default)]
struct Negotiated {
    /// ALPN chose HTTP/2.
    h2: bool,
    peer_tls: Option<Arc<rampart_core::PeerTls>>,
}

/// Serves HTTP on an established (plain or TLS) stream.
async fn serve_http<I>(
    io: I,
    peer: SocketAddr,
    listener: &ListenerRuntime,
    negotiated: Negotiated,
    snap: &Snapshot,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let tls = listener.tls.is_some();
    // Plain h2c listeners sniff the protocol; everything else is decided.
    let sniff_h2c = listener.h2c && !tls;
    let h2 = negotiated.h2;
    let h1_only = !h2 && !sniff_h2c;
    let framing = h1_only.then(|| Arc::new(FramingVerdicts::default()));
    let conn = Arc::new(ConnInfo {
        peer,
        peer_addr: crate::headers::PeerAddr::new(peer.ip()),
        listener: listener.name.clone(),
        tls,
        peer_tls: negotiated.peer_tls,
        framing: framing.clone(),
        load: shared.load.clone(),
        events: shared.events.clone(),
        services: shared.services.clone(),
    });
    let own = (conn.clone(), shared.clone());
    let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let handled = proxy::handle(
            req.map(ClientBody::Hyper),
            conn.clone(),
            shared.snapshot.load_full(),
        );
        // hyper writes heads from maps: raw fields go into the map first.
        handled.map(|resp| resp.map(fields_in_map))
    });
    if h2 {
        let mut b = http2::Builder::new(TokioExecutor::new());
        b.timer(TokioTimer::new())
            .max_concurrent_streams(256)
            .max_header_list_size(snap.limits.max_header_bytes.max(16 * 1024) as u32 * 2)
            .keep_alive_interval(Some(Duration::from_secs(30)));
        drive!(b.serve_connection(TokioIo::new(io), svc), shutdown);
    } else if let Some(framing) = framing {
        // rampart's own server takes the plain requests; the first one that
        // is not plain hands the connection (and its read bytes) to hyper.
        let watchdog = header_watchdog(framing.clone(), snap.header_read_timeout);
        let mut watchdog = std::pin::pin!(watchdog);
        let settings = h1server::Settings {
            max_head: hyper_buf_size(snap),
            max_headers: max_headers(snap),
        };
        let served = h1server::serve(io, own.0, own.1, settings, shutdown.clone());
        let ended = tokio::select! {
            biased;
            ended = served => ended,
            _ = watchdog.as_mut() => return,
        };
        let h1server::Ended::HandOff(io) = ended else {
            return;
        };
        let mut b = http1::Builder::new();
        h1_settings(&mut b, snap);
        let io = TokioIo::new(ScannedIo::new(io, framing));
        drive!(
            b.serve_connection(io, svc).with_upgrades(),
            shutdown,
            watchdog
        );
    } else {
        // h2c: sniff the HTTP/2 preface, otherwise HTTP/1.1.
        let mut b = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        b.http1()
            .timer(TokioTimer::new())
            .header_read_timeout(snap.header_read_timeout)
            .max_buf_size(hyper_buf_size(snap));
        b.http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(256);
        drive!(
            b.serve_connection_with_upgrades(TokioIo::new(io), svc),
            shutdown
        );
    }
}

fn hyper_buf_size(snap: &Snapshot) -> usize {
    // hyper's own hard stop sits above our limit, so that our check (with a
    // reason code) is what normally answers an oversized request.
    (snap.limits.max_header_bytes + snap.limits.max_uri) * 2 + 8192
}

/// Header fields a head may have before the server refuses it (431); the
/// configured limit, with room above it so that `hygiene::check` answers
/// first with its reason code.
fn max_headers(snap: &Snapshot) -> usize {
    snap.limits.max_headers * 2 + 8
}

fn h1_settings(b: &mut http1::Builder, snap: &Snapshot) {
    // The header-read timeout is `hygiene::header_watchdog`'s: one timer per
    // connection rather than hyper's, made and cancelled for every request
    // (and often waking the event loop to do so, tokio #5207). Heads and
    // bodies are copied into one buffer per write rather than gathered with
    // writev: fewer instructions per exchange (40.1 k vs 41.0 k in
    // bench/profile.sh), the same number of system calls.
    b.header_read_timeout(None)
        .writev(false)
        .keep_alive(true)
        .max_headers(max_headers(snap))
        .max_buf_size(hyper_buf_size(snap));
}

/// Runs a served connection to its end; on shutdown, asks it to finish its
/// in-flight requests and close. With a watchdog future, the connection is
/// dropped (closed) as soon as the watchdog returns. A macro rather than a
/// function: the three connection types share `graceful_shutdown` by name,
/// not by trait.
macro_rules! drive {
    ($conn:expr, $shutdown:expr) => {
        drive!($conn, $shutdown, std::future::pending::<()>())
    };
    ($conn:expr, $shutdown:expr, $watchdog:expr) => {{
        let mut shutdown: watch::Receiver<bool> = $shutdown;
        // On the heap: hyper's HTTP/1 and HTTP/2 connections are large, and
        // inline they would size the task of every connection, plain HTTP/1
        // ones too. tokio moves a task's whole future into its allocation,
        // so a large future costs a large copy and fresh pages per
        // connection (docs/benchmarks.md, "Where the p99 goes").
        let mut conn = Box::pin($conn);
        let mut watchdog = std::pin::pin!($watchdog);
        let already = *shutdown.borrow();
        if already {
            conn.as_mut().graceful_shutdown();
        }
        // Biased: the connection, polled on every wake-up, comes first.
        let draining = tokio::select! {
            biased;
            _ = conn.as_mut() => false,
            _ = watchdog.as_mut() => false,
            _ = shutdown.wait_for(|&s| s) => true,
        };
        if draining {
            conn.as_mut().graceful_shutdown();
            tokio::select! {
                biased;
                _ = conn.as_mut() => {}
                _ = watchdog.as_mut() => {}
            }
        }
    }};
}
use drive;

/// A response with every field in its map (see `ResponseBody::take_raw_head`).
fn fields_in_map(
    mut resp: http::Response<crate::body::ResponseBody>,
) -> http::Response<crate::body::ResponseBody> {
    if let Some(raw) = resp.body_mut().take_raw_head() {
        raw.append_into(resp.headers_mut());
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of the future an async fn returns, without calling it.
    fn future_size<F, Fut>(_: F) -> usize
    where
        F: FnOnce(TcpStream, SocketAddr, Arc<str>, Arc<Shared>) -> Fut,
    {
        std::mem::size_of::<Fut>()
    }

    /// Every accepted connection's task holds this future, and tokio copies
    /// it whole into the task's allocation. With hyper's HTTP/2 and HTTP/1
    /// connections and the TLS states inline it was far larger; they are
    /// boxed on the paths that use them (see `drive!`).
    #[test]
    fn a_connection_task_stays_small() {
        let size = future_size(serve_connection);
        println!("serve_connection future: {size} bytes");
        // 22.9 KB before the boxing, 8.1 KB after (debug build).
        assert!(
            size <= 12 * 1024,
            "serve_connection's future is {size} bytes"
        );
    }
}
