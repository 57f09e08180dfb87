//! `scorekeeper bench api` (being written).

use clap::Args;

#[derive(Args)]
pub struct ApiBenchArgs {}

pub async fn run(_args: ApiBenchArgs) -> anyhow::Result<()> {
    anyhow::bail!("bench api is not written yet")
}
