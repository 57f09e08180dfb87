//! Customers (tenants) and their API tokens. A token is shown once when it is
//! created; only its SHA-256 is stored.

use rand::RngCore;
use scorekeeper_domain::CustomerId;
use sha2::{Digest, Sha256};

use crate::Store;
use crate::error::Result;

/// Who a request acts for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Principal {
    pub customer_id: CustomerId,
    /// Admin tokens may also run cross-customer work (reindex of all customers).
    pub is_admin: bool,
}

/// Tokens look like `sk_` followed by 64 hex digits (32 random bytes).
const TOKEN_PREFIX: &str = "sk_";

fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

impl Store {
    /// Creates the customer, or returns the existing one of that name.
    pub async fn ensure_customer(&self, name: &str) -> Result<CustomerId> {
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
        let client = self.pool().get().await?;
        client
            .execute(
                "INSERT INTO api_tokens (customer_id, token_hash, is_admin, label) VALUES ($1, $2, $3, $4)",
                &[&customer_id.0, &token_hash(&token), &is_admin, &label],
            )
            .await?;
        Ok(token)
    }

    /// The principal of a live token, or `None` for an unknown or revoked one.
    pub async fn authenticate(&self, token: &str) -> Result<Option<Principal>> {
        if !token.starts_with(TOKEN_PREFIX) {
            return Ok(None);
        }
        let client = self.pool().get().await?;
        let row = client
            .query_opt(
                "SELECT customer_id, is_admin FROM api_tokens
                 WHERE token_hash = $1 AND revoked_at IS NULL",
                &[&token_hash(token)],
            )
            .await?;
        row.map(|r| {
            Ok(Principal {
                customer_id: CustomerId(r.try_get("customer_id")?),
                is_admin: r.try_get("is_admin")?,
            })
        })
        .transpose()
    }
}
