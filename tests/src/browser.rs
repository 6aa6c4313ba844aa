//! A real headless Chromium for the portal's tests, driven over W3C WebDriver: ChromeDriver
//! (Debian's `chromium-driver`, which `scripts/test.sh` installs) started on a free port, spoken
//! to with plain HTTP and JSON. The few commands the tests need do not justify a client crate.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

/// The key W3C WebDriver names element references with.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// One browser session; ChromeDriver and Chromium stop when it is dropped.
pub struct Browser {
    http: reqwest::Client,
    /// `http://127.0.0.1:<port>/session/<id>`.
    session: String,
    _driver: Child,
}

/// An element of the current page.
#[derive(Clone, Debug)]
pub struct Element(String);

impl Element {
    /// The element as a script argument (`arguments[i]` in [`Browser::execute`]).
    pub fn reference(&self) -> Value {
        json!({ ELEMENT: self.0 })
    }
}

/// Where ChromeDriver is: `SYNAP_CHROMEDRIVER`, else Debian's path.
fn driver_path() -> PathBuf {
    std::env::var_os("SYNAP_CHROMEDRIVER")
        .map_or_else(|| PathBuf::from("/usr/bin/chromedriver"), PathBuf::from)
}

impl Browser {
    /// Starts ChromeDriver and a headless Chromium (`--no-sandbox`: the tests may run as root,
    /// where Chromium's sandbox refuses to start).
    pub async fn start() -> Browser {
        let path = driver_path();
        assert!(
            path.exists(),
            "{} is missing: install chromium and chromium-driver (scripts/test.sh does)",
            path.display()
        );
        let port = crate::stack::free_ports(1)[0];
        let driver = Command::new(&path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while http.get(format!("{base}/status")).send().await.is_err() {
            assert!(tokio::time::Instant::now() < deadline, "chromedriver not up within 20 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let binary = std::env::var("SYNAP_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": binary,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,1000", "--lang=en-GB"],
            },
        }}});
        let created: Value = http
            .post(format!("{base}/session"))
            .json(&capabilities)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("chromedriver did not start a session: {created}"))
            .to_owned();
        Browser { http, session: format!("{base}/session/{id}"), _driver: driver }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value, String> {
        let mut request = self.http.request(method, format!("{}{path}", self.session));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| e.to_string())?;
        let ok = response.status().is_success();
        let value: Value = response.json().await.map_err(|e| e.to_string())?;
        if ok { Ok(value["value"].clone()) } else { Err(value["value"].to_string()) }
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value, String> {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn get(&self, path: &str) -> Result<Value, String> {
        self.call(reqwest::Method::GET, path, None).await
    }

    pub async fn goto(&self, url: &str) {
        self.post("/url", json!({"url": url})).await.unwrap();
    }

    pub async fn url(&self) -> String {
        self.get("/url").await.unwrap().as_str().unwrap_or_default().to_owned()
    }

    /// The first element matching a CSS selector, if any, now.
    pub async fn find(&self, css: &str) -> Option<Element> {
        let found = self.post("/element", json!({"using": "css selector", "value": css})).await.ok()?;
        found[ELEMENT].as_str().map(|id| Element(id.to_owned()))
    }

    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        let found =
            self.post("/elements", json!({"using": "css selector", "value": css})).await.unwrap_or_default();
        found
            .as_array()
            .map(|a| a.iter().filter_map(|e| e[ELEMENT].as_str().map(|id| Element(id.to_owned()))).collect())
            .unwrap_or_default()
    }

    /// Waits up to `timeout` for an element matching `css`.
    pub async fn wait_for(&self, css: &str, timeout: Duration) -> Element {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(element) = self.find(css).await {
                return element;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no {css} within {timeout:?} at {}; page text: {}",
                self.url().await,
                self.page_text().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn click(&self, element: &Element) {
        self.post(&format!("/element/{}/click", element.0), json!({})).await.unwrap();
    }

    /// Types `text` into an input (after what it holds).
    pub async fn type_into(&self, element: &Element, text: &str) {
        self.post(&format!("/element/{}/value", element.0), json!({"text": text})).await.unwrap();
    }

    pub async fn clear(&self, element: &Element) {
        self.post(&format!("/element/{}/clear", element.0), json!({})).await.unwrap();
    }

    pub async fn text(&self, element: &Element) -> String {
        self.get(&format!("/element/{}/text", element.0))
            .await
            .unwrap_or_default()
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub async fn attribute(&self, element: &Element, name: &str) -> Option<String> {
        self.get(&format!("/element/{}/attribute/{name}", element.0)).await.ok()?.as_str().map(str::to_owned)
    }

    /// The visible text of the whole page.
    pub async fn page_text(&self) -> String {
        match self.find("body").await {
            Some(body) => self.text(&body).await,
            None => String::new(),
        }
    }

    /// Runs a script in the page and returns its result.
    pub async fn execute(&self, script: &str, args: Value) -> Value {
        self.post("/execute/sync", json!({"script": script, "args": args})).await.unwrap()
    }

    /// Resizes the window (CSS pixels), e.g. to a phone's.
    pub async fn set_window(&self, width: u32, height: u32) {
        self.post("/window/rect", json!({"width": width, "height": height})).await.unwrap();
    }

    /// Moves into an iframe of the page; `None`: back to the top-level page.
    pub async fn switch_to_frame(&self, frame: Option<&Element>) {
        let id = frame.map_or(Value::Null, Element::reference);
        self.post("/frame", json!({"id": id})).await.unwrap();
    }

    /// Accepts a `confirm()` dialog.
    pub async fn accept_dialog(&self) {
        self.post("/alert/accept", json!({})).await.unwrap();
    }

    /// The cookies the page's origin has, as WebDriver reports them (name, httpOnly, sameSite, …).
    pub async fn cookies(&self) -> Vec<Value> {
        self.get("/cookie").await.unwrap().as_array().cloned().unwrap_or_default()
    }

    /// Saves a PNG of the window.
    pub async fn screenshot(&self, path: &Path) {
        let data = self.get("/screenshot").await.unwrap();
        let png = base64::engine::general_purpose::STANDARD.decode(data.as_str().unwrap()).unwrap();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, png).unwrap();
    }
}

impl Drop for Browser {
    /// Ends the session (Chromium exits); ChromeDriver is killed with the child handle.
    fn drop(&mut self) {
        let (http, session) = (self.http.clone(), self.session.clone());
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async { http.delete(session).send().await.ok() });
        })
        .join();
    }
}

/// `target/portal-screenshots/`, where the portal's browser tests leave what they saw.
pub fn screenshot_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test binary>
    let target = exe.ancestors().nth(3).expect("target dir");
    target.join("portal-screenshots")
}
