//! `scorekeeper serve` with TLS (`SK_TLS_CERT`, `SK_TLS_KEY`), on a CA and
//! a server certificate generated here: gRPC and the HTTP port answer over
//! TLS only, to clients that trust the CA (the client crate, the CLI); a
//! plain-text client and one that trusts another CA are refused; a bearer
//! token never crosses the wire in clear; and a half-configured or
//! unusable setting stops start-up naming it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use scorekeeper_client::{Api, BearerToken, ClientTls, channel};
use scorekeeper_proto::coaching as pb;
use scorekeeper_tests::TestEnv;
use scorekeeper_tests::process::{ServeError, ServeProcess, cli, http_get, https_get, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const SCOREKEEPER: &str = env!("CARGO_BIN_EXE_scorekeeper");
const WITHIN: Duration = Duration::from_secs(30);
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// A CA and the PEM files of a server certificate it signed for
/// `localhost` and `127.0.0.1`, in a directory of this test's own.
struct Pki {
    ca_pem: String,
    dir: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

impl Pki {
    fn generate(name: &str) -> Pki {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, format!("scorekeeper test CA {name}"));
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let server_key = KeyPair::generate().unwrap();
        let server = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap()
            .signed_by(&server_key, &ca)
            .unwrap();
        let dir = std::env::temp_dir().join(format!("sk-tls-{name}-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        let (cert, key) = (dir.join("server.pem"), dir.join("server-key.pem"));
        std::fs::write(&cert, server.pem()).unwrap();
        std::fs::write(&key, server_key.serialize_pem()).unwrap();
        let pki = Pki { ca_pem: ca.pem(), dir, cert, key };
        std::fs::write(pki.ca_path(), &pki.ca_pem).unwrap();
        pki
    }

    fn ca_path(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn start_tls_serve(env: &TestEnv, pki: &Pki) -> ServeProcess {
    serve(SCOREKEEPER, env)
        .tls(&pki.cert, &pki.key, pki.ca_pem.as_bytes())
        .start(WITHIN)
        .await
        .expect("scorekeeper serve with TLS becomes healthy over HTTPS")
}

fn template_request() -> pb::CreateScorecardTemplateRequest {
    pb::CreateScorecardTemplateRequest {
        name: "over tls".into(),
        template_type: pb::ScorecardTemplateType::Process as i32,
        criteria: vec![pb::Criterion { name: "c".into(), weight: 1.0, max_value: 5.0, ..Default::default() }],
    }
}

#[tokio::test]
async fn tls_serve_answers_trusting_clients_only() {
    let env = TestEnv::start().await;
    let pki = Pki::generate("serve");
    let child = start_tls_serve(&env, &pki).await;
    let url = child.grpc_url();
    assert!(url.starts_with("https://"), "{url}");
    let customer = env.customer("acme").await;
    let bearer = || BearerToken::new(&customer.token).unwrap();

    // A client trusting the CA: a template written and read back.
    let trusting = ClientTls::ca_pem(&pki.ca_pem);
    let api = Api::new(channel::connect_with(&url, &trusting, CALL_TIMEOUT).await.unwrap(), bearer());
    let created = api
        .scorecards()
        .create_scorecard_template(template_request())
        .await
        .expect("a call over TLS")
        .into_inner()
        .template
        .unwrap();
    let read = api
        .scorecards()
        .get_scorecard_template(pb::GetScorecardTemplateRequest { id: created.id })
        .await
        .expect("a read over TLS")
        .into_inner()
        .template
        .unwrap();
    assert_eq!(read.name, "over tls");

    // Plain text to the gRPC port: refused.
    let plain_url = url.replacen("https://", "http://", 1);
    let plain = channel::lazy(&plain_url).unwrap();
    let refused = Api::new(plain, bearer()).scorecards().create_scorecard_template(template_request()).await;
    assert!(refused.is_err(), "a plain-text call to a TLS port must fail: {refused:?}");

    // A client that trusts another CA: the handshake fails.
    let stranger = Pki::generate("stranger");
    let untrusting = ClientTls::ca_pem(&stranger.ca_pem);
    let refused = channel::connect_with(&url, &untrusting, CALL_TIMEOUT).await;
    assert!(refused.is_err(), "a client not trusting the CA must not connect");
    // Nor one on the platform's roots, which do not hold a test CA.
    let refused = channel::connect_with(&url, &ClientTls::default(), CALL_TIMEOUT).await;
    assert!(refused.is_err(), "the platform's roots do not trust the test CA");

    // The HTTP port: over HTTPS only.
    let (code, health) = child.http_get("/health").await.expect("/health over HTTPS");
    assert_eq!(code, 200, "{health}");
    assert!(health.contains("postgres: ok"), "{health}");
    let (code, metrics) = child.http_get("/metrics").await.expect("/metrics over HTTPS");
    assert_eq!(code, 200);
    assert!(metrics.contains("scorekeeper_"), "{metrics}");
    for path in ["/health", "/metrics"] {
        let plain = http_get(child.http_port(), path).await;
        assert!(!matches!(plain, Some((200, _))), "{path} over plain HTTP must not answer: {plain:?}");
    }
    let untrusted = https_get(child.http_port(), "/health", stranger.ca_pem.as_bytes()).await;
    assert!(untrusted.is_none(), "HTTPS trusting another CA must fail: {untrusted:?}");
}

#[tokio::test]
async fn cli_reaches_a_tls_serve_with_its_ca() {
    let env = TestEnv::start().await;
    let pki = Pki::generate("cli");
    let child = start_tls_serve(&env, &pki).await;
    let customer = env.customer("acme").await;
    let (url, ca) = (child.grpc_url(), pki.ca_path());
    let ca = ca.to_str().unwrap();

    let args = ["jobs", "list", "--json", "--grpc-url", &url, "--token", &customer.token, "--tls-ca", ca];
    let listed = cli(SCOREKEEPER, &args, WITHIN).await;
    let stderr = String::from_utf8_lossy(&listed.stderr);
    assert!(listed.status.success(), "jobs list over TLS with --tls-ca; stderr:\n{stderr}");
    let jobs: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("a JSON list");
    assert_eq!(jobs, serde_json::json!([]));

    // Without the CA (the platform's roots): refused.
    let args = ["jobs", "list", "--json", "--grpc-url", &url, "--token", &customer.token];
    let refused = cli(SCOREKEEPER, &args, WITHIN).await;
    assert!(!refused.status.success(), "no --tls-ca: the test CA is not trusted");

    // A CA bundle with a plain URL is a mistake, not a silent plain call.
    let plain_url = url.replacen("https://", "http://", 1);
    let args = ["jobs", "list", "--grpc-url", &plain_url, "--token", &customer.token, "--tls-ca", ca];
    let refused = cli(SCOREKEEPER, &args, WITHIN).await;
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(stderr.contains("--tls-ca"), "the error names the setting: {stderr}");
}

/// A TCP proxy that records what clients send through it.
async fn recording_proxy(upstream: u16) -> (u16, Arc<Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let sent = Arc::new(Mutex::new(Vec::new()));
    let recorded = Arc::clone(&sent);
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await else { continue };
            let (mut client_read, mut client_write) = client.into_split();
            let (mut server_read, mut server_write) = server.into_split();
            let recorded = Arc::clone(&recorded);
            tokio::spawn(async move {
                let mut buffer = [0u8; 16 * 1024];
                while let Ok(n @ 1..) = client_read.read(&mut buffer).await {
                    recorded.lock().unwrap().extend_from_slice(&buffer[..n]);
                    if server_write.write_all(&buffer[..n]).await.is_err() {
                        break;
                    }
                }
            });
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
            });
        }
    });
    (port, sent)
}

