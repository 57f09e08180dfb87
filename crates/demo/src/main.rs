//! `scorekeeper-demo`: walks a new user through the product against a
//! running `scorekeeper serve` (which `scripts/demo` starts on the local
//! stack).
//!
//! The story, one function per step: an operator creates a customer, its
//! API token and an admin token (for the operator console); the customer
//! defines a conversation template (with AutoQA rules) and a process
//! template; uploads a few thousand synthetic conversations; indexes them
//! into ClickHouse; lets AutoQA score them
//! (checking every score against what its transcript was written to earn,
//! then running it again to show it is idempotent); has reviewers create,
//! update and delete manual scorecards; reads the analytics from ClickHouse
//! and checks them against the same statistics computed from Postgres, the
//! source of truth; and finally makes ClickHouse drift from Postgres (a bulk
//! import straight into Postgres, rows lost from ClickHouse), shows the
//! analytics wrong, and repairs them with reindex jobs.
//!
//! Everything except the operator step and the drift goes through the public
//! gRPC API with the customer's token, exactly as a client would. The
//! summary ends with what to try next: the console at `/ui` of the server's
//! HTTP port with either token, and how to start the server again when
//! scripts/demo stopped it (`--server-stops`). The synthetic content is
//! deterministic (fixed seeds), so two runs differ only in ids and times.
//!
//! The steps live by concern: `api` (the operator step and the gRPC
//! clients), `world` (templates and the synthetic conversations), `scoring`
//! (batch index, AutoQA, manual scorecards), `compare` (ClickHouse against
//! Postgres) and `drift` (drift and its repair by reindex jobs); this file
//! runs them in order and prints the summary.

mod api;
mod compare;
mod drift;
mod postgres_stats;
mod scoring;
mod world;

use std::time::{Duration, Instant};

use chrono::Utc;
use scorekeeper_domain::CustomerId;

use self::drift::DriftOutcome;
use self::scoring::{AutoqaOutcome, ReviewOutcome};
use self::world::Uploaded;
use clap::Parser;
use scorekeeper_settings::{ClickHouseArgs, PostgresArgs};

#[derive(Parser)]
#[command(
    name = "scorekeeper-demo",
    version,
    about = "Walk through the whole product on the local stack against a running `scorekeeper serve`"
)]
struct DemoArgs {
    /// gRPC endpoint of a running `scorekeeper serve`; `https://` to use TLS.
    #[arg(long, env = "SK_GRPC_URL", default_value = "http://127.0.0.1:50051")]
    grpc_url: String,
    /// PEM CA bundle to trust for an `https://` --grpc-url (a private CA).
    /// Unset: the platform's root certificates.
    #[arg(long, env = "SK_TLS_CA")]
    tls_ca: Option<std::path::PathBuf>,
    /// Postgres of that server: the demo creates the customer and token there
    /// (the operator step) and reads the truth to compare ClickHouse with.
    #[command(flatten)]
    postgres: PostgresArgs,
    /// ClickHouse of that server: the drift step deletes some of the
    /// customer's rows there, as a lost part would.
    #[command(flatten)]
    clickhouse: ClickHouseArgs,
    /// How many synthetic conversations to upload.
    #[arg(long, default_value_t = 3000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    conversations: u32,
    /// Customer name; default `demo-<unix seconds>`, so every run starts
    /// from an empty customer.
    #[arg(long)]
    customer: Option<String>,
    /// HTTP address of that server (`/metrics`, `/health`, the console
    /// under `/ui`), for the closing hints.
    #[arg(long, env = "SK_HTTP_ADDR", default_value = "127.0.0.1:9464")]
    http_addr: String,
    /// The server stops when the demo ends (scripts/demo passes this unless
    /// it runs with --keep-serving): the closing hints then say how to
    /// start it again.
    #[arg(long)]
    server_stops: bool,
}

