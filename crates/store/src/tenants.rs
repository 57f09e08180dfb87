//! Customers (tenants) and their API tokens. A token is shown once when it is
//! created; only its SHA-256 is stored, with its non-secret prefix. Tokens
//! are listed and revoked here; a revocation notifies [`TOKENS_CHANNEL`]
//! (a trigger, migration V10) so that every process drops its cached copy.

use chrono::{DateTime, Utc};
use rand::RngCore;
use scorekeeper_domain::{CustomerId, Invalid};
use sha2::{Digest, Sha256};

use crate::Store;
use crate::error::{Result, StoreError};

/// Who a request acts for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Principal {
    pub customer_id: CustomerId,
    /// Admin tokens may also run cross-customer work (reindex of all customers).
    pub is_admin: bool,
}

/// A token's row id: what revocation notifications carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TokenId(pub i64);

/// What looking a token up found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenLookup {
    Live { id: TokenId, principal: Principal },
    Revoked { id: TokenId },
    Unknown,
}

/// A token as `scorekeeper token list` shows it (never its secret).
#[derive(Clone, Debug, PartialEq)]
pub struct TokenInfo {
    pub id: TokenId,
    pub customer_id: CustomerId,
    /// `None` for tokens created before prefixes were kept.
    pub prefix: Option<String>,
    pub label: String,
    pub is_admin: bool,
    pub created_at: DateTime<Utc>,
    /// Refreshed at most once a minute, when a process looks the token up
    /// again (so it may lag use by up to a minute plus the cache's lifetime).
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Which token to revoke.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenRef {
    Id(TokenId),
    /// The prefix `token list` shows (`sk_` and 8 hex digits).
    Prefix(String),
}

/// The Postgres channel that token revocations (and deletions, and changes
/// of what a token grants) are notified on; the payload is the token's id.
pub const TOKENS_CHANNEL: &str = "scorekeeper_tokens";

/// Tokens look like `sk_` followed by 64 hex digits (32 random bytes).
const TOKEN_PREFIX: &str = "sk_";
/// Hex digits of a token's body kept as its public prefix: 32 of its 256
/// random bits, which identify the token in lists and logs; the other 224
/// stay secret.
const PUBLIC_HEX_DIGITS: usize = 8;
const TOKEN_HEX_DIGITS: usize = 64;

/// `last_used_at` is written at most this often per token.
const LAST_USED_RESOLUTION_SECONDS: f64 = 60.0;

fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Whether `token` has the shape of a token we issue: `sk_` and 64
/// lowercase hex digits. Anything else cannot be one, so it is refused
/// without a query.
pub fn well_formed(token: &str) -> bool {
    token.strip_prefix(TOKEN_PREFIX).is_some_and(|body| {
        body.len() == TOKEN_HEX_DIGITS
            && body.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// The non-secret prefix of a well-formed token (`sk_` and 8 hex digits),
/// which lists and logs show; `None` for anything else, whose text is never
/// shown.
pub fn public_prefix(token: &str) -> Option<&str> {
    well_formed(token).then(|| &token[..TOKEN_PREFIX.len() + PUBLIC_HEX_DIGITS])
}

/// A customer name must show something: empty or blank names are refused
/// (they cannot be told apart in a list, nor typed back).
pub fn check_customer_name(name: &str) -> Result<(), Invalid> {
    if name.trim().is_empty() {
        return Err(Invalid::new("name", "a customer name must not be empty or only whitespace"));
    }
    Ok(())
}

fn token_info(r: &tokio_postgres::Row) -> Result<TokenInfo> {
    Ok(TokenInfo {
        id: TokenId(r.try_get("id")?),
        customer_id: CustomerId(r.try_get("customer_id")?),
        prefix: r.try_get("prefix")?,
        label: r.try_get("label")?,
        is_admin: r.try_get("is_admin")?,
        created_at: r.try_get("created_at")?,
        last_used_at: r.try_get("last_used_at")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}

impl Store {
    /// Creates the customer, or returns the existing one of that name. A
    /// blank name is refused (`StoreError::Invalid` naming `name`).
    pub async fn ensure_customer(&self, name: &str) -> Result<CustomerId> {
        check_customer_name(name)?;
        let client = self.pool().get().await?;
        let row = client
            .query_one(
                "INSERT INTO customers (name) VALUES ($1)
                 ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name
                 RETURNING id",
                &[&name],
            )
            .await?;
        Ok(CustomerId(row.try_get(0)?))
    }

    pub async fn find_customer(&self, name: &str) -> Result<Option<CustomerId>> {
        let client = self.pool().get().await?;
        let row = client.query_opt("SELECT id FROM customers WHERE name = $1", &[&name]).await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?.map(CustomerId))
    }

    pub async fn customer_exists(&self, id: CustomerId) -> Result<bool> {
        let client = self.pool().get().await?;
        Ok(client.query_opt("SELECT 1 FROM customers WHERE id = $1", &[&id.0]).await?.is_some())
    }

    /// Creates a token and returns it; it cannot be shown again.
    pub async fn create_token(&self, customer_id: CustomerId, is_admin: bool, label: &str) -> Result<String> {
        let mut secret = [0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        let token = format!("{TOKEN_PREFIX}{}", hex::encode(secret));
        let prefix = public_prefix(&token).expect("a token we make is well formed");
        let client = self.pool().get().await?;
        client
            .execute(
                "INSERT INTO api_tokens (customer_id, token_hash, is_admin, label, prefix)
                 VALUES ($1, $2, $3, $4, $5)",
                &[&customer_id.0, &token_hash(&token), &is_admin, &label, &prefix],
            )
            .await?;
        Ok(token)
    }

    /// Looks `token` up. A live token's `last_used_at` is refreshed in the
    /// same statement when it is older than a minute, so callers that cache
    /// the answer write at most once a minute per token.
    pub async fn look_up_token(&self, token: &str) -> Result<TokenLookup> {
        if !well_formed(token) {
            return Ok(TokenLookup::Unknown);
        }
        let client = self.pool().get().await?;
        let row = client
            .query_opt(
                "WITH found AS (
                     SELECT id, customer_id, is_admin, revoked_at, last_used_at
                     FROM api_tokens WHERE token_hash = $1
                 ), touched AS (
                     UPDATE api_tokens t SET last_used_at = now() FROM found
                     WHERE t.id = found.id AND found.revoked_at IS NULL
                       AND (found.last_used_at IS NULL
                            OR found.last_used_at < now() - make_interval(secs => $2))
                 )
                 SELECT id, customer_id, is_admin, revoked_at IS NOT NULL AS revoked FROM found",
                &[&token_hash(token), &LAST_USED_RESOLUTION_SECONDS],
            )
            .await?;
        let Some(r) = row else { return Ok(TokenLookup::Unknown) };
        let id = TokenId(r.try_get("id")?);
        if r.try_get("revoked")? {
            return Ok(TokenLookup::Revoked { id });
        }
        Ok(TokenLookup::Live {
            id,
            principal: Principal {
                customer_id: CustomerId(r.try_get("customer_id")?),
                is_admin: r.try_get("is_admin")?,
            },
        })
    }

    /// A customer's tokens, revoked ones included, oldest first.
    pub async fn list_tokens(&self, customer_id: CustomerId) -> Result<Vec<TokenInfo>> {
        let client = self.pool().get().await?;
        let rows = client
            .query(
                "SELECT id, customer_id, prefix, label, is_admin, created_at, last_used_at, revoked_at
                 FROM api_tokens WHERE customer_id = $1 ORDER BY id",
                &[&customer_id.0],
            )
            .await?;
        rows.iter().map(token_info).collect()
    }

    /// Revokes one token, by id or by its prefix, and returns it as it is
    /// now. Revoking a revoked token changes nothing (its first revocation
    /// time is kept). An unknown id or prefix is `NotFound`; a prefix two
    /// tokens share is refused (`Invalid`), to be revoked by id. Every
    /// process drops the token from its cache when this commits (the
    /// `api_tokens_changed` trigger notifies [`TOKENS_CHANNEL`]).
    pub async fn revoke_token(&self, which: &TokenRef) -> Result<TokenInfo> {
        let client = self.pool().get().await?;
        let ids: Vec<i64> = match which {
            TokenRef::Id(id) => vec![id.0],
            TokenRef::Prefix(prefix) => client
                .query("SELECT id FROM api_tokens WHERE prefix = $1 ORDER BY id", &[prefix])
                .await?
                .iter()
                .map(|r| r.try_get(0))
                .collect::<Result<_, _>>()?,
        };
        let id = match ids.as_slice() {
            [id] => *id,
            [] => {
                return Err(match which {
                    TokenRef::Id(id) => StoreError::NotFound { what: "token", id: id.0 },
                    TokenRef::Prefix(prefix) => StoreError::Invalid(Invalid::new(
                        "prefix",
                        format!("no token has the prefix {prefix}"),
                    )),
                });
            }
            several => {
                return Err(StoreError::Invalid(Invalid::new(
                    "prefix",
                    format!("tokens {several:?} share this prefix; revoke one by its id"),
                )));
            }
        };
        // Only a live token is updated: the trigger fires once, and the
        // first revocation time stays.
        client
            .execute("UPDATE api_tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL", &[&id])
            .await?;
        let row = client
            .query_opt(
                "SELECT id, customer_id, prefix, label, is_admin, created_at, last_used_at, revoked_at
                 FROM api_tokens WHERE id = $1",
                &[&id],
            )
            .await?
            .ok_or(StoreError::NotFound { what: "token", id })?;
        token_info(&row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_tokens_of_our_shape_are_well_formed_and_have_a_prefix() {
        let token = format!("sk_{}", "0123456789abcdef".repeat(4));
        assert!(well_formed(&token));
        assert_eq!(public_prefix(&token), Some("sk_01234567"));
        for bad in [
            String::new(),
            "sk_".into(),
            format!("sk_{}", "0".repeat(63)),
            format!("sk_{}", "0".repeat(65)),
            format!("sk_{}", "A".repeat(64)),
            format!("pk_{}", "0".repeat(64)),
            format!("sk_{}é", "0".repeat(62)),
        ] {
            assert!(!well_formed(&bad), "{bad:?}");
            assert_eq!(public_prefix(&bad), None, "{bad:?}");
        }
    }

    #[test]
    fn blank_customer_names_are_refused() {
        for name in ["", " ", "\t\n", "\u{3000}"] {
            assert_eq!(check_customer_name(name).unwrap_err().field, "name", "{name:?}");
        }
        for name in ["1", "acme", " acme "] {
            assert!(check_customer_name(name).is_ok(), "{name:?}");
        }
    }
}