#[tokio::test]
async fn bearer_token_does_not_cross_the_wire_in_clear() {
    let env = TestEnv::start().await;
    let pki = Pki::generate("wire");
    let child = start_tls_serve(&env, &pki).await;
    let customer = env.customer("acme").await;
    let (port, sent) = recording_proxy(child.grpc_port()).await;

    let url = format!("https://127.0.0.1:{port}");
    let channel = channel::connect_with(&url, &ClientTls::ca_pem(&pki.ca_pem), CALL_TIMEOUT).await.unwrap();
    let api = Api::new(channel, BearerToken::new(&customer.token).unwrap());
    api.scorecards().create_scorecard_template(template_request()).await.expect("a call through the proxy");

    let sent = sent.lock().unwrap().clone();
    assert!(sent.len() > 300, "the call went through the proxy ({} bytes)", sent.len());
    // Every byte sent is inside a TLS record (HTTP/2 compresses headers, so
    // the token's absence alone would prove less).
    let mut rest = &sent[..];
    while let [kind, 3, _, high, low, after @ ..] = rest {
        assert!((0x14..=0x17).contains(kind), "a TLS record type, not {kind:#x}");
        let length = usize::from(*high) << 8 | usize::from(*low);
        assert!(after.len() >= length, "a whole record");
        rest = &after[length..];
    }
    assert!(rest.is_empty(), "{} bytes outside TLS records", rest.len());
    let token = customer.token.as_bytes();
    assert!(!sent.windows(token.len()).any(|w| w == token), "the token crossed the wire in clear");
    assert!(!sent.windows(6).any(|w| w == b"Bearer"), "the authorization header crossed in clear");
}

/// Runs `serve` with `env` set and expects it to stop at start, its log
/// naming `setting`.
async fn refused_at_start(env: &TestEnv, settings: &[(&str, &Path)], setting: &str) {
    let log = std::env::temp_dir().join(format!("sk-tls-start-{:016x}.log", rand::random::<u64>()));
    let mut launch = serve(SCOREKEEPER, env).log_file(&log);
    for (key, value) in settings {
        launch = launch.env(*key, value.display().to_string());
    }
    let mut child = launch.spawn().unwrap();
    let started = child.wait_healthy(WITHIN).await;
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    assert!(
        matches!(started, Err(ServeError::ExitedAtStart { .. })),
        "serve with {settings:?} must stop at start: {started:?}\n{text}"
    );
    assert!(text.contains(setting), "the error names {setting}: {text}");
}

#[tokio::test]
async fn half_or_unusable_tls_settings_stop_start_up() {
    let env = TestEnv::start().await;
    let pki = Pki::generate("start");
    refused_at_start(&env, &[("SK_TLS_CERT", &pki.cert)], "SK_TLS_KEY").await;
    refused_at_start(&env, &[("SK_TLS_KEY", &pki.key)], "SK_TLS_CERT").await;
    let missing = pki.dir.join("missing.pem");
    refused_at_start(&env, &[("SK_TLS_CERT", &missing), ("SK_TLS_KEY", &pki.key)], "SK_TLS_CERT").await;
    // The certificate where the key belongs: no PEM private key in it.
    refused_at_start(&env, &[("SK_TLS_CERT", &pki.cert), ("SK_TLS_KEY", &pki.cert)], "SK_TLS_KEY").await;
    // A key, but not the certificate's.
    let other = Pki::generate("other");
    refused_at_start(&env, &[("SK_TLS_CERT", &pki.cert), ("SK_TLS_KEY", &other.key)], "SK_TLS_KEY").await;
}
