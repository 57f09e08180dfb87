//! `scorekeeper token list|revoke` and `customer create` as an operator runs
//! them, against two real `scorekeeper serve` processes on this test's
//! databases: a revoked token is refused by both within about a second
//! (each had it cached for 30 s), and a customer is named by id or by name,
//! never by a guess between them.

use std::process::Output;
use std::time::{Duration, Instant};

use scorekeeper_client::{Api, BearerToken};
use scorekeeper_proto::coaching as pb;
use scorekeeper_store::tenants::TokenLookup;
use scorekeeper_tests::TestEnv;
use scorekeeper_tests::env::Options;
use scorekeeper_tests::process::{ServeProcess, cli, serve, stdout_of, text};
use tonic::Code;

/// The binary under test.
const SCOREKEEPER: &str = env!("CARGO_BIN_EXE_scorekeeper");
const CLI_WITHIN: Duration = Duration::from_secs(60);
/// The bound is about a second; the test allows two.
const REFUSED_WITHIN: Duration = Duration::from_secs(2);

/// Runs `scorekeeper <args> --database-url <the test's>` and returns its output.
async fn operator(env: &TestEnv, args: &[&str]) -> Output {
    let url = env.database_url();
    let mut all = args.to_vec();
    all.extend(["--database-url", url.as_str()]);
    cli(SCOREKEEPER, &all, CLI_WITHIN).await
}

/// An API-only serve process (no dispatcher, worker or scheduler).
async fn api_process(env: &TestEnv) -> ServeProcess {
    serve(SCOREKEEPER, env)
        .without_dispatcher()
        .without_worker()
        .without_scheduler()
        .start(Duration::from_secs(30))
        .await
        .expect("serve answers /health within 30 s")
}

/// One cheap authenticated call: `Ok` or the status code.
async fn call(url: &str, token: &str) -> Result<(), Code> {
    let api = Api::new(scorekeeper_client::channel::lazy(url).unwrap(), BearerToken::new(token).unwrap());
    api.scorecards()
        .list_scorecard_templates(pb::ListScorecardTemplatesRequest::default())
        .await
        .map(drop)
        .map_err(|s| s.code())
}

