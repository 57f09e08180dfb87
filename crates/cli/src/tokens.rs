//! `scorekeeper token list|revoke`: how a token is named on the command line
//! and how tokens are shown (never their secret).

use anyhow::Context;
use scorekeeper_store::tenants::{TokenId, TokenInfo, TokenRef};

/// `sk_…` is a prefix, digits an id.
pub fn reference(token: &str) -> anyhow::Result<TokenRef> {
    if token.starts_with("sk_") {
        return Ok(TokenRef::Prefix(token.to_owned()));
    }
    let id =
        token.parse().with_context(|| format!("{token:?}: a token's prefix (sk_…) or its numeric id"))?;
    Ok(TokenRef::Id(TokenId(id)))
}

/// Prints `tokens` as a table, or one JSON object a line.
pub fn list(tokens: &[TokenInfo], json: bool) {
    let time = |t: Option<chrono::DateTime<chrono::Utc>>| {
        t.map_or_else(|| "-".to_owned(), |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
    };
    if json {
        for t in tokens {
            let line = serde_json::json!({
                "id": t.id.0,
                "customer_id": t.customer_id.0,
                "prefix": t.prefix,
                "label": t.label,
                "admin": t.is_admin,
                "created_at": t.created_at,
                "last_used_at": t.last_used_at,
                "revoked_at": t.revoked_at,
            });
            println!("{line}");
        }
        return;
    }
    println!(
        "{:>6}  {:<11}  {:<5}  {:<23}  {:<23}  {:<23}  label",
        "id", "prefix", "admin", "created", "last used", "revoked"
    );
    for t in tokens {
        println!(
            "{:>6}  {:<11}  {:<5}  {:<23}  {:<23}  {:<23}  {}",
            t.id.0,
            t.prefix.as_deref().unwrap_or("-"),
            if t.is_admin { "yes" } else { "no" },
            time(Some(t.created_at)),
            time(t.last_used_at),
            time(t.revoked_at),
            t.label
        );
    }
}
