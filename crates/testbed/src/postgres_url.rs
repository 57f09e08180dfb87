//! Surgery on `postgres://` URLs: another database on the same server, or
//! the same database through another address (a proxy).

use std::net::SocketAddr;

/// A URL this module cannot take apart.
#[derive(Debug, thiserror::Error)]
pub enum UrlError {
    #[error("{0:?} is not a postgres:// URL")]
    NotAUrl(String),
    #[error("{url:?} names no TCP host")]
    NoTcpHost { url: String },
    #[error("{url:?} is not a valid Postgres URL")]
    Invalid {
        url: String,
        #[source]
        source: tokio_postgres::Error,
    },
}

pub type Result<T, E = UrlError> = std::result::Result<T, E>;

/// A URL cut into its parts: `scheme://authority/database?query`.
struct Parts<'a> {
    /// `scheme://user:password@host:port`.
    authority: &'a str,
    database: Option<&'a str>,
    query: Option<&'a str>,
}

fn parts(url: &str) -> Result<Parts<'_>> {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let Some(scheme_end) = base.find("://") else { return Err(UrlError::NotAUrl(url.to_owned())) };
    Ok(match base[scheme_end + 3..].split_once('/') {
        Some((_, db)) if !db.is_empty() => {
            Parts { authority: &base[..base.len() - db.len() - 1], database: Some(db), query }
        }
        _ => Parts { authority: base.trim_end_matches('/'), database: None, query },
    })
}

fn join(authority: &str, database: &str, query: Option<&str>) -> String {
    match query {
        Some(query) => format!("{authority}/{database}?{query}"),
        None => format!("{authority}/{database}"),
    }
}

/// The database `url` names; `postgres` (the server's default) when it
/// names none.
pub fn database(url: &str) -> Result<&str> {
    Ok(parts(url)?.database.unwrap_or("postgres"))
}

/// `url` with its database replaced by `database`; user, host, port and
/// query parameters kept.
pub fn with_database(url: &str, database: &str) -> Result<String> {
    let parts = parts(url)?;
    Ok(join(parts.authority, database, parts.query))
}

/// `url` with its `host:port` replaced by `addr`; credentials, database and
/// query parameters kept.
pub fn with_addr(url: &str, addr: SocketAddr) -> Result<String> {
    let parts = parts(url)?;
    let (scheme, rest) = parts.authority.split_once("://").expect("parts() found the scheme");
    let credentials =
        rest.rsplit_once('@').map_or(String::new(), |(credentials, _)| format!("{credentials}@"));
    let authority = format!("{scheme}://{credentials}{addr}");
    Ok(match parts.database {
        Some(database) => join(&authority, database, parts.query),
        None => match parts.query {
            Some(query) => format!("{authority}/?{query}"),
            None => authority,
        },
    })
}

/// `host:port` of the server `url` names (port 5432 when it names none).
pub fn server_addr(url: &str) -> Result<String> {
    let config: tokio_postgres::Config =
        url.parse().map_err(|source| UrlError::Invalid { url: url.to_owned(), source })?;
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        _ => return Err(UrlError::NoTcpHost { url: url.to_owned() }),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    Ok(format!("{host}:{port}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_database_and_keeps_the_rest() {
        assert_eq!(with_database("postgres://u@h:1/scorekeeper", "sk_m").unwrap(), "postgres://u@h:1/sk_m");
        assert_eq!(
            with_database("postgres://u:p@h/sk?sslmode=disable", "sk_m").unwrap(),
            "postgres://u:p@h/sk_m?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h:1", "x").unwrap(), "postgres://u@h:1/x");
        assert_eq!(with_database("postgres://u@h:1/", "x").unwrap(), "postgres://u@h:1/x");
        assert!(with_database("host=h dbname=x", "x").is_err());
    }

    #[test]
    fn names_the_database_or_the_default() {
        assert_eq!(database("postgres://u@h:1/scorekeeper?x=y").unwrap(), "scorekeeper");
        assert_eq!(database("postgres://u@h:1").unwrap(), "postgres");
        assert!(database("dbname=x").is_err());
        // The benchmarks' databases: `<db>_bench_<name>` beside the one given.
        let bench = |url: &str| with_database(url, &format!("{}_bench_m", database(url)?));
        assert_eq!(bench("postgres://u@h:1/scorekeeper").unwrap(), "postgres://u@h:1/scorekeeper_bench_m");
        assert_eq!(bench("postgres://u@h:1").unwrap(), "postgres://u@h:1/postgres_bench_m");
    }

    #[test]
    fn replaces_the_address_and_keeps_the_rest() {
        let addr: SocketAddr = "127.0.0.1:6000".parse().unwrap();
        assert_eq!(
            with_addr("postgres://u:p@h:5432/db?sslmode=disable", addr).unwrap(),
            "postgres://u:p@127.0.0.1:6000/db?sslmode=disable"
        );
        assert_eq!(with_addr("postgres://h/db", addr).unwrap(), "postgres://127.0.0.1:6000/db");
        assert_eq!(with_addr("postgresql://u@h", addr).unwrap(), "postgresql://u@127.0.0.1:6000");
    }

    #[test]
    fn finds_the_server_address() {
        assert_eq!(server_addr("postgres://u@db.local:54329/x").unwrap(), "db.local:54329");
        assert_eq!(server_addr("postgres://u@db.local/x").unwrap(), "db.local:5432");
    }
}
