//! The operator console's HTTP contract (docs/console.md) on a real
//! `scorekeeper serve`, each test with its own databases and process:
//! nothing but the login page without a session; a token logs in as the
//! API checks it, into a cookie that is `HttpOnly`, `SameSite=Strict`,
//! scoped to `/ui` and as long-lived as `CONSOLE_SESSION_SECONDS`, and the
//! session ends when it expires, on logout and at once when its token is
//! revoked; a POST without the session's CSRF token or from another origin
//! changes nothing; a customer's session sees, cancels and repairs only its
//! own customer's jobs and audits, refused with the API's codes (and the
//! gRPC API agrees); and failed logins are throttled by the API's own
//! throttle.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use scorekeeper_proto::v1::{GetJobRequest, JobState, ListJobsRequest, ReindexConversationsPayload};
use scorekeeper_store::tenants::TokenRef;
use scorekeeper_tests::env::{Options, bulk_import};
use scorekeeper_tests::jobs::{created, reindex_request, state};
use scorekeeper_tests::process::{HttpResponse, ServeProcess, http_request, serve};
use scorekeeper_tests::{Customer, TestEnv};
use serde_json::{Value, json};
use tonic::Code;

/// The session lifetime the tests give `serve` (`CONSOLE_SESSION_SECONDS`).
const SESSION_SECONDS: u64 = 600;
/// How long anything a test waits for may take.
const WITHIN: Duration = Duration::from_secs(60);
/// Failed authentications an address may make at once
/// (`scorekeeper_api::auth::throttle::BURST`).
const THROTTLE_BURST: usize = 20;

/// A test environment (its own in-process server runs neither worker nor
/// dispatcher: the `serve` process under test does the work) and a `serve`
/// on it, with a job worker only when `worker`.
async fn start(worker: bool) -> (TestEnv, ServeProcess) {
    let env = TestEnv::start_with(Options { dispatcher: false, worker: false, ..Options::default() }).await;
    let binary = scorekeeper_testbed::binary::serve_binary().expect("the scorekeeper binary");
    let mut builder = serve(binary, &env).env("CONSOLE_SESSION_SECONDS", SESSION_SECONDS.to_string());
    if !worker {
        builder = builder.without_worker();
    }
    let process = builder.start(WITHIN).await.expect("serve answers /health within 60 s");
    (env, process)
}

/// `customer` with an admin token, calling the same server.
async fn admin_of(env: &TestEnv, customer: &Customer) -> Customer {
    let mut admin = customer.clone();
    admin.token = env.admin(customer).await.token;
    admin
}

