//! WebSocket (and any HTTP/1.1 `Upgrade`) pass-through: once the upstream
//! answers 101, the two upgraded connections are spliced byte for byte.

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;

use crate::upstream::RawUpgrade;

/// The upstream's side of a switched connection, from either client.
pub enum UpstreamSide {
    /// hyper's client (TLS upstreams).
    Hyper(OnUpgrade),
    /// rampart's own HTTP/1.1 client: the socket, and what the upstream sent
    /// after its 101 head (the tunnel's first bytes for the client).
    Raw(RawUpgrade),
}

/// Splices the client's and the upstream's upgraded streams in a task.
pub fn tunnel(client: OnUpgrade, upstream: UpstreamSide) {
    tokio::spawn(async move {
        let client = match client.await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(target: "rampart::proxy", error = %e, "upgrade failed");
                return;
            }
        };
        let mut client = TokioIo::new(client);
        let result = match upstream {
            UpstreamSide::Hyper(on) => match on.await {
                Ok(up) => tokio::io::copy_bidirectional(&mut client, &mut TokioIo::new(up))
                    .await
                    .map(drop),
                Err(e) => {
                    tracing::debug!(target: "rampart::proxy", error = %e, "upgrade failed");
                    return;
                }
            },
            UpstreamSide::Raw(RawUpgrade {
                mut stream,
                leftover,
            }) => match client.write_all(&leftover).await {
                Ok(()) => tokio::io::copy_bidirectional(&mut client, &mut stream)
                    .await
                    .map(drop),
                Err(e) => Err(e),
            },
        };
        if let Err(e) = result {
            tracing::debug!(target: "rampart::proxy", error = %e, "upgraded connection ended with an error");
        }
    });
}
