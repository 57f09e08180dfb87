//! A flood of random tokens against a real `scorekeeper serve`: from one
//! address, only the throttle's allowance is looked up in Postgres and the
//! rest is refused with RESOURCE_EXHAUSTED; the failures are counted in
//! `/metrics` and logged within the log budget, never with a token's text;
//! and a legitimate caller from another address is measured (p50/p99)
//! alone, beside as many connections of ordinary calls, and beside the
//! flood: the figures of RELIABILITY.md's "Tokens".

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use rand::RngCore;
use scorekeeper_client::{Api, BearerToken};
use scorekeeper_proto::coaching as pb;
use scorekeeper_tests::TestEnv;
use scorekeeper_tests::env::Options;
use scorekeeper_tests::process::{http_get, serve};
use tonic::Code;
use tonic::transport::{Channel, Endpoint};

const SCOREKEEPER: &str = env!("CARGO_BIN_EXE_scorekeeper");
/// Flooding tasks, each with its own connection.
const FLOODERS: usize = 8;
/// How long each phase (without and with the flood) lasts.
const PHASE: Duration = Duration::from_secs(6);
/// At most this many flood calls in all.
const MAX_FLOOD_CALLS: usize = 100_000;
/// The throttle's allowance (`api::auth::throttle`): a burst of 20, then 2 a second.
const ALLOWED_LOOKUPS: f64 = 20.0 + 2.0 * 6.0;

fn channel(url: &str, from: Ipv4Addr) -> Channel {
    Endpoint::from_shared(url.to_owned()).unwrap().local_address(Some(IpAddr::V4(from))).connect_lazy()
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("sk_{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

async fn list_templates(api: &Api) -> Result<(), Code> {
    api.scorecards()
        .list_scorecard_templates(pb::ListScorecardTemplatesRequest::default())
        .await
        .map(drop)
        .map_err(|s| s.code())
}

/// A legitimate caller's latencies, one call after another, for `PHASE`.
async fn legitimate(api: Api) -> Vec<Duration> {
    let started = Instant::now();
    let mut latencies = Vec::new();
    while started.elapsed() < PHASE {
        let call = Instant::now();
        list_templates(&api).await.expect("the legitimate caller is served");
        latencies.push(call.elapsed());
    }
    latencies
}

/// `FLOODERS` tasks, each on its own connection from 127.0.0.2, calling
/// with `token()` one call after another for `PHASE` (at most
/// `MAX_FLOOD_CALLS` in all); each counts its calls answered OK or
/// UNAUTHENTICATED, and RESOURCE_EXHAUSTED.
fn callers(
    url: &str,
    token: impl Fn() -> String + Clone + Send + 'static,
) -> Vec<tokio::task::JoinHandle<(usize, usize)>> {
    (0..FLOODERS)
        .map(|_| {
            let channel = channel(url, Ipv4Addr::new(127, 0, 0, 2));
            let token = token.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                let (mut answered, mut exhausted) = (0usize, 0usize);
                while started.elapsed() < PHASE && answered + exhausted < MAX_FLOOD_CALLS / FLOODERS {
                    let api = Api::new(channel.clone(), BearerToken::new(&token()).unwrap());
                    match list_templates(&api).await {
                        Ok(()) | Err(Code::Unauthenticated) => answered += 1,
                        Err(Code::ResourceExhausted) => exhausted += 1,
                        Err(other) => panic!("got {other:?}"),
                    }
                }
                (answered, exhausted)
            })
        })
        .collect()
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let at = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[at].as_secs_f64() * 1e3
}

fn summary(mut latencies: Vec<Duration>) -> (usize, f64, f64) {
    latencies.sort();
    (latencies.len(), percentile(&latencies, 0.50), percentile(&latencies, 0.99))
}