/// Calls `url` with `token` every 5 ms until it is refused; when.
async fn first_refusal(url: String, token: String, within: Duration) -> Option<Instant> {
    let started = Instant::now();
    while started.elapsed() < within {
        match call(&url, &token).await {
            Ok(()) => {}
            Err(Code::Unauthenticated) => return Some(Instant::now()),
            Err(other) => panic!("{url}: expected OK or UNAUTHENTICATED, got {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    None
}

#[tokio::test]
async fn a_revoked_token_is_refused_by_every_serve_process_within_a_second() {
    let env = TestEnv::start_with(Options { dispatcher: false, worker: false, ..Options::default() }).await;
    let (first, second) = tokio::join!(api_process(&env), api_process(&env));
    let urls = [first.grpc_url(), second.grpc_url()];
    let args = ["customer", "create", "acme"];
    let customer = stdout_of(&args, &operator(&env, &args).await).trim().to_owned();
    let args = ["token", "create", "--customer-id", &customer, "--label", "doomed"];
    let doomed = stdout_of(&args, &operator(&env, &args).await).trim().to_owned();
    let args = ["token", "create", "--customer-name", "acme", "--label", "kept"];
    let kept = stdout_of(&args, &operator(&env, &args).await).trim().to_owned();

    // Both processes accept the token, and keep accepting it: it is in
    // their caches (30 s) once their revocation listeners are in place.
    let warm = Instant::now();
    while warm.elapsed() < Duration::from_millis(1500) {
        for url in &urls {
            assert_eq!(call(url, &doomed).await, Ok(()), "{url} accepts the live token");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let args = ["token", "list", "--customer-id", &customer];
    let listed = stdout_of(&args, &operator(&env, &args).await);
    let prefix = &doomed[..11];
    let line = listed.lines().find(|l| l.contains(prefix)).unwrap_or_else(|| panic!("{prefix} in\n{listed}"));
    assert!(!line.contains(&doomed[11..]), "the secret is never shown: {line}");
    assert!(
        line.contains("doomed") && line.matches(" UTC").count() == 2,
        "created and last used, not revoked: {line}"
    );

    // Revoked by its prefix while both processes are being called.
    let watchers: Vec<_> = urls
        .iter()
        .map(|url| tokio::spawn(first_refusal(url.clone(), doomed.clone(), Duration::from_secs(10))))
        .collect();
    let revoking = Instant::now();
    let args = ["token", "revoke", prefix];
    let revoked = stdout_of(&args, &operator(&env, &args).await);
    let revoked_by = revoking.elapsed();
    assert!(revoked.contains(prefix) && revoked.matches(" UTC").count() == 3, "{revoked}");
    for (url, watcher) in urls.iter().zip(watchers) {
        let refused =
            watcher.await.unwrap().unwrap_or_else(|| panic!("{url} still accepts the revoked token"));
        let after = refused.saturating_duration_since(revoking);
        eprintln!(
            "{url}: refused {:.0} ms after `token revoke` started ({:.0} ms after it exited)",
            after.as_secs_f64() * 1e3,
            after.saturating_sub(revoked_by).as_secs_f64() * 1e3
        );
        assert!(after < REFUSED_WITHIN, "{url} refused the revoked token only after {after:?}");
        assert_eq!(call(url, &doomed).await, Err(Code::Unauthenticated), "{url} keeps refusing it");
        assert_eq!(call(url, &kept).await, Ok(()), "{url}: the customer's other token still works");
    }

    let args = ["token", "list", "--customer-name", "acme", "--json"];
    let listed = stdout_of(&args, &operator(&env, &args).await);
    let tokens: Vec<serde_json::Value> = listed.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(tokens.len(), 2, "{listed}");
    assert!(tokens[0]["revoked_at"].is_string() && tokens[1]["revoked_at"].is_null(), "{listed}");
    assert!(tokens[0]["last_used_at"].is_string(), "{listed}");
    // Again: nothing changes, the first revocation time stays.
    let args = ["token", "revoke", &tokens[0]["id"].to_string()];
    let again = stdout_of(&args, &operator(&env, &args).await);
    assert!(
        again.contains(
            tokens[0]["revoked_at"].as_str().unwrap().get(..19).unwrap().replace('T', " ").as_str()
        ),
        "{again}"
    );
}

#[tokio::test]
async fn customers_are_named_by_id_or_by_name_never_by_a_guess() {
    let env = TestEnv::start_with(Options { dispatcher: false, worker: false, ..Options::default() }).await;
    for blank in ["", "   ", "\t"] {
        let output = operator(&env, &["customer", "create", blank]).await;
        assert!(!output.status.success(), "customer create {blank:?} is refused");
        assert!(text(&output.stderr).contains("must not be empty"), "{}", text(&output.stderr));
    }
    let args = ["customer", "create", "acme"];
    let acme = stdout_of(&args, &operator(&env, &args).await).trim().to_owned();
    // A customer whose name is another customer's id.
    let args = ["customer", "create", acme.as_str()];
    let named = stdout_of(&args, &operator(&env, &args).await).trim().to_owned();
    assert_ne!(named, acme);

    let output = operator(&env, &["token", "create", "--customer", &acme]).await;
    assert!(!output.status.success(), "--customer {acme} could be either customer: refused");
    assert!(text(&output.stderr).contains("ambiguous"), "{}", text(&output.stderr));
    assert!(text(&output.stdout).trim().is_empty(), "no token printed: {}", text(&output.stdout));

    let tenant = async |args: &[&str]| {
        let token = stdout_of(args, &operator(&env, args).await).trim().to_owned();
        match env.store.look_up_token(&token).await.unwrap() {
            TokenLookup::Live { principal, .. } => principal.customer_id.to_string(),
            other => panic!("a live token, not {other:?}"),
        }
    };
    assert_eq!(tenant(&["token", "create", "--customer-id", &acme]).await, acme);
    assert_eq!(tenant(&["token", "create", "--customer-name", &acme]).await, named);
    // Unambiguous: a name that is no id, an id that is no one's name.
    assert_eq!(tenant(&["token", "create", "--customer", "acme"]).await, acme);
    assert_eq!(tenant(&["token", "create", "--customer", &named]).await, named);

    let output =
        operator(&env, &["token", "create", "--customer-id", &acme, "--customer-name", "acme"]).await;
    assert!(!output.status.success(), "one way of naming the customer at a time");
    let output = operator(&env, &["token", "create"]).await;
    assert!(!output.status.success(), "a customer is required");
}
