//! Connection settings of the subcommands (flags or environment, defined
//! once in `scorekeeper-settings`) and finding a customer by id or name.

use anyhow::Context;
use scorekeeper_domain::CustomerId;
pub use scorekeeper_settings::{ClickHouseArgs, PostgresArgs};
use scorekeeper_store::Store;

/// A customer given by numeric id or by name; it must exist.
pub async fn resolve_customer(store: &Store, customer: &str) -> anyhow::Result<CustomerId> {
    let found = match customer.parse::<i64>() {
        Ok(id) => store.customer_exists(CustomerId(id)).await?.then_some(CustomerId(id)),
        Err(_) => store.find_customer(customer).await?,
    };
    found.with_context(|| {
        format!("--customer: no customer {customer:?}; create it with `scorekeeper customer create`")
    })
}
