//! Connection settings of the subcommands (flags or environment, defined
//! once in `scorekeeper-settings`) and naming a customer on the command
//! line, by id or by name, never by a guess between the two.

use anyhow::{Context, bail};
use clap::Args;
use scorekeeper_domain::CustomerId;
pub use scorekeeper_settings::{ClickHouseArgs, PostgresArgs};
use scorekeeper_store::Store;

/// Which customer: `--customer-id`, `--customer-name`, or `--customer`
/// (either, refused when it could be two customers).
#[derive(Args, Clone, Debug)]
#[group(required = true, multiple = false)]
pub struct CustomerArgs {
    /// The customer's numeric id.
    #[arg(long)]
    customer_id: Option<i64>,
    /// The customer's name.
    #[arg(long)]
    customer_name: Option<String>,
    /// A customer id or name; refused when it is the id of one customer
    /// and the name of another (use --customer-id or --customer-name).
    #[arg(long)]
    customer: Option<String>,
}

impl CustomerArgs {
    /// The customer named; it must exist, and be only one.
    pub async fn resolve(&self, store: &Store) -> anyhow::Result<CustomerId> {
        let create = "create it with `scorekeeper customer create`";
        match (&self.customer_id, &self.customer_name, &self.customer) {
            (Some(id), _, _) => match store.customer_exists(CustomerId(*id)).await? {
                true => Ok(CustomerId(*id)),
                false => bail!("--customer-id: no customer {id}; {create}"),
            },
            (_, Some(name), _) => store
                .find_customer(name)
                .await?
                .with_context(|| format!("--customer-name: no customer named {name:?}; {create}")),
            (_, _, Some(either)) => resolve_either(store, either).await,
            (None, None, None) => bail!("name the customer: --customer-id, --customer-name or --customer"),
        }
    }
}

/// `--customer X`: the customer whose id is X or whose name is X. When X is
/// both (the id of one customer, the name of another), it is refused: a
/// guess would hand one tenant's token to the other.
async fn resolve_either(store: &Store, either: &str) -> anyhow::Result<CustomerId> {
    let by_id = match either.parse::<i64>() {
        Ok(id) => store.customer_exists(CustomerId(id)).await?.then_some(CustomerId(id)),
        Err(_) => None,
    };
    let by_name = store.find_customer(either).await?;
    match (by_id, by_name) {
        (Some(id), Some(named)) if id != named => bail!(
            "--customer {either:?} is ambiguous: customer {id} has that id and customer {named} has that \
             name; use --customer-id or --customer-name"
        ),
        (Some(id), _) | (None, Some(id)) => Ok(id),
        (None, None) => {
            bail!("--customer: no customer {either:?}; create it with `scorekeeper customer create`")
        }
    }
}
