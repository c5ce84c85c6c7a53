//! Test helpers shared by rampart's crates.
//!
//! [`RedisServer`] runs a real `redis-server` process on a loopback port of
//! its own, so tests exercise the real protocol, can stop the server mid-test
//! to prove the failure policies, and start it again on the same port to prove
//! recovery. `.ci/run` installs `redis-server`; without it the helper panics
//! with an explanation instead of letting a test pass untested.

pub mod browser;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` child process bound to 127.0.0.1 on a free port.
/// Dropping it kills the process.
pub struct RedisServer {
    port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a fresh, empty server (no persistence) and waits until it
    /// answers PING.
    pub fn start() -> RedisServer {
        let mut server = RedisServer {
            port: free_port(),
            child: None,
        };
        server.restart();
        server
    }

    /// `redis://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Kills the server (as an outage would) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (after [`stop`](Self::stop)).
    pub fn restart(&mut self) {
        self.stop();
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port"])
            .arg(self.port.to_string())
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run redis-server ({e}); install it (apt-get install -y redis-server), as .ci/run does")
            });
        self.child = Some(child);
        self.wait_ready();
    }

    /// Sends one inline command and returns the raw reply (for tests that
    /// inspect or seed server state without a client library).
    pub fn command(&self, line: &str) -> String {
        let mut stream = TcpStream::connect(self.addr()).expect("connect to test redis");
        stream
            .set_read_timeout(Some(Duration::from_secs(2)))
            .expect("set timeout");
        stream
            .write_all(format!("{line}\r\n").as_bytes())
            .expect("write to test redis");
        let mut buf = [0u8; 4096];
        let n = stream.read(&mut buf).unwrap_or(0);
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if TcpStream::connect(self.addr()).is_ok() && self.command("PING").starts_with("+PONG")
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "redis-server on port {} did not start within 10 s",
            self.port
        );
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_answers_stops_and_comes_back() {
        let mut redis = RedisServer::start();
        assert!(redis.command("SET k v").starts_with("+OK"));
        assert!(redis.command("GET k").contains("v"));
        redis.stop();
        assert!(TcpStream::connect(redis.addr()).is_err());
        redis.restart();
        assert!(redis.command("PING").starts_with("+PONG"));
        // A restarted server has no persistence: state is gone.
        assert!(redis.command("GET k").starts_with("$-1"));
    }
}
