//! Launching a `scorekeeper serve` child process: the one launcher of the
//! tests, the benchmarks and the fault runs.
//!
//! [`Serve`] builds the process (binary, databases, parts switched off,
//! more environment, where its log goes); [`Serve::spawn`] starts it on two
//! free loopback ports; [`ServeProcess`] waits until it is ready, kills it
//! with SIGKILL or stops it with SIGTERM, and kills it when dropped.
//! [`Serve::tls`] makes it serve TLS; readiness is then checked over TLS
//! and [`ServeProcess::grpc_url`] is `https://`.
//!
//! The process never inherits the scheduler settings of the environment the
//! caller runs in (`REINDEX_SCHEDULE`, `AUDIT_SCHEDULE`): a scheduled job
//! appearing in the middle of a test or a measurement would change what it
//! sees. Callers that want a scheduler say so with [`Serve::env`]. Nor does
//! it inherit `CLICKHOUSE_CLUSTER`: the cluster goes with the server it
//! names ([`Serve::clickhouse_cluster`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use crate::loopback::{free_port, http_get, https_get};

/// The process could not be started, or did not become ready.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("finding free ports for scorekeeper serve")]
    Ports(#[source] std::io::Error),
    #[error("creating the log file {}", .path.display())]
    Log {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("starting {}", .binary.display())]
    Spawn {
        binary: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("scorekeeper serve exited at start ({status}); {log}")]
    ExitedAtStart { status: ExitStatus, log: String },
    #[error("scorekeeper serve did not become ready ({what}) within {within:?}; {log}")]
    NotReady { what: &'static str, within: Duration, log: String },
    #[error("signalling or reaping scorekeeper serve")]
    Signal(#[source] std::io::Error),
    #[error("scorekeeper serve did not stop within {0:?} of SIGTERM")]
    DidNotStop(Duration),
}

pub type Result<T, E = ServeError> = std::result::Result<T, E>;

/// A `scorekeeper serve` process to start. Every part runs unless switched
/// off; the listen addresses are free loopback ports chosen at spawn.
#[derive(Clone, Debug)]
pub struct Serve {
    binary: PathBuf,
    /// `None` removes the variable from what the child inherits.
    env: BTreeMap<String, Option<String>>,
    api: bool,
    log: Option<PathBuf>,
    /// The CA that signed the certificate the process serves TLS with.
    tls_ca: Option<Vec<u8>>,
}

impl Serve {
    /// `<binary> serve`, quiet but for warnings (`RUST_LOG=warn`), with its
    /// log on this process's standard error.
    pub fn new(binary: impl Into<PathBuf>) -> Serve {
        let mut env = BTreeMap::new();
        env.insert("REINDEX_SCHEDULE".to_owned(), None);
        env.insert("AUDIT_SCHEDULE".to_owned(), None);
        // One server unless the caller names a cluster (`clickhouse_cluster`).
        env.insert("CLICKHOUSE_CLUSTER".to_owned(), None);
        env.insert("RUST_LOG".to_owned(), Some("warn".to_owned()));
        Serve { binary: binary.into(), env, api: true, log: None, tls_ca: None }
    }

    /// Sets `key=value` in the child's environment (the last setting of a
    /// key wins).
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Serve {
        self.env.insert(key.into(), Some(value.into()));
        self
    }

    /// The Postgres database (`DATABASE_URL`).
    pub fn postgres(self, url: &str) -> Serve {
        self.env("DATABASE_URL", url)
    }

    /// The ClickHouse server and database (`CLICKHOUSE_*`).
    pub fn clickhouse(self, url: &str, database: &str, user: &str, password: &str) -> Serve {
        self.env("CLICKHOUSE_URL", url)
            .env("CLICKHOUSE_DATABASE", database)
            .env("CLICKHOUSE_USER", user)
            .env("CLICKHOUSE_PASSWORD", password)
    }

    /// The ClickHouse cluster the server of [`Serve::clickhouse`] belongs
    /// to (`CLICKHOUSE_CLUSTER`).
    pub fn clickhouse_cluster(self, cluster: &str) -> Serve {
        self.env("CLICKHOUSE_CLUSTER", cluster)
    }

    /// No gRPC API in this process (`SK_NO_API`): a worker node.
    pub fn without_api(mut self) -> Serve {
        self.api = false;
        self.env("SK_NO_API", "true")
    }

    /// No outbox dispatcher (`SK_NO_DISPATCHER`).
    pub fn without_dispatcher(self) -> Serve {
        self.env("SK_NO_DISPATCHER", "true")
    }

    /// No job worker (`SK_NO_WORKER`).
    pub fn without_worker(self) -> Serve {
        self.env("SK_NO_WORKER", "true")
    }

    /// No schedulers (`SK_NO_SCHEDULER`).
    pub fn without_scheduler(self) -> Serve {
        self.env("SK_NO_SCHEDULER", "true")
    }

    /// Serves TLS on both ports with the PEM files `cert` and `key`
    /// (`SK_TLS_CERT`, `SK_TLS_KEY`), the certificate signed by the CA of
    /// `ca_pem` (which readiness checks trust) and naming `127.0.0.1`.
    pub fn tls(mut self, cert: &std::path::Path, key: &std::path::Path, ca_pem: &[u8]) -> Serve {
        self.tls_ca = Some(ca_pem.to_vec());
        self.env("SK_TLS_CERT", cert.display().to_string()).env("SK_TLS_KEY", key.display().to_string())
    }

    /// Its log (standard error) to the file `path`, created or truncated.
    pub fn log_file(mut self, path: impl Into<PathBuf>) -> Serve {
        self.log = Some(path.into());
        self
    }

    /// Starts the process on two free loopback ports; does not wait for it.
    pub fn spawn(self) -> Result<ServeProcess> {
        let grpc_port = free_port().map_err(ServeError::Ports)?;
        let http_port = free_port().map_err(ServeError::Ports)?;
        let mut command = Command::new(&self.binary);
        command
            .arg("serve")
            .env("SK_GRPC_ADDR", format!("127.0.0.1:{grpc_port}"))
            .env("SK_HTTP_ADDR", format!("127.0.0.1:{http_port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .kill_on_drop(true);
        for (key, value) in &self.env {
            match value {
                Some(value) => command.env(key, value),
                None => command.env_remove(key),
            };
        }
        match &self.log {
            Some(path) => {
                let file = std::fs::File::create(path)
                    .map_err(|source| ServeError::Log { path: path.clone(), source })?;
                command.stderr(Stdio::from(file));
            }
            None => {
                command.stderr(Stdio::inherit());
            }
        }
        let child =
            command.spawn().map_err(|source| ServeError::Spawn { binary: self.binary.clone(), source })?;
        Ok(ServeProcess { child, grpc_port, http_port, api: self.api, log: self.log, tls_ca: self.tls_ca })
    }

    /// [`Serve::spawn`], then waits until `/health` answers 200 (its
    /// dependency check reached Postgres), within `within`.
    pub async fn start(self, within: Duration) -> Result<ServeProcess> {
        let mut process = self.spawn()?;
        process.wait_healthy(within).await?;
        Ok(process)
    }
}

/// A running `scorekeeper serve`, killed (SIGKILL) when dropped.
#[derive(Debug)]
pub struct ServeProcess {
    child: Child,
    grpc_port: u16,
    http_port: u16,
    api: bool,
    log: Option<PathBuf>,
    tls_ca: Option<Vec<u8>>,
}

/// How often readiness is checked.
const READY_POLL: Duration = Duration::from_millis(50);

impl ServeProcess {
    pub fn grpc_port(&self) -> u16 {
        self.grpc_port
    }

    /// `http://127.0.0.1:<grpc port>`, `https://` when it serves TLS.
    pub fn grpc_url(&self) -> String {
        let scheme = if self.tls_ca.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.grpc_port)
    }

    /// The port of `/metrics` and `/health`.
    pub fn http_port(&self) -> u16 {
        self.http_port
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// The process's peak resident memory so far, in KiB (Linux `VmHWM`
    /// of `/proc/<pid>/status`); `None` once it has exited or where there is
    /// no such file.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    }

    /// Waits until `/health` answers 200: the process listens and its
    /// dependency check reached Postgres (`/health`'s body says whether
    /// ClickHouse answered too). Fails at once if the process exits.
    pub async fn wait_healthy(&mut self, within: Duration) -> Result<()> {
        let (port, tls_ca) = (self.http_port, self.tls_ca.clone());
        self.wait_until("/health answering 200", within, async move || {
            matches!(get(port, "/health", tls_ca.as_deref()).await, Some((200, _)))
        })
        .await
    }

    /// Waits until the process listens: its HTTP port answers (whatever
    /// `/health` says: a server it depends on may be down on purpose) and,
    /// when it serves the API, its gRPC port accepts connections.
    pub async fn wait_listening(&mut self, within: Duration) -> Result<()> {
        let (http_port, grpc_port) = (self.http_port, self.api.then_some(self.grpc_port));
        let tls_ca = self.tls_ca.clone();
        self.wait_until("listening", within, async move || {
            let http_up = get(http_port, "/metrics", tls_ca.as_deref()).await.is_some();
            let grpc_up = match grpc_port {
                Some(port) => tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok(),
                None => true,
            };
            http_up && grpc_up
        })
        .await
    }

    /// What the process's HTTP port (`self.http_port`) answers; over TLS
    /// when it serves TLS.
    pub async fn http_get(&self, path: &str) -> Option<(u16, String)> {
        get(self.http_port, path, self.tls_ca.as_deref()).await
    }

    async fn wait_until(
        &mut self,
        what: &'static str,
        within: Duration,
        mut ready: impl AsyncFnMut() -> bool,
    ) -> Result<()> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().map_err(ServeError::Signal)? {
                return Err(ServeError::ExitedAtStart { status, log: self.log_hint() });
            }
            if ready().await {
                return Ok(());
            }
            if started.elapsed() > within {
                return Err(ServeError::NotReady { what, within, log: self.log_hint() });
            }
            tokio::time::sleep(READY_POLL).await;
        }
    }

    fn log_hint(&self) -> String {
        match &self.log {
            Some(path) => format!("its log is {}", path.display()),
            None => "its log is above".to_owned(),
        }
    }

    /// The exit status if the process has exited (without being waited
    /// for by this handle's kill or stop).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// `kill -9` and reap: the process gets no chance to finish anything.
    pub async fn kill(&mut self) -> Result<()> {
        self.child.start_kill().map_err(ServeError::Signal)?;
        self.child.wait().await.map_err(ServeError::Signal)?;
        Ok(())
    }

    /// SIGTERM (a clean stop: in-flight work drains) and the exit status,
    /// which must come within `within`.
    pub async fn stop(&mut self, within: Duration) -> Result<ExitStatus> {
        if let Some(pid) = self.child.id() {
            // No signal API without unsafe code or another dependency: the
            // `kill` utility sends it.
            std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .stdout(Stdio::null())
                .status()
                .map_err(ServeError::Signal)?;
        }
        match tokio::time::timeout(within, self.child.wait()).await {
            Ok(status) => status.map_err(ServeError::Signal),
            Err(_) => Err(ServeError::DidNotStop(within)),
        }
    }
}

/// A GET on the HTTP port: over TLS trusting `tls_ca` when given.
async fn get(port: u16, path: &str, tls_ca: Option<&[u8]>) -> Option<(u16, String)> {
    match tls_ca {
        Some(ca) => https_get(port, path, ca).await,
        None => http_get(port, path).await,
    }
}
