//! rampart's own keep-alive pool for plain HTTP/1.1 upstreams, built on
//! `hyper::client::conn::http1`.
//!
//! hyper-util's legacy client keeps one shared pool behind a lock, keyed by a
//! hashed scheme + authority; on the proxy's hot path its checkout and return
//! cost more than parsing the upstream's response (see `docs/benchmarks.md`).
//! Here every thread gets its own idle lists (a worker is one thread running a
//! single-threaded runtime), indexed by the server's position in the pool, so
//! a checkout is a few loads and no lock, hash or spawned task.
//!
//! A connection goes back to its idle list as soon as the response headers
//! arrived, not when the body is done: hyper marks the sender ready again once
//! the body has been read, and checkout skips senders that are not ready yet.
//! That avoids a task or callback per request just to watch for readiness.
//! TLS and HTTP/2 upstreams stay on the legacy client.
//!
//! Each connection also keeps its own response timer. A request pushes its
//! deadline forward, which tokio does with one atomic store while the timer
//! is armed; a fresh `tokio::time::timeout` per request would insert into
//! and remove from the timer wheel every time (and often wake the event
//! loop to do so, tokio #5207).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::pin::Pin;
use std::time::{Duration, Instant};

use http::uri::Authority;
use http::{HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use thread_local::ThreadLocal;
use tokio::time::Sleep;

use crate::body::RequestBody;

/// How long an unused connection may wait in an idle list (as the legacy
/// client's pool did); upstreams usually close theirs sooner.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// Stale idle connections tried for one request before insisting on a fresh
/// one, so a burst of dead connections cannot keep a request looping.
const MAX_STALE: usize = 2;

/// Why a request through the pool failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("connect failed: {0}")]
    Connect(#[source] std::io::Error),
    #[error("connect timed out")]
    ConnectTimeout,
    /// The exchange failed once a connection was there; the source chain
    /// carries the request body's own error (e.g. the client's body timeout).
    #[error("upstream exchange failed: {0}")]
    Request(#[source] hyper::Error),
    /// No response headers by the deadline.
    #[error("upstream did not answer in time")]
    Timeout,
}

impl Error {
    /// Whether no connection could be made (the server is unreachable).
    pub fn is_connect(&self) -> bool {
        matches!(self, Error::Connect(_) | Error::ConnectTimeout)
    }
}

/// A connection's sender and its response timer, reused request after
/// request.
struct Conn {
    tx: SendRequest<RequestBody>,
    timer: Pin<Box<Sleep>>,
}

impl Conn {
    fn new(tx: SendRequest<RequestBody>, deadline: tokio::time::Instant) -> Self {
        Conn {
            tx,
            // Lazy: tokio registers the timer on its first poll.
            timer: Box::pin(tokio::time::sleep_until(deadline)),
        }
    }
}

/// One idle connection and when it was put back.
struct Idle {
    conn: Conn,
    since: Instant,
}

/// One thread's idle lists, one per server. Only ever touched by its own
/// thread (`ThreadLocal`), hence `RefCell` and no lock.
struct Local {
    idle: Box<[RefCell<VecDeque<Idle>>]>,
}

/// The pool of one upstream `Pool`: per-thread idle connections per server.
pub struct H1Pool {
    local: ThreadLocal<Local>,
    servers: usize,
    max_idle: usize,
    connect_timeout: Duration,
    idle_timeout: Duration,
}

impl H1Pool {
    pub fn new(servers: usize, max_idle: usize, connect_timeout: Duration) -> Self {
        H1Pool {
            local: ThreadLocal::new(),
            servers,
            max_idle,
            connect_timeout,
            idle_timeout: IDLE_TIMEOUT,
        }
    }

    /// This thread's idle lists. Never held across an `.await`: the request
    /// future may be polled on another thread under a multi-threaded runtime
    /// (tests), and must stay `Send`.
    fn local(&self) -> &Local {
        self.local.get_or(|| Local {
            idle: (0..self.servers)
                .map(|_| RefCell::new(VecDeque::new()))
                .collect(),
        })
    }

    /// Sends `req` (origin-form URI) to server `server` at `authority`, on an
    /// idle connection when one is ready, else on a new one; gives up with
    /// [`Error::Timeout`] at `deadline` unless the response headers came.
    ///
    /// A request that hyper hands back unsent (the pooled connection turned
    /// out closed before it was written) is sent again on another connection
    /// at once; this is not one of the proxy's retries, since the upstream
    /// never saw it, and needs no copy of the request.
    pub async fn send(
        &self,
        server: usize,
        authority: &Authority,
        mut req: Request<RequestBody>,
        deadline: tokio::time::Instant,
    ) -> Result<Response<Incoming>, Error> {
        if !req.headers().contains_key(http::header::HOST) {
            // HTTP/1.1 requires Host; the legacy client filled it in likewise.
            if let Ok(h) = HeaderValue::from_str(authority.as_str()) {
                req.headers_mut().insert(http::header::HOST, h);
            }
        }
        let mut stale = 0;
        loop {
            let pooled = if stale < MAX_STALE {
                self.checkout(server)
            } else {
                None
            };
            let reused = pooled.is_some();
            let mut conn = match pooled {
                Some(conn) => conn,
                // Boxed: the rare connect path would otherwise grow every
                // request's future (and its moves).
                None => Box::pin(self.connect(authority, deadline)).await?,
            };
            // The connection's own timer, moved to this request's deadline.
            // (Inline rather than a method: an `async fn` taking the request
            // would add a copy of it to every request's future.)
            conn.timer.as_mut().reset(deadline);
            let sent = conn.tx.try_send_request(req);
            let answer = tokio::select! {
                biased;
                r = sent => r,
                // On timeout the connection is dropped with its request.
                _ = conn.timer.as_mut() => return Err(Error::Timeout),
            };
            match answer {
                Ok(resp) => {
                    // After a switch the connection belongs to the tunnel.
                    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
                        self.checkin(server, conn);
                    }
                    return Ok(resp);
                }
                Err(mut e) => match e.take_message() {
                    Some(back) if reused => {
                        stale += 1;
                        req = back;
                    }
                    _ => return Err(Error::Request(e.into_error())),
                },
            }
        }
    }

    /// Takes a ready idle connection to `server`, dropping closed and expired
    /// ones on the way. Connections still busy with a response body stay.
    fn checkout(&self, server: usize) -> Option<Conn> {
        let mut list = self.local().idle[server].borrow_mut();
        if list.is_empty() {
            return None;
        }
        let now = Instant::now();
        // Oldest first: expiry is checked lazily, at the front only.
        while list
            .front()
            .is_some_and(|i| now.duration_since(i.since) > self.idle_timeout)
        {
            list.pop_front();
        }
        // Newest first: the most recently used connection is the likeliest
        // to still be open on the upstream's side.
        let mut i = list.len();
        while i > 0 {
            i -= 1;
            if list[i].conn.tx.is_closed() {
                list.remove(i);
            } else if list[i].conn.tx.is_ready() {
                return list.remove(i).map(|idle| idle.conn);
            }
        }
        None
    }

    /// Puts a connection back; dropped when the list is full (hyper closes it
    /// once its response is done).
    fn checkin(&self, server: usize, conn: Conn) {
        if conn.tx.is_closed() {
            return;
        }
        let mut list = self.local().idle[server].borrow_mut();
        if list.len() >= self.max_idle {
            return;
        }
        list.push_back(Idle {
            conn,
            since: Instant::now(),
        });
    }

    /// Opens a connection and runs it on the current runtime.
    async fn connect(
        &self,
        authority: &Authority,
        deadline: tokio::time::Instant,
    ) -> Result<Conn, Error> {
        // `Authority::host` keeps IPv6 brackets, which address parsing rejects.
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let port = authority.port_u16().unwrap_or(80);
        let connect = tokio::time::timeout(
            self.connect_timeout,
            tokio::net::TcpStream::connect((host, port)),
        );
        let stream = tokio::select! {
            biased;
            r = connect => match r {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return Err(Error::Connect(e)),
                Err(_) => return Err(Error::ConnectTimeout),
            },
            // The whole exchange's deadline may come before the connect timeout.
            _ = tokio::time::sleep_until(deadline) => return Err(Error::Timeout),
        };
        // Requests are written in one go; Nagle would only delay them.
        let _ = stream.set_nodelay(true);
        // One flattened write per request, as on the client side (server.rs).
        let (tx, conn) = http1::Builder::new()
            .writev(false)
            .handshake(TokioIo::new(stream))
            .await
            .map_err(Error::Request)?;
        tokio::spawn(async move {
            // Upgrades (WebSocket) hand the socket to `hyper::upgrade::on`.
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(target: "rampart::upstream", error = %e, "upstream connection ended");
            }
        });
        Ok(Conn::new(tx, deadline))
    }

    /// Idle connections this thread holds for `server` (tests).
    #[cfg(test)]
    fn idle_len(&self, server: usize) -> usize {
        self.local().idle[server].borrow().len()
    }
}

#[cfg(test)]
#[path = "h1pool_tests.rs"]
mod tests;
