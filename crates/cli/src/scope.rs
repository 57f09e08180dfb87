//! The flags that say what a client command covers, shared by `reindex`
//! and `audit`: `--customer ID|all` and a time window (`--since`, or
//! `--from` with `--to`).

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::Args;

#[derive(Args, Debug)]
pub struct ScopeArgs {
    /// Customer id, or `all` (admin tokens only).
    #[arg(long)]
    customer: String,
    /// Window ending now, e.g. `24h`, `7days`. Without a window: all time.
    #[arg(long, conflicts_with_all = ["from", "to"])]
    since: Option<humantime::Duration>,
    /// Window start (RFC 3339), with --to.
    #[arg(long, requires = "to")]
    from: Option<DateTime<Utc>>,
    /// Window end (RFC 3339, exclusive), with --from.
    #[arg(long, requires = "from")]
    to: Option<DateTime<Utc>>,
}

impl ScopeArgs {
    /// The customer's id, `None` for `all`.
    pub fn customer_id(&self) -> anyhow::Result<Option<i64>> {
        match self.customer.as_str() {
            "all" => Ok(None),
            id => id.parse().map(Some).with_context(|| format!("--customer {id:?}: a customer id or `all`")),
        }
    }

    /// `[start, end)`, `None` without a window.
    pub fn window(&self) -> anyhow::Result<Option<(DateTime<Utc>, DateTime<Utc>)>> {
        Ok(match (self.since, self.from, self.to) {
            (Some(since), _, _) => {
                let now = Utc::now();
                Some((now - chrono::Duration::from_std(*since).context("--since is too long")?, now))
            }
            (None, Some(from), Some(to)) => Some((from, to)),
            _ => None,
        })
    }
}
