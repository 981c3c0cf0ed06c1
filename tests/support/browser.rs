//! A real headless Chromium driven over the DevTools protocol, for testing
//! the leaderboard site as a reader sees it: pages load from `file://`,
//! scripts run, clicks and typing go through the page's own handlers.
//!
//! Chromium is found on the PATH (`chromium`, `chromium-browser`,
//! `google-chrome`) or at `$ASSAY_CHROMIUM`; `.ci/run` installs Debian's
//! `chromium`. Every dialog the page opens (an `alert` would be one) and
//! every uncaught exception is recorded, so a test can check that nothing
//! ran that should not have.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tungstenite::{Message, WebSocket};

/// The Chromium binary, or a panic saying how to get one.
pub fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("ASSAY_CHROMIUM") {
        return PathBuf::from(path);
    }
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if let Some(dir) = std::env::var_os("PATH")
            .iter()
            .flat_map(std::env::split_paths)
            .find(|d| d.join(name).is_file())
        {
            return dir.join(name);
        }
    }
    panic!("the site tests need Chromium: `apt-get install chromium`, or set ASSAY_CHROMIUM");
}

pub struct Browser {
    child: Child,
    socket: WebSocket<TcpStream>,
    next_id: u64,
    /// Dialogs opened and exceptions thrown by the page.
    pub incidents: Vec<Value>,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP GET to the DevTools endpoint (its body, by Content-Length: the
/// endpoint does not close the connection).
fn http_get(port: u16, path: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("DevTools port");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reader = BufReader::new(stream);
    let mut length = 0;
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap_or(0) > 0 {
        if line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        line.clear();
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap_or_default();
    String::from_utf8_lossy(&body).into_owned()
}

impl Browser {
    /// Starts Chromium on `about:blank` and attaches to its page.
    pub fn start() -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new(chromium())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--remote-debugging-port=0",
                "--window-size=1280,900",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start Chromium");
        // It prints "DevTools listening on ws://127.0.0.1:PORT/..." once ready.
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut port = None;
        let mut seen = String::new();
        let mut line = String::new();
        while port.is_none() && stderr.read_line(&mut line).unwrap_or(0) > 0 {
            if let Some(rest) = line
                .trim()
                .strip_prefix("DevTools listening on ws://127.0.0.1:")
            {
                port = rest.split('/').next().and_then(|p| p.parse::<u16>().ok());
            }
            seen.push_str(&line);
            line.clear();
        }
        let port = port.unwrap_or_else(|| panic!("Chromium did not start:\n{seen}"));
        // Drain the rest of its stderr so it never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = stderr.read_to_end(&mut sink);
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        let page_url = loop {
            let list: Value =
                serde_json::from_str(&http_get(port, "/json/list")).unwrap_or_default();
            let found = list.as_array().and_then(|targets| {
                targets
                    .iter()
                    .find(|t| t["type"] == "page")
                    .and_then(|t| t["webSocketDebuggerUrl"].as_str().map(str::to_string))
            });
            if let Some(url) = found {
                break url;
            }
            assert!(Instant::now() < deadline, "Chromium shows no page");
            std::thread::sleep(Duration::from_millis(100));
        };
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let (socket, _) = tungstenite::client(page_url.as_str(), stream).expect("DevTools socket");
        let mut browser = Browser {
            child,
            socket,
            next_id: 0,
            incidents: Vec::new(),
            _profile: profile,
        };
        browser.call("Page.enable", json!({}));
        browser.call("Runtime.enable", json!({}));
        browser
    }

    /// Sends one DevTools command and returns its result, recording the
    /// events that arrive meanwhile.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        self.try_call(method, params)
            .unwrap_or_else(|error| panic!("{method}: {error}"))
    }

    /// [`Browser::call`], with the command's error returned.
    fn try_call(&mut self, method: &str, params: Value) -> Result<Value, Value> {
        self.next_id += 1;
        let id = self.next_id;
        let message = json!({"id": id, "method": method, "params": params}).to_string();
        self.socket.send(Message::text(message)).unwrap();
        loop {
            let message = self.socket.read().expect("DevTools answer");
            let Ok(text) = message.to_text() else {
                continue;
            };
            let value: Value = serde_json::from_str(text).unwrap_or_default();
            if value["id"] == id {
                if let Some(error) = value.get("error") {
                    return Err(error.clone());
                }
                return Ok(value["result"].clone());
            }
            match value["method"].as_str() {
                Some("Page.javascriptDialogOpening") => {
                    self.incidents.push(value["params"].clone());
                    // Close it, or the page stays blocked.
                    let close = json!({"id": 0, "method": "Page.handleJavaScriptDialog", "params": {"accept": true}});
                    self.socket.send(Message::text(close.to_string())).unwrap();
                }
                Some("Runtime.exceptionThrown") => self.incidents.push(value["params"].clone()),
                _ => {}
            }
        }
    }

    /// Opens a file and waits until it has loaded and its scripts have run.
    pub fn open(&mut self, path: &Path) {
        let url = format!("file://{}", path.canonicalize().unwrap().display());
        self.call("Page.navigate", json!({"url": url}));
        // Until the new page has replaced the old one, the old one answers.
        self.wait_for(&format!(
            "decodeURI(location.href) === {} && document.readyState === 'complete'",
            json!(url)
        ));
    }

    /// Evaluates a script expression in the page (awaiting a promise) and
    /// returns its value.
    pub fn eval(&mut self, expression: &str) -> Value {
        let result = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
        );
        if let Some(e) = result.get("exceptionDetails") {
            panic!("{expression}: {e}");
        }
        result["result"]["value"].clone()
    }

