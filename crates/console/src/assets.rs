//! The pages and their files, embedded in the binary. Only the login page
//! is served without a session.

use axum::extract::{FromRequestParts, Path, Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};

use crate::Console;
use crate::error::ConsoleError;
use crate::session::{self, Session};

const LOGIN: &str = include_str!("../assets/login.html");
const INDEX: &str = include_str!("../assets/index.html");
const APP_JS: &str = include_str!("../assets/app.js");
const APP_CSS: &str = include_str!("../assets/app.css");

/// Scripts and styles from this origin only (the login page's style is
/// inline); no framing by other sites.
const POLICY: &str = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
                      frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

fn headers(content_type: &'static str) -> [(HeaderName, HeaderValue); 4] {
    [
        (CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY)),
        (CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (HeaderName::from_static("x-content-type-options"), HeaderValue::from_static("nosniff")),
    ]
}

/// The login page with `message` (escaped) where a refusal is said.
pub fn login_html(message: &str) -> Response {
    let escaped = message
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;");
    (headers("text/html; charset=utf-8"), Html(LOGIN.replace("{{message}}", &escaped))).into_response()
}

/// `GET /ui/login`.
pub async fn login_page() -> Response {
    login_html("")
}

/// `GET /ui`: the app to a session, the login page's address to anyone else.
pub async fn app_page(State(console): State<Console>, request: Request) -> Response {
    let (mut parts, _) = request.into_parts();
    match session::of_page(&mut parts, &console).await {
        Some(_) => (headers("text/html; charset=utf-8"), INDEX).into_response(),
        None => (StatusCode::SEE_OTHER, [(LOCATION, HeaderValue::from_static("/ui/login"))]).into_response(),
    }
}

/// `GET /ui/assets/<file>`, to a session only.
pub async fn asset(State(console): State<Console>, Path(file): Path<String>, request: Request) -> Response {
    let (mut parts, _) = request.into_parts();
    if let Err(refused) = Session::from_request_parts(&mut parts, &console).await {
        return refused.into_response();
    }
    match file.as_str() {
        "app.js" => (headers("text/javascript; charset=utf-8"), APP_JS).into_response(),
        "app.css" => (headers("text/css; charset=utf-8"), APP_CSS).into_response(),
        _ => ConsoleError { code: tonic::Code::NotFound, message: format!("no file {file}") }.into_response(),
    }
}