#[tokio::test]
async fn a_flood_of_bad_tokens_is_throttled_counted_and_logged_within_bounds() {
    let env = TestEnv::start_with(Options { dispatcher: false, worker: false, ..Options::default() }).await;
    let log = std::env::temp_dir().join(format!("sk-auth-flood-{}.log", std::process::id()));
    let process = serve(SCOREKEEPER, &env)
        .without_dispatcher()
        .without_worker()
        .without_scheduler()
        .log_file(&log)
        .start(Duration::from_secs(30))
        .await
        .expect("serve answers /health within 30 s");
    let url = process.grpc_url();
    let customer = env.store.ensure_customer("acme").await.unwrap();
    let token = env.store.create_token(customer, false, "legitimate").await.unwrap();
    let api = Api::new(channel(&url, Ipv4Addr::LOCALHOST), BearerToken::new(&token).unwrap());
    for _ in 0..20 {
        list_templates(&api).await.expect("warm-up");
    }

    let (calls, quiet_p50, quiet_p99) = summary(legitimate(api.clone()).await);
    eprintln!("without a flood: {calls} calls, p50 {quiet_p50:.2} ms, p99 {quiet_p99:.2} ms");

    // For comparison: as many connections from another address making
    // ordinary calls with a live token of another customer.
    let other = env.store.ensure_customer("other").await.unwrap();
    let other_token = env.store.create_token(other, false, "load").await.unwrap();
    let loaders = callers(&url, move || other_token.clone());
    let (calls, load_p50, load_p99) = summary(legitimate(api.clone()).await);
    let mut ordinary = 0;
    for loader in loaders {
        let (ok, refused) = loader.await.unwrap();
        assert_eq!(refused, 0, "the ordinary load is served");
        ordinary += ok;
    }
    eprintln!(
        "during {ordinary} ordinary calls in {:.0} s from {FLOODERS} connections: the legitimate caller: \
         {calls} calls, p50 {load_p50:.2} ms, p99 {load_p99:.2} ms",
        PHASE.as_secs_f64()
    );

    // The flood, from the same other address, 127.0.0.2.
    let flooders = callers(&url, random_token);
    let flood_started = Instant::now();
    let (calls, flood_p50, flood_p99) = summary(legitimate(api.clone()).await);
    let (mut looked_up, mut throttled) = (0, 0);
    for flooder in flooders {
        let (u, e) = flooder.await.unwrap();
        looked_up += u;
        throttled += e;
    }
    let flood_seconds = flood_started.elapsed().as_secs_f64();
    eprintln!(
        "during a flood of {} random tokens in {flood_seconds:.1} s ({:.0}/s) from {FLOODERS} connections: \
         {looked_up} looked up in Postgres (UNAUTHENTICATED), {throttled} refused without a lookup \
         (RESOURCE_EXHAUSTED); the legitimate caller: {calls} calls, p50 {flood_p50:.2} ms, p99 {flood_p99:.2} ms",
        looked_up + throttled,
        (looked_up + throttled) as f64 / flood_seconds
    );
    assert!(throttled > 1000, "the flood was not a flood: {throttled} throttled");
    assert!(
        looked_up as f64 <= ALLOWED_LOOKUPS + 2.0,
        "{looked_up} random tokens were looked up in Postgres; the throttle allows about {ALLOWED_LOOKUPS}"
    );

    let (_, metrics) = http_get(process.http_port(), "/metrics").await.expect("/metrics");
    let counted = |reason: &str| {
        let prefix = format!("scorekeeper_auth_failures_total{{reason=\"{reason}\"}} ");
        metrics.lines().find_map(|l| l.strip_prefix(prefix.as_str())).and_then(|v| v.parse::<f64>().ok())
    };
    assert_eq!(counted("unknown"), Some(looked_up as f64), "{metrics}");
    assert_eq!(counted("throttled"), Some(throttled as f64), "{metrics}");

    drop(process);
    let logged = std::fs::read_to_string(&log).expect("the serve log");
    let _ = std::fs::remove_file(&log);
    let failures = logged.lines().filter(|l| l.contains("authentication failed")).count();
    eprintln!("{failures} log lines for {} failures", looked_up + throttled);
    assert!(failures > 0, "failed authentications are logged:\n{logged}");
    // 20 lines per 10 s window: the phase spans at most two windows.
    assert!(failures <= 40, "the log budget holds: {failures} lines");
    assert!(
        logged.contains("127.0.0.2") && logged.contains("\"sk_"),
        "the peer and the token prefix are logged: {logged}"
    );
    let longest_hex_after_sk = logged
        .split("sk_")
        .skip(1)
        .map(|rest| rest.bytes().take_while(u8::is_ascii_hexdigit).count())
        .max()
        .unwrap_or(0);
    assert_eq!(longest_hex_after_sk, 8, "only tokens' 8-digit prefixes are logged, never their text");
}
