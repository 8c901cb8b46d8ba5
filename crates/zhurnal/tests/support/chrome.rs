//! Headless Chromium through chromedriver (Debian `chromium` + `chromium-driver`), driven with
//! fantoccini. `cargo xtask ci` sets `ZHURNAL_CHROMEDRIVER`/`ZHURNAL_CHROMIUM` and
//! `ZHURNAL_REQUIRE_BROWSER=1`; elsewhere browser tests skip with a note when they are unset.

use std::process::Stdio;
use std::time::Duration;

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::{Client, ClientBuilder, Locator};
use tokio::process::{Child, Command};

pub struct Chrome {
    pub client: Client,
    /// chromedriver's own address, for the Chromium extensions fantoccini has no call for.
    driver_url: String,
    _driver: Child,
}

impl Chrome {
    /// `None` when no chromedriver is configured and none is required.
    pub async fn start() -> Option<Chrome> {
        Self::start_with_width(1280).await
    }

    /// A window `width` CSS pixels wide (360 for a phone).
    pub async fn start_with_width(width: u32) -> Option<Chrome> {
        let (driver, chromium) = match (
            std::env::var("ZHURNAL_CHROMEDRIVER"),
            std::env::var("ZHURNAL_CHROMIUM"),
        ) {
            (Ok(d), Ok(c)) => (d, c),
            _ if std::env::var("ZHURNAL_REQUIRE_BROWSER").as_deref() == Ok("1") => {
                panic!(
                    "ZHURNAL_REQUIRE_BROWSER=1 but ZHURNAL_CHROMEDRIVER/ZHURNAL_CHROMIUM are unset"
                )
            }
            _ => {
                eprintln!(
                    "skipping browser test: set ZHURNAL_CHROMEDRIVER and ZHURNAL_CHROMIUM (cargo xtask ci does)"
                );
                return None;
            }
        };
        let port = free_port();
        let mut driver = Command::new(driver)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        let caps = serde_json::json!({
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                    "--lang=ru-RU", format!("--window-size={width},900"),
                ],
            }
        });
        let caps = match caps {
            serde_json::Value::Object(m) => m,
            _ => unreachable!("a JSON object literal"),
        };
        let url = format!("http://127.0.0.1:{port}");
        let mut last_error = String::new();
        for _ in 0..100 {
            match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(client) => return Some(Chrome { client, driver_url: url, _driver: driver }),
                Err(e) => last_error = e.to_string(),
            }
            if let Ok(Some(status)) = driver.try_wait() {
                panic!("chromedriver exited: {status}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("chromedriver did not accept a session: {last_error}");
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("navigate");
    }

    pub async fn text(&self) -> String {
        self.client.find(Locator::Css("body")).await.expect("body").text().await.expect("text")
    }

    pub async fn url(&self) -> String {
        self.client.current_url().await.expect("url").to_string()
    }

    /// Waits up to 10 s for `css` to appear.
    pub async fn wait_for(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css} did not appear: {e}"))
    }

    pub async fn click(&self, css: &str) {
        self.wait_for(css).await.click().await.unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    pub async fn eval(&self, js: &str) -> serde_json::Value {
        self.client.execute(js, vec![]).await.expect("script")
    }

    /// Polls the script `js` until it returns `true` (10 s at most); `what` names the wait.
    pub async fn wait_until(&self, js: &str, what: &str) {
        self.wait_until_for(js, what, 10).await
    }

    /// [`Self::wait_until`] for up to `seconds` (for what the server itself takes long to do,
    /// like a whole school's import in a debug build on a loaded machine).
    pub async fn wait_until_for(&self, js: &str, what: &str, seconds: u64) {
        for _ in 0..seconds * 10 {
            if self.eval(js).await == serde_json::Value::Bool(true) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("timed out waiting for {what}");
    }

    /// Key presses to whatever has the focus, like a teacher's keyboard (WebDriver key codes
    /// such as `\u{E007}` for Enter included).
    pub async fn keys(&self, keys: &str) {
        let mut actions = KeyActions::new("keyboard".into());
        for value in keys.chars() {
            actions = actions.then(KeyAction::Down { value }).then(KeyAction::Up { value });
        }
        self.client.perform_actions(actions).await.unwrap_or_else(|e| panic!("keys {keys:?}: {e}"));
    }

    /// Cuts the browser off the network (or reconnects it): chromedriver's network conditions.
    pub async fn offline(&self, offline: bool) {
        let session = self.client.session_id().await.expect("session").expect("a session id");
        let res = reqwest::Client::new()
            .post(format!("{}/session/{session}/chromium/network_conditions", self.driver_url))
            .json(&serde_json::json!({ "network_conditions": {
                "offline": offline, "latency": 0,
                "download_throughput": 1_000_000, "upload_throughput": 1_000_000
            }}))
            .send()
            .await
            .expect("chromedriver answers");
        assert!(res.status().is_success(), "network conditions: {}", res.status());
    }

    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}
