//! The status page (`/ui`): one HTML page, its script and its style sheet, compiled into the
//! binary (no CDN, no external fonts or scripts). The files need no key; the script asks the
//! operator for the admin key, keeps it in the tab's `sessionStorage`, and reads everything
//! from admin routes with it: `GET /admin/overview` every second ([`crate::overview`]),
//! `POST /admin/jobs/{id}/cancel|retry` for the buttons.

use axum::Router;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// The page.
pub const INDEX_HTML: &str = include_str!("../ui/index.html");
/// Its script.
pub const APP_JS: &str = include_str!("../ui/app.js");
/// Its style sheet.
pub const STYLE_CSS: &str = include_str!("../ui/style.css");

/// What the page may load and do: only its own files and requests to this origin; no other
/// site may frame it (its buttons cancel jobs).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// The status page's routes (they read no state).
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/ui", get(|| async { file("text/html; charset=utf-8", INDEX_HTML) }))
        .route("/ui/app.js", get(|| async { file("text/javascript; charset=utf-8", APP_JS) }))
        .route("/ui/style.css", get(|| async { file("text/css; charset=utf-8", STYLE_CSS) }))
}

/// One of the page's files, never cached (a new binary serves new files at once).
fn file(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    use super::*;

    async fn get(path: &str) -> (StatusCode, String, String) {
        let res =
            routes::<()>().oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
        let status = res.status();
        let kind = res.headers().get(header::CONTENT_TYPE).map_or("", |v| v.to_str().unwrap());
        let kind = kind.to_string();
        let body = axum::body::to_bytes(res.into_body(), 1 << 20).await.unwrap();
        (status, kind, String::from_utf8(body.to_vec()).unwrap())
    }

    /// The values of `attr="…"` in the page.
    fn attributes<'a>(html: &'a str, attr: &str) -> Vec<&'a str> {
        let open = format!("{attr}=\"");
        html.split(open.as_str()).skip(1).filter_map(|rest| rest.split('"').next()).collect()
    }

    #[tokio::test]
    async fn the_page_loads_only_its_own_files_and_each_is_served() {
        let (status, kind, html) = get("/ui").await;
        assert_eq!((status, kind.as_str()), (StatusCode::OK, "text/html; charset=utf-8"));
        let linked: Vec<&str> =
            attributes(&html, "src").into_iter().chain(attributes(&html, "href")).collect();
        assert!(linked.contains(&"ui/app.js") && linked.contains(&"ui/style.css"), "{linked:?}");
        for link in linked {
            assert!(!link.contains("//") && !link.contains(':'), "external: {link}");
            let (status, kind, body) = get(&format!("/{link}")).await;
            assert_eq!(status, StatusCode::OK, "{link}");
            assert!(!body.is_empty(), "{link}");
            let want = if link.ends_with(".js") { "text/javascript" } else { "text/css" };
            assert!(kind.starts_with(want), "{link}: {kind}");
        }
        // The script reaches only this origin's admin routes.
        for call in APP_JS.split("http").skip(1) {
            assert!(!call.starts_with("://") && !call.starts_with("s://"), "absolute URL");
        }
        assert_eq!(get("/ui/other.js").await.0, StatusCode::NOT_FOUND);
    }
}