/// Server limit on conversations per UpsertConversations call
/// (`limits::MAX_CONVERSATIONS_PER_UPSERT`).
const UPSERT_BATCH: usize = scorekeeper_domain::limits::MAX_CONVERSATIONS_PER_UPSERT;
/// Conversation ids per AutoscoreConversations call. The server takes up to
/// 10 000; smaller calls keep each one short and show progress.
const AUTOSCORE_BATCH: usize = 1000;
/// How many synthetic agents handle the conversations.
const AGENTS: u64 = 10;
/// Conversations start within this many days before now.
const HISTORY_DAYS: i64 = 14;
/// How long the analytics step waits for ClickHouse to catch up.
const CONVERGENCE_TIMEOUT: Duration = Duration::from_secs(60);
/// Averages computed by the two databases may differ in the last bits
/// (different summation order), never more than this, relative.
const AVERAGE_TOLERANCE: f64 = 1e-9;

/// Seeds of the pseudo-random streams: fixed, so the content of every run
/// is the same. Separate streams, so changing one step's choices leaves the
/// other steps' data as it was.
const CONTENT_SEED: u64 = 0x5C0E_4EE9_0000_0001;
const REVIEW_SEED: u64 = 0x5C0E_4EE9_0000_0002;
const DRIFT_SEED: u64 = 0x5C0E_4EE9_0000_0003;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    scorekeeper_settings::init_logging();
    run(DemoArgs::parse()).await
}

/// Runs every step in order; fails on the first step that fails, or when
/// ClickHouse does not agree with Postgres in time.
async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let customer = args.customer.clone().unwrap_or_else(|| format!("demo-{}", Utc::now().timestamp()));
    println!("scorekeeper demo: customer {customer:?}, server {}", args.grpc_url);

    let store = args.postgres.store()?;
    let clickhouse = args.clickhouse.analytics()?.config().clone();
    let tenant = api::create_tenant(&store, &customer).await?;
    let customer_id = tenant.customer_id;
    let tls = scorekeeper_client::ClientTls::from_setting(args.tls_ca.as_deref())?;
    let mut api = api::Api::connect(&args.grpc_url, &tls, &tenant.token).await?;

    let templates = world::create_templates(&mut api).await?;
    let uploaded = world::upsert_conversations(&mut api, args.conversations as usize).await?;
    scoring::index_conversations(&mut api, &uploaded.conversations).await?;
    let autoqa = scoring::autoscore(&mut api, &templates.conversation, &uploaded.conversations).await?;
    let reviews = scoring::manual_scorecards(&mut api, &templates, &uploaded.conversations).await?;
    compare::compare_analytics(&mut api, &store, customer_id, &templates).await?;
    let drift = drift::drift_and_repair(
        &mut api,
        &store,
        &clickhouse,
        customer_id,
        &templates,
        &uploaded.conversations,
    )
    .await?;

    print_summary(&Summary {
        customer: &customer,
        customer_id,
        token: &tenant.token,
        admin_token: &tenant.admin_token,
        grpc_url: &args.grpc_url,
        http_addr: &args.http_addr,
        server_stops: args.server_stops,
        uploaded: &uploaded,
        autoqa: &autoqa,
        reviews: &reviews,
        drift: &drift,
        elapsed: started.elapsed(),
    });
    Ok(())
}

// ---------------------------------------------------------------------------
// Helpers shared by the steps.

fn section(title: &str) {
    println!("\n== {title} ==");
}

/// Equal up to [`AVERAGE_TOLERANCE`], relative (absolute for values below 1).
fn nearly_equal(a: f64, b: f64) -> bool {
    (a - b).abs() <= AVERAGE_TOLERANCE * a.abs().max(b.abs()).max(1.0)
}

// ---------------------------------------------------------------------------
// Step 9: summary and what to look at next.

struct Summary<'a> {
    customer: &'a str,
    customer_id: CustomerId,
    token: &'a str,
    admin_token: &'a str,
    grpc_url: &'a str,
    http_addr: &'a str,
    server_stops: bool,
    uploaded: &'a Uploaded,
    autoqa: &'a AutoqaOutcome,
    reviews: &'a ReviewOutcome,
    drift: &'a DriftOutcome,
    elapsed: Duration,
}

