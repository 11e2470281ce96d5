//! The status page (`/ui`) in a real headless browser: Debian's `chromium`, driven through
//! `chromedriver` (both installed by `scripts/setup`) with the `fantoccini` WebDriver client,
//! against a real server whose only agent is an executor, so a proving session stays at
//! `ProveSegments: 0/1` until the page cancels it.
//!
//! With `TIFFIN_UI_SCREENSHOT=<path>` the test also saves a screenshot of the page, with two
//! tenants' jobs, the agent and a failure on it, to that path (`scripts/ui-screenshot` makes
//! `docs/status-page.png` this way).

mod common;

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bonsai_sdk::non_blocking::{Client, SessionId};
use common::{ADMIN_KEY, Agents, TestServer, start, wait, wait_state};
use fantoccini::{ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use tiffin_guests::{ECHO, PANIC};

/// How long the page may take to show a change (it refreshes every second).
const SHOWN_WITHIN: Duration = Duration::from_secs(10);

/// A `chromedriver` on a free port with a headless Chromium session. Dropped, it asks
/// chromedriver to shut down (which quits the browsers it started, also when the test failed
/// with the session open), then ends chromedriver itself if it is still there.
struct Browser {
    driver: Child,
    port: u16,
    client: fantoccini::Client,
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

impl Browser {
    async fn start() -> Self {
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver not found: scripts/setup installs it (Debian chromium-driver)");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while reqwest::get(format!("{url}/status")).await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not answer on {url}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({ "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                             "--disable-dev-shm-usage", "--window-size=1280,900"] }),
        );
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&url)
            .await
            .expect("a headless Chromium session (scripts/setup installs chromium)");
        Browser { driver, port, client }
    }

    /// The text of the first element `selector` matches, if one does.
    async fn text(&self, selector: &str) -> Option<String> {
        let script = "const e = document.querySelector(arguments[0]); \
                      return e ? e.textContent : null;";
        match self.client.execute(script, vec![json!(selector)]).await.unwrap() {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// Waits until the text of `selector` satisfies `want`; returns it.
    async fn until(&self, selector: &str, want: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + SHOWN_WITHIN;
        loop {
            let text = self.text(selector).await;
            if let Some(t) = text.as_deref().filter(|t| want(t)) {
                return t.to_string();
            }
            assert!(Instant::now() < deadline, "{selector} shows {text:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn click(&self, selector: &str) {
        self.client.find(Locator::Css(selector)).await.unwrap().click().await.unwrap();
    }

    async fn type_into(&self, selector: &str, text: &str) {
        let field = self.client.find(Locator::Css(selector)).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    async fn close(self) {
        self.client.clone().close().await.unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // chromedriver's own shutdown quits every session's browser; a plain request, as the
        // runtime may be gone.
        if let Ok(mut conn) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
            let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
            let request = "GET /shutdown HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
            if conn.write_all(request.as_bytes()).is_ok() {
                let _ = conn.read_to_end(&mut Vec::new());
            }
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(self.driver.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// A proving session of echo (stays at `ProveSegments: 0/1`: no prover runs here).
async fn proving(client: &Client) -> SessionId {
    client.upload_img(&ECHO.image_id_hex(), ECHO.program.to_vec()).await.unwrap();
    let input = client.upload_input(b"status page".to_vec()).await.unwrap();
    let session = client.create_session(ECHO.image_id_hex(), input, vec![], false).await.unwrap();
    wait_state(client, &session, "ProveSegments: 0/1").await;
    session
}

/// An execute-only session whose guest panics: a failure with its error code.
async fn failing(client: &Client) -> SessionId {
    client.upload_img(&PANIC.image_id_hex(), PANIC.program.to_vec()).await.unwrap();
    let input = client.upload_input(b"boom".to_vec()).await.unwrap();
    let session = client.create_session(PANIC.image_id_hex(), input, vec![], true).await.unwrap();
    assert_eq!(wait(client, &session, Duration::from_secs(60)).await.0.status, "FAILED");
    session
}

fn row(id: &str) -> String {
    format!("#jobs tr[data-key='{id}']")
}

/// Extra jobs for the screenshot: another tenant's running session and a failure.
async fn screenshot(s: &TestServer, b: &Browser, path: &str) {
    let bob = s.client(&s.tenant("bob", json!({})).await);
    let running = proving(&bob).await;
    let failed = failing(&bob).await;
    b.until(&format!("{} td.stage", row(&running.uuid)), |t| t.starts_with("ProveSegments")).await;
    b.until(&format!("#failures tr[data-key='{}'] td.code", failed.uuid), |t| !t.is_empty()).await;
    std::fs::write(path, b.client.screenshot().await.unwrap()).unwrap();
}

/// The page asks for the admin key (a wrong one is refused), then shows a proving session
/// advance to `ProveSegments: 0/1` with its tenant's name, the executor agent and the queue
/// the session waits in; its cancel button ends the session (ABORTED for the Bonsai client).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn status_page_shows_a_job_advance_and_cancels_it() {
    let s = start(Agents::ExecOnly, |_| {}).await;
    let client = s.client(&s.tenant("alice", json!({})).await);
    let b = Browser::start().await;

    b.client.goto(&format!("{}/ui", s.url)).await.unwrap();
    b.type_into("#admin-key", "not-the-admin-key").await;
    b.click("#login-submit").await;
    let refused = b.until("#login-error", |t| !t.is_empty()).await;
    assert!(refused.contains("refused") && refused.contains("TIFFIN-API-003"), "{refused}");
    b.type_into("#admin-key", ADMIN_KEY).await;
    b.click("#login-submit").await;
    b.until("#agents tbody td.kinds", |t| t.contains("exec")).await;
    assert_eq!(b.text("#agents tbody td.alive").await.as_deref(), Some("alive"));

    let session = proving(&client).await;
    let job = row(&session.uuid);
    b.until(&format!("{job} td.stage"), |t| t == "ProveSegments: 0/1").await;
    let tenant = b.text(&format!("{job} td.tenant")).await;
    assert_eq!(tenant.as_deref(), Some("alice"), "the tenant's name, not its id");
    assert_eq!(b.text(&format!("{job} td.segments")).await.as_deref(), Some("0/1"));
    assert_eq!(b.text(&format!("{job} td.status")).await.as_deref(), Some("RUNNING"));
    b.until("#queues tbody tr[data-key='alice/prove'] td.ready", |t| t == "1").await;

    if let Ok(path) = std::env::var("TIFFIN_UI_SCREENSHOT") {
        screenshot(&s, &b, &path).await;
    }

    b.click(&format!("{job} button.cancel")).await;
    b.client.accept_alert().await.unwrap();
    b.until(&format!("{job} td.status"), |t| t == "ABORTED").await;
    assert_eq!(b.text(&format!("{job} td.stage")).await.as_deref(), Some(""));
    assert!(b.text(&format!("{job} button.cancel")).await.is_none(), "no cancel once ended");
    assert_eq!(session.status(&client).await.unwrap().status, "ABORTED");

    b.close().await;
    s.shutdown().await;
}
