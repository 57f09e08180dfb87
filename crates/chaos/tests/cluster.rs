//! Scenario 6, short: on the ClickHouse cluster of `scripts/stack cluster`
//! (`SK_CLUSTER_*`; scripts/test exports them), serve processes and node 3
//! (all of shard 2) killed with SIGKILL during partitioned reindex jobs and
//! an API burst. The kills of node 3 are real, so this test is in the
//! nextest group `clickhouse-cluster` (`.config/nextest.toml`): it never
//! runs beside another test of the cluster. It fails, never skips, when the
//! cluster is not up.

use std::time::Duration;

use scorekeeper_chaos::scenarios::cluster_kills;
use scorekeeper_chaos::world::FaultSettings;

use crate::faults::assert_passed;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_reindex_on_the_cluster_survives_serve_and_shard_kills() {
    let settings = cluster_kills::Settings {
        conversations: 3_000,
        serve_kills: 3,
        shard_kills: 1,
        serve_kills_per_job: 3,
        shard_kills_per_job: 1,
        shard_down: (Duration::from_secs(1), Duration::from_secs(2)),
        fault_every: (Duration::from_millis(300), Duration::from_millis(1500)),
        batch_size: 20,
        // 3,000 conversations make about 12,600 rows: a dozen partitions.
        partition_rows: 1_000,
        workers: 3,
        api_processes: 1,
        concurrency: 4,
    };
    let report = cluster_kills::run(&FaultSettings::default(), &settings).await.unwrap();
    assert_eq!(report.faults_injected, 4, "3 serve kills and 1 shard kill: {:#?}", report.notes);
    assert_passed(&report);
}