/// A request to the console, which must answer.
async fn request(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> HttpResponse {
    http_request(port, method, path, headers, body)
        .await
        .unwrap_or_else(|| panic!("{method} {path}: the console did not answer"))
}

/// `POST /ui/login` with the form field `token`, and `headers`.
async fn log_in(port: u16, token: &str, headers: &[(&str, &str)]) -> HttpResponse {
    let mut all = vec![("Content-Type", "application/x-www-form-urlencoded")];
    all.extend_from_slice(headers);
    request(port, "POST", "/ui/login", &all, format!("token={token}").as_bytes()).await
}

/// The body as JSON; panics with the response when it is not.
fn json_of(response: &HttpResponse) -> Value {
    serde_json::from_str(&response.body).unwrap_or_else(|e| panic!("not JSON ({e}): {response:?}"))
}

/// The response is the error `status` with `{"code": code, …}`.
#[track_caller]
fn assert_refused(response: &HttpResponse, status: u16, code: &str, what: &str) {
    assert_eq!(response.status, status, "{what}: {response:?}");
    let content_type = response.header("content-type").unwrap_or_default();
    assert!(content_type.starts_with("application/json"), "{what}: an error is JSON: {response:?}");
    assert_eq!(json_of(response)["code"], code, "{what}: {response:?}");
}

/// The value of the `sk_console` cookie a response sets, if any.
fn session_cookie(response: &HttpResponse) -> Option<String> {
    response
        .headers_named("set-cookie")
        .into_iter()
        .find_map(|c| c.split(';').next()?.trim().strip_prefix("sk_console=").map(str::to_owned))
}

/// A job id nobody made.
fn made_up_job_id() -> String {
    let hex = format!("{:032x}", rand::random::<u128>());
    format!("{}-{}-4{}-8{}-{}", &hex[..8], &hex[8..12], &hex[13..16], &hex[17..20], &hex[20..])
}

/// A well-formed token nobody made.
fn made_up_token() -> String {
    format!("sk_{:064x}", rand::random::<u128>())
}

/// A logged-in console session: its cookie and CSRF token.
struct Session {
    port: u16,
    cookie: String,
    csrf: String,
}

impl Session {
    /// Logs in with `token`, which must be accepted.
    async fn open(port: u16, token: &str) -> Session {
        let response = log_in(port, token, &[]).await;
        assert_eq!(response.status, 303, "logging in with a live token: {response:?}");
        let cookie = session_cookie(&response).unwrap_or_else(|| panic!("no session cookie: {response:?}"));
        let mut session = Session { port, cookie, csrf: String::new() };
        let described = session.json("/ui/api/session").await;
        session.csrf = described["csrf"].as_str().expect("the session's csrf").to_owned();
        assert!(!session.csrf.is_empty(), "an empty CSRF token: {described}");
        session
    }

    fn cookie_header(&self) -> String {
        format!("sk_console={}", self.cookie)
    }

    async fn get(&self, path: &str) -> HttpResponse {
        request(self.port, "GET", path, &[("Cookie", &self.cookie_header())], b"").await
    }

    /// A GET that must answer 200 with JSON.
    async fn json(&self, path: &str) -> Value {
        let response = self.get(path).await;
        assert_eq!(response.status, 200, "GET {path}: {response:?}");
        json_of(&response)
    }

    /// A POST with the session's cookie and only `headers` beside it.
    async fn post_with(&self, path: &str, headers: &[(&str, &str)], body: &str) -> HttpResponse {
        let cookie = self.cookie_header();
        let mut all = vec![("Cookie", cookie.as_str())];
        if !body.is_empty() {
            all.push(("Content-Type", "application/json"));
        }
        all.extend_from_slice(headers);
        request(self.port, "POST", path, &all, body.as_bytes()).await
    }

    /// A POST with the session's cookie and CSRF token (no `Origin`, as a
    /// client that is not a browser sends it).
    async fn post(&self, path: &str, body: &str) -> HttpResponse {
        self.post_with(path, &[("X-CSRF-Token", &self.csrf)], body).await
    }

    /// The job `id` as the session sees it, which must be found.
    async fn job(&self, id: &str) -> Value {
        self.json(&format!("/ui/api/jobs/{id}")).await
    }

    /// The ids of the jobs the session's list holds (one page: the tests
    /// make fewer than 50).
    async fn job_ids(&self, query: &str) -> Vec<String> {
        let page = self.json(&format!("/ui/api/jobs{query}")).await;
        let jobs = page["jobs"].as_array().unwrap_or_else(|| panic!("no jobs array: {page}"));
        jobs.iter().map(|j| j["id"].as_str().expect("a job id").to_owned()).collect()
    }
}

/// What GetJob answers `customer`'s token about job `id` on the serve.
async fn grpc_get_job(customer: &Customer, id: &str) -> Result<JobState, Code> {
    let job = customer.jobs().get_job(GetJobRequest { id: id.to_owned() }).await.map_err(|s| s.code())?;
    Ok(state(&job.into_inner().job.expect("GetJob answers the job")))
}

#[tokio::test]
async fn without_a_session_only_the_login_page_is_served() {
    let (_env, process) = start(false).await;
    let port = process.http_port();

    for path in ["/ui", "/ui/"] {
        let page = request(port, "GET", path, &[], b"").await;
        assert_eq!(page.status, 303, "GET {path} without a session: {page:?}");
        assert_eq!(page.header("location"), Some("/ui/login"), "GET {path}: {page:?}");
    }
    let login = request(port, "GET", "/ui/login", &[], b"").await;
    assert_eq!(login.status, 200, "{login:?}");
    let content_type = login.header("content-type").unwrap_or_default();
    assert!(content_type.starts_with("text/html"), "the login page is HTML: {login:?}");
    assert!(login.headers_named("set-cookie").is_empty(), "the login page starts no session: {login:?}");

    let job = made_up_job_id();
    let reads = [
        "/ui/assets/app.js".to_owned(),
        "/ui/assets/app.css".to_owned(),
        "/ui/api/session".to_owned(),
        "/ui/api/jobs".to_owned(),
        format!("/ui/api/jobs/{job}"),
        "/ui/api/freshness".to_owned(),
        "/ui/api/audits".to_owned(),
        "/ui/api/audits/1".to_owned(),
        "/ui/api/topology".to_owned(),
    ];
    for path in &reads {
        let response = request(port, "GET", path, &[], b"").await;
        assert_refused(&response, 401, "unauthenticated", &format!("GET {path} without a session"));
    }
    let writes = [format!("/ui/api/jobs/{job}/cancel"), "/ui/api/audits".to_owned(), "/ui/logout".to_owned()];
    for path in &writes {
        let response = request(port, "POST", path, &[], b"").await;
        assert_refused(&response, 401, "unauthenticated", &format!("POST {path} without a session"));
    }

    // A cookie of the right name and shape that no login made, and one of
    // the wrong shape.
    let forged = format!("sk_console={:064x}", rand::random::<u128>());
    for cookie in [forged.as_str(), "sk_console=", "sk_console=x; other=1"] {
        let headers = [("Cookie", cookie)];
        let api = request(port, "GET", "/ui/api/jobs", &headers, b"").await;
        assert_refused(&api, 401, "unauthenticated", &format!("GET /ui/api/jobs with `{cookie}`"));
        let asset = request(port, "GET", "/ui/assets/app.js", &headers, b"").await;
        assert_refused(&asset, 401, "unauthenticated", &format!("GET /ui/assets/app.js with `{cookie}`"));
        let page = request(port, "GET", "/ui", &headers, b"").await;
        assert_eq!(page.status, 303, "GET /ui with `{cookie}`: {page:?}");
        assert_eq!(page.header("location"), Some("/ui/login"), "GET /ui with `{cookie}`: {page:?}");
    }
}

/// The number of session rows stored under the SHA-256 of the cookie's id,
/// and of rows holding the id itself (there must be none).
async fn stored_sessions(env: &TestEnv, cookie: &str) -> (i64, i64) {
    let client = env.store.pool().get().await.expect("a Postgres connection");
    let hashed: i64 = client
        .query_one(
            "SELECT count(*) FROM console_sessions WHERE id_hash = sha256($1::bytea)",
            &[&cookie.as_bytes()],
        )
        .await
        .expect("counting sessions")
        .get(0);
    let plain: i64 = client
        .query_one(
            "SELECT count(*) FROM console_sessions WHERE id_hash = $1::bytea OR encode(id_hash, 'hex') = $2",
            &[&cookie.as_bytes(), &cookie],
        )
        .await
        .expect("counting sessions")
        .get(0);
    (hashed, plain)
}

#[tokio::test]
async fn a_token_logs_in_and_its_session_ends_on_expiry_logout_and_revocation() {
    let (env, process) = start(false).await;
    let port = process.http_port();
    let customer = env.customer_at("acme", &process.grpc_url()).await;
    let admin = admin_of(&env, &customer).await;

    // Refused tokens: the login page again, with the API's status, and no
    // session.
    for token in [made_up_token(), "not-a-token".to_owned(), String::new()] {
        let refused = log_in(port, &token, &[]).await;
        assert_eq!(refused.status, 401, "logging in with {token:?}: {refused:?}");
        assert!(
            refused.headers_named("set-cookie").is_empty(),
            "a refused login sets no cookie: {refused:?}"
        );
    }

    // A live token: to the app, with the session's cookie.
    let accepted = log_in(port, &admin.token, &[]).await;
    assert_eq!(accepted.status, 303, "{accepted:?}");
    assert_eq!(accepted.header("location"), Some("/ui"), "{accepted:?}");
    let cookies = accepted.headers_named("set-cookie");
    assert_eq!(cookies.len(), 1, "one cookie: {accepted:?}");
    let mut parts = cookies[0].split(';').map(str::trim);
    let id = parts.next().and_then(|p| p.strip_prefix("sk_console=")).expect("the sk_console cookie");
    assert!(
        id.len() == 64 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "the session id is 64 hex digits: {id:?}"
    );
    let attributes: Vec<&str> = parts.collect();
    let max_age = format!("Max-Age={SESSION_SECONDS}");
    for wanted in ["HttpOnly", "SameSite=Strict", "Path=/ui", max_age.as_str()] {
        assert!(attributes.contains(&wanted), "the cookie lacks {wanted}: {}", cookies[0]);
    }
    assert!(
        !attributes.iter().any(|a| a.eq_ignore_ascii_case("secure")),
        "Secure over plain HTTP: {}",
        cookies[0]
    );
    assert_eq!(stored_sessions(&env, id).await, (1, 0), "Postgres keeps the id's hash, never the id");

    let session = Session::open(port, &admin.token).await;
    let page = session.get("/ui").await;
    assert_eq!(page.status, 200, "{page:?}");
    assert!(page.header("content-type").unwrap_or_default().starts_with("text/html"), "{page:?}");
    let script = session.get("/ui/assets/app.js").await;
    assert_eq!(script.status, 200, "{script:?}");
    assert!(script.header("content-type").unwrap_or_default().starts_with("text/javascript"), "{script:?}");
    let described = session.json("/ui/api/session").await;
    assert_eq!(described["admin"], true, "{described}");
    assert_eq!(described["customer_id"], customer.id.0, "{described}");
    let expires_at: DateTime<Utc> =
        described["expires_at"].as_str().and_then(|t| t.parse().ok()).expect("expires_at, RFC 3339");
    let left = (expires_at - Utc::now()).num_seconds();
    assert!((540..=660).contains(&left), "the session expires in {left} s, not about {SESSION_SECONDS}");

    let own = Session::open(port, &customer.token).await;
    let described = own.json("/ui/api/session").await;
    assert_eq!(described["admin"], false, "{described}");
    assert_eq!(described["customer_id"], customer.id.0, "{described}");
    assert_ne!(own.csrf, session.csrf, "each session has its own CSRF token");

    // Expiry, as Postgres's clock has it.
    let client = env.store.pool().get().await.expect("a Postgres connection");
    let expired = client
        .execute(
            "UPDATE console_sessions SET expires_at = now() - interval '1 second' WHERE id_hash = sha256($1::bytea)",
            &[&session.cookie.as_bytes()],
        )
        .await
        .expect("expiring the session");
    assert_eq!(expired, 1);
    assert_refused(&session.get("/ui/api/session").await, 401, "unauthenticated", "an expired session");
    let page = session.get("/ui").await;
    assert_eq!(page.status, 303, "an expired session's page: {page:?}");
    assert_eq!(page.header("location"), Some("/ui/login"), "{page:?}");
    own.json("/ui/api/session").await;

    // Logout: without the CSRF token it changes nothing; with it, the
    // session ends and its cookie is cleared.
    let second = Session::open(port, &admin.token).await;
    let refused = second.post_with("/ui/logout", &[], "").await;
    assert_refused(&refused, 403, "permission_denied", "logout without X-CSRF-Token");
    second.json("/ui/api/session").await;
    let out = second.post("/ui/logout", "").await;
    assert_eq!(out.status, 204, "{out:?}");
    let cleared = out.headers_named("set-cookie");
    assert!(
        cleared.iter().any(|c| c.starts_with("sk_console=;") && c.contains("Max-Age=0")),
        "logout clears the cookie: {out:?}"
    );
    assert_refused(&second.get("/ui/api/session").await, 401, "unauthenticated", "after logout");
    assert_eq!(stored_sessions(&env, &second.cookie).await, (0, 0), "logout deletes the session");
    own.json("/ui/api/session").await;

    // Revocation ends the token's sessions at once, and only its own.
    let admin_session = Session::open(port, &admin.token).await;
    let prefix = customer.token[..11].to_owned();
    env.store.revoke_token(&TokenRef::Prefix(prefix)).await.expect("revoking the customer's token");
    assert_refused(
        &own.get("/ui/api/session").await,
        401,
        "unauthenticated",
        "the session of a revoked token",
    );
    assert_refused(&own.get("/ui/api/jobs").await, 401, "unauthenticated", "the session of a revoked token");
    assert_eq!(own.get("/ui").await.status, 303, "the page of a revoked token's session");
    let refused = log_in(port, &customer.token, &[]).await;
    assert_eq!(refused.status, 401, "logging in with a revoked token: {refused:?}");
    assert!(refused.headers_named("set-cookie").is_empty(), "{refused:?}");
    admin_session.json("/ui/api/session").await;
}

#[tokio::test]
async fn a_post_without_the_csrf_token_or_from_another_origin_changes_nothing() {
    let (env, process) = start(false).await;
    let port = process.http_port();
    let customer = env.customer_at("acme", &process.grpc_url()).await;
    let admin = admin_of(&env, &customer).await;
    let request =
        reindex_request(ReindexConversationsPayload { customer_id: customer.id.0, ..Default::default() });
    let job = created(&mut admin.jobs(), request).await;
    assert_eq!(state(&job), JobState::Queued, "no worker runs: {job:?}");
    let cancel = format!("/ui/api/jobs/{}/cancel", job.id);

    let session = Session::open(port, &admin.token).await;
    let other = Session::open(port, &admin.token).await;
    let own_origin = format!("http://127.0.0.1:{port}");
    let wrong = format!("{:064x}", rand::random::<u128>());
    let refusals: [(&str, Vec<(&str, &str)>); 6] = [
        ("no X-CSRF-Token", vec![]),
        ("no X-CSRF-Token from its own origin", vec![("Origin", &own_origin)]),
        ("a wrong X-CSRF-Token", vec![("X-CSRF-Token", &wrong)]),
        ("another session's X-CSRF-Token", vec![("X-CSRF-Token", &other.csrf)]),
        (
            "the right X-CSRF-Token from another origin",
            vec![("X-CSRF-Token", &session.csrf), ("Origin", "http://evil.example")],
        ),
        (
            "the right X-CSRF-Token from an opaque origin",
            vec![("X-CSRF-Token", &session.csrf), ("Origin", "null")],
        ),
    ];
    for (case, headers) in &refusals {
        let refused = session.post_with(&cancel, headers, "").await;
        assert_refused(&refused, 403, "permission_denied", &format!("cancel with {case}"));
        assert_eq!(session.job(&job.id).await["state"], "queued", "after a cancel with {case}");
        assert_eq!(grpc_get_job(&admin, &job.id).await, Ok(JobState::Queued), "after a cancel with {case}");
    }
    // Nor does logging out or in from another origin.
    let refused = session
        .post_with("/ui/logout", &[("X-CSRF-Token", &session.csrf), ("Origin", "http://evil.example")], "")
        .await;
    assert_refused(&refused, 403, "permission_denied", "logout from another origin");
    session.json("/ui/api/session").await;
    let refused = log_in(port, &admin.token, &[("Origin", "http://evil.example")]).await;
    assert_eq!(refused.status, 403, "a login from another origin: {refused:?}");
    assert!(refused.headers_named("set-cookie").is_empty(), "{refused:?}");

    // The right token from the console's own origin cancels.
    let cancelled =
        session.post_with(&cancel, &[("X-CSRF-Token", &session.csrf), ("Origin", &own_origin)], "").await;
    assert_eq!(cancelled.status, 200, "{cancelled:?}");
    let cancelled = json_of(&cancelled);
    assert_eq!(cancelled["id"], job.id.as_str(), "{cancelled}");
    assert_eq!(cancelled["state"], "cancelled", "{cancelled}");
    assert_eq!(session.job(&job.id).await["state"], "cancelled");
    assert_eq!(grpc_get_job(&admin, &job.id).await, Ok(JobState::Cancelled));
}

#[tokio::test]
async fn a_customer_session_sees_and_cancels_only_its_own_customers_jobs() {
    let (env, process) = start(false).await;
    let port = process.http_port();
    let acme = env.customer_at("acme", &process.grpc_url()).await;
    let globex = env.customer_at("globex", &process.grpc_url()).await;
    let own_reindex = |c: &Customer| {
        reindex_request(ReindexConversationsPayload { customer_id: c.id.0, ..Default::default() })
    };
    let acme_job = created(&mut acme.jobs(), own_reindex(&acme)).await;
    let globex_job = created(&mut globex.jobs(), own_reindex(&globex)).await;
    let acme_session = Session::open(port, &acme.token).await;
    let globex_session = Session::open(port, &globex.token).await;
    let admin_session = Session::open(port, &admin_of(&env, &acme).await.token).await;

    // Another customer's job is not found, as GetJob answers, and as a job
    // nobody made.
    for id in [acme_job.id.clone(), made_up_job_id()] {
        let response = globex_session.get(&format!("/ui/api/jobs/{id}")).await;
        assert_refused(&response, 404, "not_found", "globex asking for acme's job");
        assert_eq!(grpc_get_job(&globex, &id).await, Err(Code::NotFound), "GetJob agrees");
    }
    assert_eq!(globex_session.job(&globex_job.id).await["customer_id"], globex.id.0);
    assert_eq!(acme_session.job(&acme_job.id).await["customer_id"], acme.id.0);

    // Naming another customer in the list is refused, as ListJobs refuses it.
    let response = globex_session.get(&format!("/ui/api/jobs?customer_id={}", acme.id.0)).await;
    assert_refused(&response, 400, "invalid_argument", "globex listing acme's jobs");
    let listed =
        globex.jobs().list_jobs(ListJobsRequest { customer_id: acme.id.0, ..Default::default() }).await;
    assert_eq!(listed.map(drop).map_err(|s| s.code()), Err(Code::InvalidArgument), "ListJobs agrees");
    assert_eq!(globex_session.job_ids("").await, [globex_job.id.as_str()], "globex's list");
    assert_eq!(
        globex_session.job_ids(&format!("?customer_id={}", globex.id.0)).await,
        [globex_job.id.as_str()]
    );
    assert_eq!(acme_session.job_ids("").await, [acme_job.id.as_str()], "acme's list");
    let mut all = admin_session.job_ids("").await;
    all.sort();
    let mut both = vec![acme_job.id.clone(), globex_job.id.clone()];
    both.sort();
    assert_eq!(all, both, "an admin session lists every customer's jobs");
    assert_eq!(admin_session.job_ids(&format!("?customer_id={}", acme.id.0)).await, [acme_job.id.as_str()]);

    // Cancelling another customer's job: not found, and the job is as it was.
    let before = acme_session.job(&acme_job.id).await;
    let response = globex_session.post(&format!("/ui/api/jobs/{}/cancel", acme_job.id), "").await;
    assert_refused(&response, 404, "not_found", "globex cancelling acme's job");
    assert_eq!(acme_session.job(&acme_job.id).await, before, "acme's job after globex's cancel");
    assert_eq!(before["state"], "queued");
    assert_eq!(grpc_get_job(&acme, &acme_job.id).await, Ok(JobState::Queued));

    // Its own job it cancels.
    let response = globex_session.post(&format!("/ui/api/jobs/{}/cancel", globex_job.id), "").await;
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(json_of(&response)["state"], "cancelled");
    assert_eq!(grpc_get_job(&acme, &acme_job.id).await, Ok(JobState::Queued));
}

/// Polls the job `id` until it ended; it must have succeeded.
async fn until_succeeded(session: &Session, id: &str) -> Value {
    let started = Instant::now();
    loop {
        let job = session.job(id).await;
        match job["state"].as_str() {
            Some("succeeded") => return job,
            Some("queued" | "running") => {}
            _ => panic!("job {id} ended without succeeding: {job}"),
        }
        assert!(started.elapsed() < WITHIN, "job {id} has not succeeded after {WITHIN:?}: {job}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_customer_session_sees_and_repairs_only_its_own_customers_audits() {
    let (env, process) = start(true).await;
    let port = process.http_port();
    let acme = env.customer_at("acme", &process.grpc_url()).await;
    let globex = env.customer_at("globex", &process.grpc_url()).await;
    // Rows in Postgres only: the audit finds them missing.
    bulk_import(&env.store, acme.id, 5).await;
    let admin_session = Session::open(port, &admin_of(&env, &acme).await.token).await;
    let acme_session = Session::open(port, &acme.token).await;
    let globex_session = Session::open(port, &globex.token).await;

    // Auditing another customer is refused, as the API refuses it, and
    // starts nothing.
    let body = json!({"customer_id": acme.id.0}).to_string();
    let response = globex_session.post("/ui/api/audits", &body).await;
    assert_refused(&response, 403, "permission_denied", "globex auditing acme");
    assert_eq!(admin_session.job_ids("?type=audit").await, Vec::<String>::new(), "no audit job was queued");

    // An audit of acme, run from an admin session, stored for acme.
    let started = admin_session.post("/ui/api/audits", &body).await;
    assert_eq!(started.status, 200, "{started:?}");
    let job = json_of(&started)["job"].clone();
    assert_eq!(job["type"], "audit", "{job}");
    assert_eq!(job["customer_id"], acme.id.0, "{job}");
    assert_eq!(job["repair"], false, "{job}");
    let job_id = job["id"].as_str().expect("the job's id").to_owned();
    until_succeeded(&admin_session, &job_id).await;
    let listed = admin_session.json("/ui/api/audits").await;
    let audit = listed["audits"]
        .as_array()
        .and_then(|audits| audits.iter().find(|a| a["job_id"] == job_id.as_str()))
        .unwrap_or_else(|| panic!("the audit of job {job_id} is not listed: {listed}"))
        .clone();
    assert_eq!(audit["customer_id"], acme.id.0, "{audit}");
    assert!(
        audit["drifted_rows"].as_i64().unwrap_or_default() > 0,
        "the audit found the missing rows: {audit}"
    );
    let audit_id = audit["id"].as_i64().expect("the audit's id");
    let path = format!("/ui/api/audits/{audit_id}");
    let whole = acme_session.json(&path).await;
    assert_eq!(whole["id"], audit_id, "acme's own session sees its audit: {whole}");
    assert!(whole["days"].is_array() && whole["rows"].is_array(), "{whole}");
    let ids = |list: &Value| -> Vec<i64> {
        list["audits"]
            .as_array()
            .map(|a| a.iter().filter_map(|a| a["id"].as_i64()).collect())
            .unwrap_or_default()
    };
    assert!(ids(&acme_session.json("/ui/api/audits").await).contains(&audit_id), "acme lists its audit");

    // Another customer's audit is not found, nor listed, nor repaired.
    assert_refused(&globex_session.get(&path).await, 404, "not_found", "globex asking for acme's audit");
    let globex_list = globex_session.json("/ui/api/audits").await;
    assert!(!ids(&globex_list).contains(&audit_id), "globex lists acme's audit: {globex_list}");
    let response = globex_session.get(&format!("/ui/api/audits?customer_id={}", acme.id.0)).await;
    assert_refused(&response, 400, "invalid_argument", "globex listing acme's audits");
    let response = globex_session.post(&format!("{path}/repair"), "").await;
    assert_refused(&response, 404, "not_found", "globex repairing acme's audit");
    assert_eq!(admin_session.job_ids("?type=audit").await, [job_id], "no repair job was queued");
}

#[tokio::test]
async fn failed_logins_are_throttled_by_the_apis_throttle() {
    let (env, process) = start(false).await;
    let port = process.http_port();
    let token = made_up_token();
    let most = THROTTLE_BURST + 10;
    let mut throttled_at = None;
    for attempt in 1..=most {
        let response = log_in(port, &token, &[]).await;
        assert!(
            response.headers_named("set-cookie").is_empty(),
            "attempt {attempt} set a cookie: {response:?}"
        );
        match response.status {
            401 => {}
            429 => {
                throttled_at = Some(attempt);
                break;
            }
            _ => panic!("attempt {attempt}: neither 401 nor 429: {response:?}"),
        }
    }
    let attempt = throttled_at.unwrap_or_else(|| panic!("no 429 after {most} failed logins"));
    assert!(attempt > THROTTLE_BURST, "throttled at attempt {attempt}, before the burst of {THROTTLE_BURST}");

    // The same throttle as the gRPC API's: a bad token from this address
    // is throttled there within a few attempts (a throttle of its own
    // would allow a whole burst first).
    let mut stranger = env.customer_at("acme", &process.grpc_url()).await;
    stranger.token = made_up_token();
    let mut codes = Vec::new();
    for _ in 0..3 {
        let answer = stranger.jobs().list_jobs(ListJobsRequest::default()).await;
        codes.push(answer.map(drop).map_err(|s| s.code()));
        if codes.last() == Some(&Err(Code::ResourceExhausted)) {
            break;
        }
    }
    assert_eq!(
        codes.last(),
        Some(&Err(Code::ResourceExhausted)),
        "gRPC answers after the console's 429: {codes:?}"
    );
}
