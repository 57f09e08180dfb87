//! A TCP proxy in front of a real server (ClickHouse or Postgres) that a test
//! can cut: the way to take a server "down" for one test without stopping
//! the server other tests share. While cut, new connections are closed at
//! once and open ones are dropped, which clients see exactly as a server
//! restart: connections lost, reconnects refused until it is back.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct TcpProxy {
    addr: SocketAddr,
    up: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl TcpProxy {
    /// Starts a proxy on a free loopback port forwarding to `upstream`
    /// (host:port).
    pub async fn start(upstream: String) -> anyhow::Result<TcpProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (up, up_rx) = watch::channel(true);
        let upstream = Arc::new(upstream);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if !*up_rx.borrow() {
                    drop(client);
                    continue;
                }
                let upstream = upstream.clone();
                let mut up_rx = up_rx.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(upstream.as_str()).await else {
                        return;
                    };
                    let mut client = client;
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = up_rx.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        Ok(TcpProxy { addr, up, task })
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
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
