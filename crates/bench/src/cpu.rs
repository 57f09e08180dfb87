//! CPU time by process, read from /proc, so that a run says where its
//! seconds went. With the servers and the worker on one machine, a copy is
//! bound by the CPU all of them use together, not by any one's wall time.
//!
//! Postgres is every `postgres` process plus what the postmaster reaped
//! (backends that exited); ClickHouse is its server process, threads
//! included; tools are this process's reaped children (`psql`, `curl`);
//! bench is this process itself (the API bench's client, the limit's
//! RowBinary copy).
//! Everything else the servers do meanwhile is counted too: measure on a
//! quiet machine.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Serialize;

/// CPU seconds used, by whom.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct CpuUse {
    pub postgres: f64,
    pub clickhouse: f64,
    pub worker: f64,
    pub tools: f64,
    pub bench: f64,
}

/// The CPU used so far by the processes `CpuUse` counts; two samples give
/// what was used between them (`CpuSample::since`).
pub struct CpuSample {
    /// Each `postgres` process: its parent and its CPU, own and reaped.
    postgres: HashMap<u32, (u32, f64)>,
    clickhouse: f64,
    worker: f64,
    tools: f64,
    bench: f64,
}

impl CpuSample {
    /// Now, counting the `workers` (pids) as the worker.
    pub fn now(workers: &[u32]) -> CpuSample {
        let mut sample =
            CpuSample { postgres: HashMap::new(), clickhouse: 0.0, worker: 0.0, tools: 0.0, bench: 0.0 };
        let Ok(entries) = std::fs::read_dir("/proc") else { return sample };
        for entry in entries.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            let Some(stat) = Stat::read(&pid.to_string()) else { continue };
            match stat.comm.as_str() {
                "postgres" => {
                    sample.postgres.insert(pid, (stat.parent, stat.own + stat.reaped));
                }
                // The kernel keeps 15 bytes of `clickhouse-server`.
                "clickhouse-serv" => sample.clickhouse += stat.own,
                _ if workers.contains(&pid) => sample.worker += stat.own + stat.reaped,
                _ => {}
            }
        }
        if let Some(this) = Stat::read("self") {
            (sample.tools, sample.bench) = (this.reaped, this.own);
        }
        sample
    }

    /// What was used between `earlier` and this sample.
    ///
    /// A Postgres process that ended meanwhile is in its parent's reaped
    /// time, with all it ever used: what it had used by `earlier` comes
    /// off. Unless no counted process reaped it (a postmaster that was
    /// stopping, reaped by init): then it is in neither sample's sum.
    pub fn since(&self, earlier: &CpuSample) -> CpuUse {
        let mut postgres = 0.0;
        for (pid, (_, used)) in &self.postgres {
            postgres += used - earlier.postgres.get(pid).map_or(0.0, |(_, before)| *before);
        }
        for (pid, (parent, before)) in &earlier.postgres {
            if !self.postgres.contains_key(pid) && self.postgres.contains_key(parent) {
                postgres -= before;
            }
        }
        CpuUse {
            postgres,
            clickhouse: self.clickhouse - earlier.clickhouse,
            worker: self.worker - earlier.worker,
            tools: self.tools - earlier.tools,
            bench: self.bench - earlier.bench,
        }
    }
}

impl std::ops::AddAssign for CpuUse {
    fn add_assign(&mut self, other: CpuUse) {
        self.postgres += other.postgres;
        self.clickhouse += other.clickhouse;
        self.worker += other.worker;
        self.tools += other.tools;
        self.bench += other.bench;
    }
}

impl CpuUse {
    pub fn total(&self) -> f64 {
        self.postgres + self.clickhouse + self.worker + self.tools + self.bench
    }

    /// `postgres 11.9 + clickhouse 8.6 + worker 6.1 = 26.6 cpu-s`, naming
    /// only who used any.
    pub fn describe(&self) -> String {
        let parts: Vec<String> = [
            ("postgres", self.postgres),
            ("clickhouse", self.clickhouse),
            ("worker", self.worker),
            ("psql/curl", self.tools),
            ("bench", self.bench),
        ]
        .into_iter()
        .filter(|(_, s)| *s >= 0.005)
        .map(|(who, s)| format!("{who} {s:.1}"))
        .collect();
        format!("{} = {:.1} cpu-s", parts.join(" + "), self.total())
    }
}

/// The fields of `/proc/<pid>/stat` we need, in seconds.
struct Stat {
    comm: String,
    /// The parent's pid.
    parent: u32,
    /// utime + stime (all threads).
    own: f64,
    /// cutime + cstime: children waited for.
    reaped: f64,
}

impl Stat {
    fn read(pid: &str) -> Option<Stat> {
        Stat::parse(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
    }

    fn parse(text: &str) -> Option<Stat> {
        // `pid (comm) state ...`: comm may hold spaces and parentheses.
        let (open, close) = (text.find('(')?, text.rfind(')')?);
        let comm = text[open + 1..close].to_owned();
        let fields: Vec<&str> = text[close + 1..].split_whitespace().collect();
        // fields[0] is field 3 (state); utime..cstime are fields 14..17.
        let tick = |i: usize| fields.get(i - 3).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
        let hz = ticks_per_second();
        Some(Stat {
            comm,
            parent: tick(4) as u32,
            own: (tick(14) + tick(15)) / hz,
            reaped: (tick(16) + tick(17)) / hz,
        })
    }
}

/// The kernel's clock ticks per second (`getconf CLK_TCK`; 100 on Linux
/// unless asked otherwise).
fn ticks_per_second() -> f64 {
    static HZ: OnceLock<f64> = OnceLock::new();
    *HZ.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_this_process_s_children() {
        let before = CpuSample::now(&[]);
        // A child that burns a little CPU, then is reaped.
        let status = std::process::Command::new("sh")
            .args(["-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done"])
            .status()
            .expect("sh runs");
        assert!(status.success());
        let used = CpuSample::now(&[]).since(&before);
        assert!(used.tools > 0.0, "the reaped child's CPU is counted: {used:?}");
    }

    fn postgres(processes: &[(u32, u32, f64)]) -> CpuSample {
        CpuSample {
            postgres: processes.iter().map(|&(pid, parent, used)| (pid, (parent, used))).collect(),
            clickhouse: 0.0,
            worker: 0.0,
            tools: 0.0,
            bench: 0.0,
        }
    }

    #[test]
    fn a_backend_that_ended_counts_once_and_a_stopping_server_not_at_all() {
        // The postmaster (10) reaps backend 11 (3 s by then, 5 s in all);
        // backend 12 starts and uses 2 s; an old postmaster (20, reaped
        // by init) with 229 s of reaped time goes away.
        let before = postgres(&[(10, 1, 100.0), (11, 10, 3.0), (20, 1, 229.0)]);
        let after = postgres(&[(10, 1, 105.0), (12, 10, 2.0)]);
        assert_eq!(after.since(&before).postgres, 4.0);
    }

    #[test]
    fn reads_a_comm_with_spaces_and_parentheses() {
        let line = "42 (a (b) c) S 1 42 42 0 -1 4194560 10 0 0 0 300 200 50 25 20 0 1 0 5 0 0";
        let stat = Stat::parse(line).expect("a stat line");
        let hz = ticks_per_second();
        assert_eq!(stat.comm, "a (b) c");
        assert_eq!(stat.parent, 1);
        assert_eq!(stat.own, 500.0 / hz);
        assert_eq!(stat.reaped, 75.0 / hz);
    }
}
