//! A Postgres cluster of one test's own, for tests that restart the server:
//! restarting the shared local server would break every test running beside
//! it. Uses the same binaries as `scripts/stack` (initdb and pg_ctl from PATH
//! or /usr/lib/postgresql/*/bin); as root, runs them as the `postgres` user,
//! since Postgres refuses to run as root.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

pub struct PrivatePostgres {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
}

fn find_bin() -> anyhow::Result<PathBuf> {
    let on_path =
        std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect::<Vec<_>>()).unwrap_or_default();
    let mut candidates: Vec<PathBuf> = on_path;
    if let Ok(versions) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut dirs: Vec<PathBuf> = versions.flatten().map(|v| v.path().join("bin")).collect();
        dirs.sort();
        candidates.extend(dirs.into_iter().rev());
    }
    candidates
        .into_iter()
        .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
        .context("initdb and pg_ctl not found (scripts/stack up installs them)")
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// Runs a Postgres binary, as the `postgres` user when we are root.
fn run(bin: &Path, args: &[&str]) -> anyhow::Result<()> {
    let mut command = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin);
        c
    } else {
        Command::new(bin)
    };
    let output =
        command.args(args).current_dir("/").output().with_context(|| format!("running {}", bin.display()))?;
    if !output.status.success() {
        bail!("{} {:?} failed: {}", bin.display(), args, String::from_utf8_lossy(&output.stderr));
    }
    Ok(())
}

impl PrivatePostgres {
    /// initdb into a fresh directory under /tmp and start on a free port.
    pub fn start() -> anyhow::Result<PrivatePostgres> {
        let bin = find_bin()?;
        let data = std::env::temp_dir().join(format!("sk-private-pg-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&data)?;
        if is_root() {
            let status = Command::new("chown").args(["postgres:postgres"]).arg(&data).status()?;
            if !status.success() {
                bail!("chown of {} failed", data.display());
            }
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let data_text = data.to_str().context("temp dir is not UTF-8")?.to_owned();
        run(
            &bin.join("initdb"),
            &["-D", &data_text, "--auth=trust", "-U", "postgres", "-E", "UTF8", "--locale=C"],
        )?;
        let cluster = PrivatePostgres { bin, data, port };
        cluster.pg_ctl("start")?;
        Ok(cluster)
    }

    fn pg_ctl(&self, action: &str) -> anyhow::Result<()> {
        let data = self.data.to_str().context("temp dir is not UTF-8")?;
        let options =
            format!("-c listen_addresses=127.0.0.1 -p {} -c unix_socket_directories={}", self.port, data);
        let log = format!("{data}/server.log");
        match action {
            "start" => run(
                &self.bin.join("pg_ctl"),
                &["-D", data, "-l", &log, "-w", "-t", "60", "-o", &options, "start"],
            ),
            "stop" => run(&self.bin.join("pg_ctl"), &["-D", data, "-m", "fast", "-w", "-t", "60", "stop"]),
            _ => bail!("unknown pg_ctl action {action}"),
        }
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server (fast shutdown: connections are cut).
    pub fn stop(&self) -> anyhow::Result<()> {
        self.pg_ctl("stop")
    }

    pub fn start_again(&self) -> anyhow::Result<()> {
        self.pg_ctl("start")
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self.pg_ctl("stop");
        let _ = std::fs::remove_dir_all(&self.data);
    }
}
