//! The status page (`/`): HTML, script and stylesheet compiled into the
//! binary, under a strict content security policy.

use axum::extract::Extension;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::middleware::routing::OriginalPath;

/// script or style, no framing, no form posts.
/// The page's policy: nothing from anywhere but the gateway, no inline
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut res = ([(header::CONTENT_TYPE, content_type)], body).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    res
}

/// `GET /`: the status page. Under a route prefix sent without its
/// trailing `/`, a redirect to it first: the page's links are relative.
pub async fn page(original: Option<Extension<OriginalPath>>) -> Response {
    if let Some(Extension(OriginalPath(path))) = original
        && !path.ends_with('/')
    {
        let to = format!("{path}/");
        if let Ok(location) = HeaderValue::from_str(&to) {
            return (
                StatusCode::PERMANENT_REDIRECT,
                [(header::LOCATION, location)],
            )
                .into_response();
        }
    }
    asset("text/html; charset=utf-8", include_str!("web/index.html"))
}

/// `GET /static/app.js`.
pub async fn script() -> Response {
    asset("text/javascript; charset=utf-8", include_str!("web/app.js"))
}

/// `GET /static/app.css`.
pub async fn style() -> Response {
    asset("text/css; charset=utf-8", include_str!("web/app.css"))
}

/// `GET /static/favicon.svg`: the page's icon (browsers ask for one).
pub async fn icon() -> Response {
    asset("image/svg+xml", include_str!("web/favicon.svg"))
}
