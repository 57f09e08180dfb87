//! Sign-in. A person logs in with an API token, checked as the API checks
//! one (`Calls::check_token`: the same refusals and throttle); the console
//! then keeps a session in Postgres (`console_sessions`) under the SHA-256
//! of a random id that only the cookie holds. The cookie is `HttpOnly` (no
//! script reads it), `SameSite=Strict` (no other site's page sends it),
//! scoped to `/ui`, `Secure` over TLS, and expires with the session.
//! Revoking the token ends its sessions: every lookup joins the token.
//!
//! A state-changing request must also carry the session's CSRF token in
//! `X-CSRF-Token`, and an `Origin`, when the browser sends one, naming this
//! host: two locks where `SameSite` is one, for browsers that lack it.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::header::{COOKIE, HOST, LOCATION, ORIGIN, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form, Json};
use chrono::{DateTime, Utc};
use rand::RngCore;
use scorekeeper_store::tenants::Principal;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::Console;
use crate::assets;
use crate::error::{ConsoleError, ConsoleResult, http_status};

/// The session cookie's name.
pub const COOKIE_NAME: &str = "sk_console";
/// The header a state-changing request carries the CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The session of a request; extracting it refuses a request without a
/// live one (401).
pub struct Session {
    pub principal: Principal,
    csrf: String,
    expires_at: DateTime<Utc>,
    id_hash: Vec<u8>,
}

fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn hash(id: &str) -> Vec<u8> {
    Sha256::digest(id.as_bytes()).to_vec()
}

/// The session id the request's cookies carry.
fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value)
}

impl FromRequestParts<Console> for Session {
    type Rejection = ConsoleError;

    async fn from_request_parts(parts: &mut Parts, console: &Console) -> ConsoleResult<Session> {
        let Some(id) = cookie(&parts.headers) else { return Err(ConsoleError::unauthenticated()) };
        let id_hash = hash(id);
        let found = console
            .calls
            .store()
            .console_session(&id_hash)
            .await
            .map_err(|e| ConsoleError::from(scorekeeper_api::error::ApiError::from(e)))?;
        let session = found.ok_or_else(ConsoleError::unauthenticated)?;
        Ok(Session {
            principal: session.principal,
            csrf: session.csrf,
            expires_at: session.expires_at,
            id_hash,
        })
    }
}

/// The session of a page request, if any (a page without one redirects).
pub async fn of_page(parts: &mut Parts, console: &Console) -> Option<Session> {
    Session::from_request_parts(parts, console).await.ok()
}

impl Session {
    /// Refuses a state-changing request that lacks the CSRF token or comes
    /// from another origin.
    pub fn check_post(&self, headers: &HeaderMap) -> ConsoleResult<()> {
        same_origin(headers)?;
        let sent = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
        // Compared in constant time: the token is a secret of the page.
        let equal = sent.len() == self.csrf.len()
            && sent.bytes().zip(self.csrf.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
        if !equal {
            return Err(ConsoleError::forbidden("missing or wrong X-CSRF-Token: reload the page"));
        }
        Ok(())
    }
}

/// Refuses a request whose `Origin` (when the browser sends one) is not
/// this host.
fn same_origin(headers: &HeaderMap) -> ConsoleResult<()> {
    let Some(origin) = headers.get(ORIGIN) else { return Ok(()) };
    let host = headers.get(HOST).and_then(|h| h.to_str().ok());
    let origin_host =
        origin.to_str().ok().and_then(|o| o.strip_prefix("https://").or_else(|| o.strip_prefix("http://")));
    match (origin_host, host) {
        (Some(o), Some(h)) if o.eq_ignore_ascii_case(h) => Ok(()),
        _ => Err(ConsoleError::forbidden("a request from another origin")),
    }
}

#[derive(Deserialize)]
pub struct LoginForm {
    token: String,
}

fn set_cookie(value: &str, max_age: u64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE_NAME}={value}; HttpOnly; SameSite=Strict; Path=/ui; Max-Age={max_age}{secure}"
    ))
    .expect("hex and fixed text make a valid header")
}