fn print_summary(s: &Summary<'_>) {
    section("9. Summary");
    let r = s.reviews;
    println!("customer            {}", s.customer);
    println!("conversations       {} ({} messages)", s.uploaded.conversations.len(), s.uploaded.messages);
    println!(
        "AutoQA scorecards   {} ({} written, average {:.1}%; re-run on {} changed nothing)",
        s.autoqa.scorecards, s.autoqa.changed, s.autoqa.average, s.autoqa.rerun
    );
    println!(
        "manual scorecards   {} conversation + {} process, {} updated, {} deleted",
        r.conversation_scorecards, r.process_scorecards, r.updated, r.deleted
    );
    let d = s.drift;
    println!(
        "drift               {} scorecards imported into Postgres only, {} lost from ClickHouse only",
        d.imported_scorecards, d.lost_scorecards
    );
    println!(
        "repair              {} reindex jobs, {} rows copied ({})",
        d.jobs.len(),
        d.jobs.iter().map(|j| j.rows).sum::<i64>(),
        d.jobs.iter().map(|j| j.id.as_str()).collect::<Vec<_>>().join(", ")
    );
    // All of the customer's, also from earlier runs with the same `--customer`.
    println!(
        "live scorecards     {} (the customer's, identical in Postgres and ClickHouse)",
        d.live_scorecards
    );
    println!("time taken          {:.1?}", s.elapsed);
    // A server with TLS serves it on both ports.
    let scheme = if s.grpc_url.starts_with("https://") { "https" } else { "http" };
    let host = s.grpc_url.trim_start_matches("http://").trim_start_matches("https://");
    let http_addr = s.http_addr;
    let console = format!("{scheme}://{http_addr}/ui");
    let scorekeeper = scorekeeper_command();
    println!("\nWhat next:");
    if s.server_stops {
        // The stack's settings, and the cluster's when the demo ran on it.
        let cluster = match std::env::var("CLICKHOUSE_CLUSTER") {
            Ok(name) if !name.is_empty() => " && eval \"$(scripts/stack cluster env)\"",
            _ => "",
        };
        println!(
            "  - scripts/demo stopped its server when the demo ended; the console and the rest below need `scorekeeper serve`, so start it again (or run `scripts/demo --keep-serving` next time):"
        );
        println!(
            "    eval \"$(scripts/stack env)\"{cluster} && {scorekeeper} serve --grpc-addr {host} --http-addr {http_addr} &"
        );
    }
    println!(
        "  - the operator console, {console}: log in with either token (both stay valid until revoked):"
    );
    println!("    admin token, every page (all customers' jobs and audits, the topology):");
    println!("      {}", s.admin_token);
    println!("    customer {}'s token, that customer's jobs and audits only (as in the API):", s.customer);
    println!("      {}", s.token);
    println!("  - what each write path sent to ClickHouse, and the outbox backlog:");
    println!(
        "    curl -s {scheme}://{http_addr}/metrics | grep -E 'scorekeeper_(clickhouse_rows_written|outbox)'"
    );
    println!(
        "  - query the API yourself with this demo customer's token (serve offers reflection, so no .proto files are needed):"
    );
    println!("    grpcurl -plaintext -H 'authorization: Bearer {}' \\", s.token);
    println!(
        "      -d '{{\"group_by\": \"STATS_GROUP_BY_DAY\"}}' {host} scorekeeper.v1.AnalyticsService/GetScoreStats"
    );
    println!("  - the reindex jobs of this customer (`scorekeeper jobs get <id>` for one):");
    println!("    {scorekeeper} jobs list --grpc-url {} --token {}", s.grpc_url, s.token);
    println!("  - the ClickHouse copy itself:");
    println!(
        "    SELECT agent_id, count(), avg(total_score) FROM scorekeeper.scorecards FINAL \
         WHERE customer_id = {} AND is_deleted = 0 GROUP BY agent_id ORDER BY agent_id",
        s.customer_id
    );
}

/// The `scorekeeper` binary beside this one (cargo builds both into the
/// same directory), relative to the working directory when under it;
/// plain `scorekeeper` when it is not there.
fn scorekeeper_command() -> String {
    let beside = std::env::current_exe().ok().and_then(|exe| Some(exe.parent()?.join("scorekeeper")));
    let Some(path) = beside.filter(|path| path.is_file()) else {
        return "scorekeeper".to_owned();
    };
    let cwd = std::env::current_dir().unwrap_or_default();
    match path.strip_prefix(&cwd) {
        Ok(relative) => relative.display().to_string(),
        Err(_) => path.display().to_string(),
    }
}