    /// Waits until `condition` is true in the page. A page that navigates
    /// away while the condition is evaluated (its context is gone) is asked
    /// again.
    pub fn wait_for(&mut self, condition: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let expression = json!({
            "expression": format!("!!({condition})"),
            "returnByValue": true,
            "awaitPromise": true,
        });
        loop {
            match self.try_call("Runtime.evaluate", expression.clone()) {
                Ok(result) if result["result"]["value"] == json!(true) => break,
                Ok(result) if result.get("exceptionDetails").is_some() => {
                    panic!("{condition}: {}", result["exceptionDetails"])
                }
                Ok(_) => {}
                Err(error)
                    if error["message"]
                        .as_str()
                        .is_some_and(|m| m.contains("navigated")) => {}
                Err(error) => panic!("Runtime.evaluate: {error}"),
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {condition}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Clicks the first element matching `selector`, as a user would:
    /// a mouse press and release at its centre.
    pub fn click(&mut self, selector: &str) {
        let at = self.eval(&format!(
            "(() => {{ const el = document.querySelector({sel}); el.scrollIntoView({{block: 'center'}}); \
             const r = el.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; }})()",
            sel = json!(selector)
        ));
        let (x, y) = (at[0].as_f64().unwrap(), at[1].as_f64().unwrap());
        for kind in ["mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}),
            );
        }
    }

    /// Focuses an input and types `text` into it, key by key.
    pub fn type_into(&mut self, selector: &str, text: &str) {
        self.eval(&format!(
            "(() => {{ const el = document.querySelector({sel}); el.focus(); el.select && el.select(); }})()",
            sel = json!(selector)
        ));
        self.call("Input.insertText", json!({"text": text}));
    }

    /// Chooses an option of a `<select>`, as picking it from the list does.
    pub fn choose(&mut self, selector: &str, value: &str) {
        self.eval(&format!(
            "(() => {{ const el = document.querySelector({sel}); el.value = {value}; \
             el.dispatchEvent(new Event('input', {{bubbles: true}})); el.dispatchEvent(new Event('change', {{bubbles: true}})); }})()",
            sel = json!(selector),
            value = json!(value)
        ));
    }

    /// The first line of one cell of each visible row of a table body.
    pub fn visible_rows(&mut self, table: &str, column: usize) -> Vec<String> {
        let value = self.eval(&format!(
            "Array.from(document.querySelectorAll({sel} + ' tbody tr')).filter(r => !r.hidden && r.offsetParent !== null)\
             .map(r => r.cells[{column}].innerText.split('\\n')[0].trim())",
            sel = json!(table)
        ));
        serde_json::from_value(value).unwrap()
    }
}
