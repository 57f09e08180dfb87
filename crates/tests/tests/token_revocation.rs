//! Revocation against the server's token cache, on a real Postgres: a
//! token revoked by hand in SQL is refused within about a second (the
//! `api_tokens` trigger notifies, the server's listener drops the entry),
//! and a revocation the server could not hear, because its connections
//! were down, is not served from the cache once they are back.

use std::time::{Duration, Instant};

use scorekeeper_proto::coaching as pb;
use scorekeeper_tests::TestEnv;
use scorekeeper_tests::env::{Customer, Options};
use tonic::Code;

async fn call(customer: &Customer) -> Result<(), Code> {
    customer
        .scorecards()
        .list_scorecard_templates(pb::ListScorecardTemplatesRequest::default())
        .await
        .map(drop)
        .map_err(|s| s.code())
}

/// Calls until the answer is not `Ok`, within `within`; that answer and when.
async fn until_refused(customer: &Customer, within: Duration) -> (Code, Duration) {
    let started = Instant::now();
    loop {
        if let Err(code) = call(customer).await {
            return (code, started.elapsed());
        }
        assert!(started.elapsed() < within, "still accepted after {within:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Accepted for a while: cached, once the server's listener is in place.
async fn accepted_for(customer: &Customer, how_long: Duration) {
    let started = Instant::now();
    while started.elapsed() < how_long {
        assert_eq!(call(customer).await, Ok(()), "a live token is accepted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn revoke_by_hand(env: &TestEnv, customer: &Customer) {
    let client = env.store.pool().get().await.unwrap();
    let prefix = &customer.token[..11];
    let revoked = client
        .execute("UPDATE api_tokens SET revoked_at = now() WHERE prefix = $1", &[&prefix])
        .await
        .unwrap();
    assert_eq!(revoked, 1);
}

#[tokio::test]
async fn a_revocation_by_hand_is_heard_and_one_missed_is_not_served_from_the_cache() {
    let env = TestEnv::start_with(Options { dispatcher: false, worker: false, ..Options::default() }).await;
    let first = env.customer("acme").await;
    let second = env.customer("globex").await;
    accepted_for(&first, Duration::from_millis(1500)).await;
    accepted_for(&second, Duration::from_millis(100)).await;

    revoke_by_hand(&env, &first).await;
    let (code, after) = until_refused(&first, Duration::from_secs(2)).await;
    assert_eq!(code, Code::Unauthenticated);
    eprintln!("revoked in SQL: refused after {:.0} ms", after.as_secs_f64() * 1e3);
    assert_eq!(call(&second).await, Ok(()), "another token is untouched");

    // Every connection of the server to Postgres is cut (its listener's
    // too); the revocation's notification reaches nobody.
    env.postgres_proxy.cut();
    revoke_by_hand(&env, &second).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    env.postgres_proxy.restore();
    let started = Instant::now();
    let code = loop {
        match call(&second).await {
            Err(Code::Unavailable) => {
                assert!(started.elapsed() < Duration::from_secs(10), "Postgres still unavailable");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => break other,
        }
    };
    // Until the listener is back (it reconnects every second) the cache is
    // not used at all; once it is back, the cache starts empty.
    assert_eq!(code, Err(Code::Unauthenticated), "a revocation missed while the listener was down");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(call(&second).await, Err(Code::Unauthenticated), "and once the listener is back");
}
