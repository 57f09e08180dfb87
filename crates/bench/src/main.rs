//! `scorekeeper-bench`: measures the service on the local stack, in
//! databases of its own (never the demo's or the service's), and prints a
//! table of figures and ratios; `--json FILE` also writes them for tooling.
//! Wiring only: parses the arguments and runs one bench.
//!
//! * `reindex`: a generated dataset copied to ClickHouse three ways
//!   (the shell pipeline a user would write, the two halves alone as the
//!   physical limit, and a real reindex job through the real workers).
//! * `api`: CreateScorecard load through gRPC, latency and the lag
//!   until each scorecard is visible in ClickHouse.
//! * `audit`: the drift audit of the reindex bench's dataset, in sync
//!   and with known drift spread over every day.
//!
//! `stack` holds what they share: the bench databases and a `serve` child
//! process (the `scorekeeper` binary beside this one, or `SCOREKEEPER_BIN`)
//! whose peak memory can be read.

mod api;
mod audit;
mod baselines;
mod cpu;
mod dataset;
mod reindex;
mod report;
mod stack;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "scorekeeper-bench",
    version,
    about = "Measure reindex, API and audit speed on the local stack, in databases of its own"
)]
struct Cli {
    #[command(subcommand)]
    command: BenchCommand,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Reindex speed against a psql|clickhouse pipeline and the servers' own limits.
    Reindex(reindex::ReindexBenchArgs),
    /// CreateScorecard throughput, latency and visibility lag in ClickHouse.
    Api(api::ApiBenchArgs),
    /// The drift audit of the reindex dataset, in sync and with known drift.
    Audit(audit::AuditBenchArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    scorekeeper_settings::init_logging();
    match Cli::parse().command {
        BenchCommand::Reindex(args) => reindex::run(args).await,
        BenchCommand::Api(args) => api::run(args).await,
        BenchCommand::Audit(args) => audit::run(args).await,
    }
}
