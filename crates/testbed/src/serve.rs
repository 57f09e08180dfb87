//! Launching a `scorekeeper serve` child process: the one launcher of the
//! tests, the benchmarks and the fault runs.
//!
//! [`Serve`] builds the process (binary, databases, parts switched off,
//! more environment, where its log goes); [`Serve::spawn`] starts it on two
//! free loopback ports; [`ServeProcess`] waits until it is ready, kills it
//! with SIGKILL or stops it with SIGTERM, and kills it when dropped.
//!
//! The process never inherits the scheduler settings of the environment the
//! caller runs in (`REINDEX_SCHEDULE`, `AUDIT_SCHEDULE`): a scheduled job
//! appearing in the middle of a test or a measurement would change what it
//! sees. Callers that want a scheduler say so with [`Serve::env`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use crate::loopback::{free_port, http_get};

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
}

impl Serve {
    /// `<binary> serve`, quiet but for warnings (`RUST_LOG=warn`), with its
    /// log on this process's standard error.
    pub fn new(binary: impl Into<PathBuf>) -> Serve {
        let mut env = BTreeMap::new();
        env.insert("REINDEX_SCHEDULE".to_owned(), None);
        env.insert("AUDIT_SCHEDULE".to_owned(), None);
        env.insert("RUST_LOG".to_owned(), Some("warn".to_owned()));
        Serve { binary: binary.into(), env, api: true, log: None }
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
        Ok(ServeProcess { child, grpc_port, http_port, api: self.api, log: self.log })
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
}

/// How often readiness is checked.
const READY_POLL: Duration = Duration::from_millis(50);

impl ServeProcess {
    pub fn grpc_port(&self) -> u16 {
        self.grpc_port
    }

    /// `http://127.0.0.1:<grpc port>`.
    pub fn grpc_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.grpc_port)
    }

    /// The port of `/metrics` and `/health`.
    pub fn http_port(&self) -> u16 {
        self.http_port
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Waits until `/health` answers 200: the process listens and its
    /// dependency check reached Postgres (`/health`'s body says whether
    /// ClickHouse answered too). Fails at once if the process exits.
    pub async fn wait_healthy(&mut self, within: Duration) -> Result<()> {
        let port = self.http_port;
        self.wait_until("/health answering 200", within, async move || {
            matches!(http_get(port, "/health").await, Some((200, _)))
        })
        .await
    }

    /// Waits until the process listens: its HTTP port answers (whatever
    /// `/health` says: a server it depends on may be down on purpose) and,
    /// when it serves the API, its gRPC port accepts connections.
    pub async fn wait_listening(&mut self, within: Duration) -> Result<()> {
        let (http_port, grpc_port) = (self.http_port, self.api.then_some(self.grpc_port));
        self.wait_until("listening", within, async move || {
            let http_up = http_get(http_port, "/metrics").await.is_some();
            let grpc_up = match grpc_port {
                Some(port) => tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok(),
                None => true,
            };
            http_up && grpc_up
        })
        .await
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
