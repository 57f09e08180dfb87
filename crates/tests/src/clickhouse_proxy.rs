//! A TCP proxy in front of the real ClickHouse that a test can cut: the way
//! to take ClickHouse "down" for one test without stopping the server other
//! tests share. While cut, new connections are closed at once and open ones
//! are dropped, which the client sees as a network failure.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct ClickHouseProxy {
    addr: SocketAddr,
    up: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl ClickHouseProxy {
    /// Starts a proxy on a free loopback port forwarding to `upstream`
    /// (host:port).
    pub async fn start(upstream: String) -> anyhow::Result<ClickHouseProxy> {
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
        Ok(ClickHouseProxy { addr, up, task })
    }

    /// The URL clients should use instead of the real server's.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Cuts every connection, now and until [`ClickHouseProxy::restore`].
    pub fn cut(&self) {
        let _ = self.up.send(false);
    }

    pub fn restore(&self) {
        let _ = self.up.send(true);
    }
}

impl Drop for ClickHouseProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
