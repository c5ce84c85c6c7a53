//! rampart's own keep-alive pool and client for plain HTTP/1.1 upstreams.
//!
//! hyper-util's legacy client keeps one shared pool behind a lock, and
//! hyper's HTTP/1 client runs every connection as a task that the request
//! talks to over channels; on the proxy's hot path both cost more than the
//! exchange itself (see `docs/benchmarks.md`). Here every thread gets its own
//! idle lists (a worker is one thread running a single-threaded runtime),
//! indexed by the server's position in the pool, so a checkout is a few loads
//! and no lock, hash or task; and the exchange runs in the request's future
//! ([`h1conn`](super::h1conn)), with the wire format in
//! [`h1wire`](super::h1wire) and [`h1chunked`](super::h1chunked).
//!
//! A connection goes back to its idle list as soon as its response body has
//! been read; a body that came with its head is read at once. An idle
//! connection is checked before use: one the upstream closed meanwhile (or
//! that holds stray bytes) is dropped, and the request takes another, so the
//! upstream's idle timeout never costs a request.
//!
//! Each connection also keeps its own response timer. A request pushes its
//! deadline forward, which tokio does with one atomic store while the timer
//! is armed; a fresh `tokio::time::timeout` per request would insert into
//! and remove from the timer wheel every time (and often wake the event
//! loop to do so, tokio #5207).
//! TLS and HTTP/2 upstreams stay on hyper's client.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::uri::Authority;
use http::{Response, StatusCode};
use thread_local::ThreadLocal;

use super::h1body::{H1Body, Home, RawUpgrade, UpstreamBody};
use super::h1conn::{Answer, Conn};
use super::h1wire::{Framing, WireError};
use super::UpstreamResponse;
use crate::body::{BodyError, RequestBody};

/// How long an unused connection may wait in an idle list (as the legacy
/// client's pool did); upstreams usually close theirs sooner.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// Why a request through the pool failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("connect failed: {0}")]
    Connect(#[source] std::io::Error),
    #[error("connect timed out")]
    ConnectTimeout,
    /// Writing the request failed (and no response came).
    #[error("writing to the upstream failed: {0}")]
    Write(#[source] std::io::Error),
    /// Reading the response head failed.
    #[error("upstream response: {0}")]
    Read(#[from] ReadError),
    /// The client's request body failed (e.g. its idle timeout); the source
    /// chain carries the body's own error.
    #[error("request body: {0}")]
    Body(#[source] BodyError),
    /// The request body did not match its declared length.
    #[error("request body does not match its framing")]
    RequestFraming,
    /// No response headers by the deadline.
    #[error("upstream did not answer in time")]
    Timeout,
}

/// Why reading an upstream response failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("read failed: {0}")]
    Io(#[source] std::io::Error),
    #[error("{0}")]
    Wire(#[source] WireError),
    #[error("connection closed before the message was complete")]
    Closed,
}

impl Error {
    /// Whether no connection could be made (the server is unreachable).
    pub fn is_connect(&self) -> bool {
        matches!(self, Error::Connect(_) | Error::ConnectTimeout)
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

    /// Sends a request (`head`'s origin-form target and headers, a `Host` of
    /// `authority` when it has none, then `body`) to server `server`, on an
    /// idle connection when a usable one is there, else on a new one; gives
    /// up with [`Error::Timeout`] at `deadline` unless the response headers
    /// came.
    pub async fn send(
        self: &Arc<Self>,
        server: usize,
        authority: &Authority,
        head: &http::request::Parts,
        added: &crate::headers::Added,
        body: RequestBody,
        deadline: tokio::time::Instant,
    ) -> Result<UpstreamResponse, Error> {
        let mut conn = match self.checkout(server) {
            Some(conn) => conn,
            // Boxed: the rare connect path would otherwise grow every
            // request's future (and its moves).
            None => Box::pin(self.connect(authority, deadline)).await?,
        };
        // The connection's own timer, moved to this request's deadline.
        conn.timer.as_mut().reset(deadline);
        // On any error the connection is dropped with its request.
        let answer = conn.exchange(head, added, authority.as_str(), body).await?;
        Ok(self.respond(server, conn, answer))
    }

    /// The response for an answered exchange: its body whole when it came
    /// with the head (the connection goes back to the pool now), else
    /// streaming from the connection.
    fn respond(
        self: &Arc<Self>,
        server: usize,
        mut conn: Conn,
        answer: Answer,
    ) -> UpstreamResponse {
        let Answer {
            head,
            framing,
            reusable,
        } = answer;
        let body = if head.status == StatusCode::SWITCHING_PROTOCOLS {
            let leftover = conn.read.split().freeze();
            UpstreamBody::Upgrade(Some(RawUpgrade {
                stream: conn.stream,
                leftover,
            }))
        } else {
            let ready = match framing {
                Framing::Empty => Some(Bytes::new()),
                Framing::Length(n) if conn.read.len() as u64 >= n => {
                    Some(conn.read.split_to(n as usize).freeze())
                }
                _ => None,
            };
            match ready {
                Some(data) => {
                    // Bytes after a complete response mean a confused upstream.
                    if reusable && conn.read.is_empty() {
                        self.checkin(server, conn);
                    }
                    UpstreamBody::Full((!data.is_empty()).then_some(data))
                }
                None => {
                    let home = reusable.then(|| Home {
                        pool: self.clone(),
                        server,
                    });
                    UpstreamBody::Stream(Box::new(H1Body::new(conn, framing, home)))
                }
            }
        };
        let edited = head.has_edited_fields();
        let mut resp = Response::new(body);
        *resp.status_mut() = head.status;
        *resp.version_mut() = head.version;
        UpstreamResponse::raw(resp, head.fields, edited)
    }

    /// Takes a usable idle connection to `server`, dropping expired, closed
    /// and confused ones on the way.
    fn checkout(&self, server: usize) -> Option<Conn> {
        let mut list = self.local().idle[server].borrow_mut();
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
        while let Some(idle) = list.pop_back() {
            if idle.conn.is_usable() {
                return Some(idle.conn);
            }
        }
        None
    }

    /// Puts a connection whose exchange is complete back; dropped (closed)
    /// when the list is full.
    pub(super) fn checkin(&self, server: usize, conn: Conn) {
        let mut list = self.local().idle[server].borrow_mut();
        if list.len() >= self.max_idle {
            return;
        }
        list.push_back(Idle {
            conn,
            since: Instant::now(),
        });
    }

    /// Opens a connection.
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
        Ok(Conn::new(stream, deadline))
    }

    /// [`H1Pool::send`] for a whole request (tests).
    #[cfg(test)]
    async fn send_request(
        self: &Arc<Self>,
        server: usize,
        authority: &Authority,
        req: http::Request<RequestBody>,
        deadline: tokio::time::Instant,
    ) -> Result<Response<UpstreamBody>, Error> {
        let (head, body) = req.into_parts();
        let added = crate::headers::Added::default();
        let answered = self.send(server, authority, &head, &added, body, deadline);
        Ok(answered.await?.into_response())
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

#[cfg(test)]
#[path = "h1client_tests.rs"]
mod client_tests;
