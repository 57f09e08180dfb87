//! The `scorekeeper` binary. Parses settings and wires the library crates
//! together; no logic of its own.

mod audit;
mod client;
mod jobs;
mod scope;
mod serve;
mod settings;
mod tls;
mod tls_listener;
mod tokens;

use clap::{Parser, Subcommand};

use settings::{ClickHouseArgs, CustomerArgs, PostgresArgs};

#[derive(Parser)]
#[command(
    name = "scorekeeper",
    version,
    about = "Contact-centre QA scorecards on Postgres, mirrored to ClickHouse"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gRPC API, the outbox dispatcher and the HTTP port (/metrics, /health).
    Serve(Box<serve::ServeArgs>),
    /// Apply the Postgres migrations and the ClickHouse schema.
    Migrate {
        #[command(flatten)]
        postgres: PostgresArgs,
        #[command(flatten)]
        clickhouse: ClickHouseArgs,
    },
    /// Customers (tenants).
    #[command(subcommand)]
    Customer(CustomerCommand),
    /// API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Create a JOB_TYPE_REINDEX_CONVERSATIONS job through the API (--wait to follow it).
    Reindex(jobs::ReindexArgs),
    /// Audit ClickHouse against Postgres through the API: drifted rows by table and day (--repair to fix them).
    ///
    /// The window (--since, --from/--to) applies to the rows' bucket time: a
    /// conversation's start, a scorecard's creation.
    Audit(audit::AuditArgs),
    /// List, inspect or cancel jobs through the API.
    #[command(subcommand)]
    Jobs(jobs::JobsCommand),
}

#[derive(Subcommand)]
enum CustomerCommand {
    /// Create a customer (or find it by name) and print its id. An empty or
    /// whitespace-only name is refused.
    Create {
        name: String,
        #[command(flatten)]
        postgres: PostgresArgs,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create an API token for a customer and print it (shown only once).
    Create {
        #[command(flatten)]
        customer: CustomerArgs,
        /// Also allow cross-customer work (reindex of all customers).
        #[arg(long)]
        admin: bool,
        #[arg(long, default_value = "")]
        label: String,
        #[command(flatten)]
        postgres: PostgresArgs,
    },
    /// List a customer's tokens: id, prefix, created, last used, revoked (never the secret).
    List {
        #[command(flatten)]
        customer: CustomerArgs,
        /// One JSON object per token instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        postgres: PostgresArgs,
    },
    /// Revoke a token, by the prefix `token list` shows (sk_ and 8 hex digits) or by its id;
    /// every serve process refuses it within about a second.
    Revoke {
        /// The token's prefix (`sk_…`) or numeric id.
        token: String,
        #[command(flatten)]
        postgres: PostgresArgs,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    scorekeeper_settings::init_logging();
    match Cli::parse().command {
        Command::Serve(args) => serve::run(*args).await,
        Command::Migrate { postgres, clickhouse } => {
            scorekeeper_jobs::migrate_postgres(&postgres.store()?).await?;
            clickhouse.analytics()?.migrate().await?;
            println!("Postgres and ClickHouse schemas are up to date");
            Ok(())
        }
        Command::Customer(CustomerCommand::Create { name, postgres }) => {
            let id = postgres.store()?.ensure_customer(&name).await?;
            println!("{id}");
            Ok(())
        }
        Command::Token(TokenCommand::Create { customer, admin, label, postgres }) => {
            let store = postgres.store()?;
            let customer_id = customer.resolve(&store).await?;
            println!("{}", store.create_token(customer_id, admin, &label).await?);
            Ok(())
        }
        Command::Token(TokenCommand::List { customer, json, postgres }) => {
            let store = postgres.store()?;
            let customer_id = customer.resolve(&store).await?;
            tokens::list(&store.list_tokens(customer_id).await?, json);
            Ok(())
        }
        Command::Token(TokenCommand::Revoke { token, postgres }) => {
            let revoked = postgres.store()?.revoke_token(&tokens::reference(&token)?).await?;
            tokens::list(std::slice::from_ref(&revoked), false);
            Ok(())
        }
        Command::Reindex(args) => jobs::reindex(args).await,
        Command::Jobs(command) => jobs::run(command).await,
        Command::Audit(args) => audit::run(args).await,
    }
}