/// `POST /ui/login`: checks the token and starts a session, or answers the
/// login page again with why (and the status the API would answer).
pub async fn log_in(
    State(console): State<Console>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    if let Err(refused) = same_origin(&headers) {
        return refused.into_response();
    }
    let peer = peer.map(|Extension(ConnectInfo(addr))| addr.ip());
    let started = async {
        let (token_id, _) = console.calls.check_token(&form.token, peer).await?;
        let id = random_hex();
        let store = console.calls.store();
        store
            .start_console_session(token_id, &hash(&id), &random_hex(), console.session_lifetime)
            .await
            .map_err(scorekeeper_api::error::ApiError::from)?;
        Ok::<_, ConsoleError>(id)
    };
    match started.await {
        Ok(id) => {
            let cookie = set_cookie(&id, console.session_lifetime.as_secs(), console.tls);
            (StatusCode::SEE_OTHER, [(SET_COOKIE, cookie), (LOCATION, HeaderValue::from_static("/ui"))])
                .into_response()
        }
        Err(error) => {
            let (status, _) = http_status(error.code);
            let message = match error.code {
                tonic::Code::Unauthenticated => {
                    "That token was refused: unknown, revoked or mistyped.".to_owned()
                }
                _ => error.message,
            };
            (status, assets::login_html(&message)).into_response()
        }
    }
}

/// `POST /ui/logout`: ends the session and clears its cookie.
pub async fn log_out(State(console): State<Console>, session: Session, headers: HeaderMap) -> Response {
    if let Err(refused) = session.check_post(&headers) {
        return refused.into_response();
    }
    if let Err(error) = console.calls.store().end_console_session(&session.id_hash).await {
        return ConsoleError::from(scorekeeper_api::error::ApiError::from(error)).into_response();
    }
    (StatusCode::NO_CONTENT, [(SET_COOKIE, set_cookie("", 0, console.tls))]).into_response()
}

#[derive(Serialize)]
pub struct SessionView {
    admin: bool,
    customer_id: i64,
    csrf: String,
    expires_at: DateTime<Utc>,
}

/// `GET /ui/api/session`: who the session acts for, and its CSRF token.
pub async fn describe(session: Session) -> Json<SessionView> {
    Json(SessionView {
        admin: session.principal.is_admin,
        customer_id: session.principal.customer_id.0,
        csrf: session.csrf,
        expires_at: session.expires_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn the_session_cookie_is_found_among_others_and_only_by_its_exact_name() {
        let h = headers(&[("cookie", "a=1; sk_console_x=no; sk_console=abc; b=2")]);
        assert_eq!(cookie(&h), Some("abc"));
        let h = headers(&[("cookie", "a=1"), ("cookie", "sk_console=def")]);
        assert_eq!(cookie(&h), Some("def"));
        assert_eq!(cookie(&headers(&[("cookie", "sk_consolex=1")])), None);
        assert_eq!(cookie(&HeaderMap::new()), None);
    }

    #[test]
    fn a_post_must_come_from_this_host_when_the_browser_says_where_from() {
        let host = ("host", "127.0.0.1:9464");
        assert!(same_origin(&headers(&[host])).is_ok(), "no Origin: a client that is not a browser");
        assert!(same_origin(&headers(&[host, ("origin", "http://127.0.0.1:9464")])).is_ok());
        assert!(same_origin(&headers(&[host, ("origin", "https://127.0.0.1:9464")])).is_ok());
        for other in ["http://evil.example", "http://127.0.0.1:9465", "null", "127.0.0.1:9464"] {
            let refused = same_origin(&headers(&[host, ("origin", other)])).unwrap_err();
            assert_eq!(refused.code, tonic::Code::PermissionDenied, "{other}");
        }
        assert!(same_origin(&headers(&[("origin", "http://127.0.0.1:9464")])).is_err(), "no Host to compare");
    }

    #[test]
    fn the_csrf_token_must_match_exactly() {
        let session = Session {
            principal: Principal { customer_id: scorekeeper_domain::CustomerId(1), is_admin: false },
            csrf: "abc123".into(),
            expires_at: Utc::now(),
            id_hash: Vec::new(),
        };
        assert!(session.check_post(&headers(&[(CSRF_HEADER, "abc123")])).is_ok());
        for wrong in ["abc124", "abc12", "abc1234", ""] {
            assert!(session.check_post(&headers(&[(CSRF_HEADER, wrong)])).is_err(), "{wrong:?}");
        }
        assert!(session.check_post(&HeaderMap::new()).is_err());
    }

    #[test]
    fn the_cookie_is_http_only_strict_scoped_and_secure_over_tls() {
        let plain = set_cookie("ab", 60, false);
        assert_eq!(plain, "sk_console=ab; HttpOnly; SameSite=Strict; Path=/ui; Max-Age=60");
        assert!(set_cookie("ab", 60, true).to_str().unwrap().ends_with("; Secure"));
    }
}
