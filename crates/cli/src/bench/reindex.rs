//! `scorekeeper bench reindex` (being written).

use clap::Args;

#[derive(Args)]
pub struct ReindexBenchArgs {}

pub async fn run(_args: ReindexBenchArgs) -> anyhow::Result<()> {
    anyhow::bail!("bench reindex is not written yet")
}
