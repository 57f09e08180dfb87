//! Postgres databases of their own beside the service's, for tools that
//! keep them between runs (the benchmarks' datasets).

use tokio_postgres::NoTls;

use crate::postgres_url::{self, UrlError};

#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    #[error(transparent)]
    Url(#[from] UrlError),
    #[error("database name {0:?}: use letters, digits and _")]
    BadName(String),
    #[error("Postgres")]
    Postgres(#[from] tokio_postgres::Error),
}

pub type Result<T, E = DatabaseError> = std::result::Result<T, E>;

/// Creates the database `url` names unless it exists, connecting to the
/// server's `postgres` database to do it. Two callers racing may both try
/// to create it; the loser fails (callers run one at a time per name).
pub async fn create_if_missing(url: &str) -> Result<()> {
    let name = postgres_url::database(url)?.to_owned();
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(DatabaseError::BadName(name));
    }
    let admin_url = postgres_url::with_database(url, "postgres")?;
    let (client, connection) = tokio_postgres::connect(&admin_url, NoTls).await?;
    let driver = tokio::spawn(connection);
    let exists = client.query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name]).await?;
    if exists.is_none() {
        client.batch_execute(&format!("CREATE DATABASE {name}")).await?;
    }
    drop(client);
    let _ = driver.await;
    Ok(())
}
