//! A client stream with bytes already read put back in front: what hyper
//! gets when the own server hands a connection over mid-way.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, ReadBuf};

/// Reads `prefix` first, then `inner`; writes go straight to `inner`.
pub struct Prefixed<I> {
    prefix: Bytes,
    inner: I,
}

impl<I> Prefixed<I> {
    pub fn new(prefix: Bytes, inner: I) -> Self {
        Prefixed { prefix, inner }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Prefixed<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.prefix.is_empty() {
            return Pin::new(&mut self.inner).poll_read(cx, buf);
        }
        let n = self.prefix.len().min(buf.remaining());
        buf.put_slice(&self.prefix[..n]);
        self.prefix.advance(n);
        Poll::Ready(Ok(()))
    }
}

crate::io_wrap::write_through!(Prefixed);

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn the_prefix_comes_first_then_the_stream() {
        let (mut client, server) = tokio::io::duplex(64);
        client.write_all(b" world").await.expect("write");
        drop(client);
        let mut io = Prefixed::new(Bytes::from_static(b"hello"), server);
        let mut got = String::new();
        io.read_to_string(&mut got).await.expect("read");
        assert_eq!(got, "hello world");
    }

    #[tokio::test]
    async fn a_small_read_buffer_takes_the_prefix_in_pieces() {
        let (_client, server) = tokio::io::duplex(64);
        let mut io = Prefixed::new(Bytes::from_static(b"abcdef"), server);
        let mut two = [0u8; 2];
        for want in [b"ab", b"cd", b"ef"] {
            io.read_exact(&mut two).await.expect("read");
            assert_eq!(&two, want);
        }
    }
}
