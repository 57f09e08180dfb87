//! A TCP proxy in front of a real server (ClickHouse or Postgres) that a test
//! can cut: the way to take a server "down" for one test without stopping
//! the server other tests share. While cut, new connections are closed at
//! once and open ones are dropped, which clients see exactly as a server
//! restart: connections lost, reconnects refused until it is back.
//!
//! It can also tear single requests ([`TcpProxy::tear_after`]): a connection
//! whose client→server bytes contain a pattern (say `INSERT`) is closed
//! after a given number of bytes from that pattern on, so the server sees a
//! request body that stops halfway, as when a client or the network dies
//! mid-insert.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct TcpProxy {
    addr: SocketAddr,
    up: watch::Sender<bool>,
    tear: Arc<Tear>,
    task: tokio::task::JoinHandle<()>,
}

/// The armed tear, shared with every connection.
#[derive(Default)]
struct Tear {
    plan: Mutex<Option<TearPlan>>,
    done: AtomicU64,
}

#[derive(Clone)]
struct TearPlan {
    pattern: Vec<u8>,
    after_bytes: u64,
    remaining: u64,
}

impl Tear {
    /// Takes one tear of the plan if `chunk` holds its pattern: the bytes
    /// allowed from the pattern's start on.
    fn take(&self, chunk: &[u8]) -> Option<(usize, u64)> {
        let mut plan = self.plan.lock().unwrap();
        let armed = plan.as_mut()?;
        if armed.remaining == 0 {
            return None;
        }
        let at = find(chunk, &armed.pattern)?;
        armed.remaining -= 1;
        Some((at, armed.after_bytes))
    }
}

/// Case-insensitive search of `needle` in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w.eq_ignore_ascii_case(needle))
}

impl TcpProxy {
    /// Starts a proxy on a free loopback port forwarding to `upstream`
    /// (host:port).
    pub async fn start(upstream: String) -> anyhow::Result<TcpProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (up, up_rx) = watch::channel(true);
        let upstream = Arc::new(upstream);
        let tear = Arc::new(Tear::default());
        let tear_for_task = tear.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if !*up_rx.borrow() {
                    drop(client);
                    continue;
                }
                let upstream = upstream.clone();
                let mut up_rx = up_rx.clone();
                let tear = tear_for_task.clone();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(upstream.as_str()).await else {
                        return;
                    };
                    tokio::select! {
                        _ = relay(client, server, &tear) => {}
                        _ = up_rx.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        Ok(TcpProxy { addr, up, tear, task })
    }

    /// `host:port` clients should use instead of the real server's.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// An HTTP URL to the proxy.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Cuts every connection, now and until [`TcpProxy::restore`].
    pub fn cut(&self) {
        let _ = self.up.send(false);
    }

    pub fn restore(&self) {
        let _ = self.up.send(true);
    }

    /// Tears the next `times` requests whose client→server bytes contain
    /// `pattern` (ASCII, case-insensitive; looked for within each read, so
    /// keep it short): from the pattern's first byte on, `after_bytes` more
    /// bytes reach the server, then both sides of that connection are
    /// closed. Replaces an earlier plan; other connections are untouched.
    pub fn tear_after(&self, pattern: &str, after_bytes: u64, times: u64) {
        *self.tear.plan.lock().unwrap() =
            Some(TearPlan { pattern: pattern.as_bytes().to_vec(), after_bytes, remaining: times });
    }

    /// Tears of the current plan not yet made.
    pub fn tears_pending(&self) -> u64 {
        self.tear.plan.lock().unwrap().as_ref().map_or(0, |p| p.remaining)
    }

    /// Connections torn so far (over all plans).
    pub fn tears_done(&self) -> u64 {
        self.tear.done.load(Ordering::Relaxed)
    }
}

/// Copies both ways until either side closes, or a tear ends it.
async fn relay(client: TcpStream, server: TcpStream, tear: &Tear) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upstream = async {
        let mut buf = vec![0u8; 64 * 1024];
        // Bytes still allowed through once a tear was taken on this connection.
        let mut allowed: Option<u64> = None;
        loop {
            let n = match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let mut chunk = &buf[..n];
            if allowed.is_none()
                && let Some((at, after)) = tear.take(chunk)
            {
                // Bytes before the pattern pass freely.
                if server_write.write_all(&chunk[..at]).await.is_err() {
                    break;
                }
                chunk = &chunk[at..];
                allowed = Some(after);
            }
            if let Some(left) = allowed.as_mut() {
                let pass = (*left).min(chunk.len() as u64) as usize;
                let _ = server_write.write_all(&chunk[..pass]).await;
                *left -= pass as u64;
                if *left == 0 {
                    tear.done.fetch_add(1, Ordering::Relaxed);
                    // Dropping the halves closes both connections.
                    return;
                }
                continue;
            }
            if server_write.write_all(chunk).await.is_err() {
                break;
            }
        }
        let _ = server_write.shutdown().await;
        // The server may still answer; wait for the other direction.
        std::future::pending::<()>().await;
    };
    let downstream = async {
        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
        let _ = client_write.shutdown().await;
    };
    tokio::select! {
        _ = upstream => {}
        _ = downstream => {}
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
