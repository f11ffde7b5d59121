//! Checks that `report.html` renders in headless Chromium, as a reader's browser would show it.
//!
//! Opens the `report.html` of a model smoke run and fails on any console error, any network
//! request outside the file, any external URL, a missing verdict table, verdicts that do not
//! come before the charts, a table cell that shows raw JSON (text starting with `{` or `[`, or
//! holding `":`), or a chart that does not render (fewer than six `<svg>` charts with a non-zero
//! box and drawn marks); saves a full-page screenshot to `<target dir>/chromium/report.png`.
//!
//! Chromium is driven over the DevTools protocol on `--remote-debugging-pipe` (JSON messages
//! ended by NUL on fds 3 and 4), so the page needs no script of its own and the test needs no
//! websocket client.
//!
//! Environment:
//! - `HOOKBENCH_CHROMIUM=PATH`: the Chromium binary (default `/usr/bin/chromium`, Debian's
//!   `chromium` package).
//! - `HOOKBENCH_CHROMIUM_REPORT=PATH`: check this report.html (e.g. of a kernel run) instead of
//!   the one of a fresh model smoke run.
//! - `HOOKBENCH_REQUIRE_CHROMIUM=1`: a missing Chromium fails the tests instead of skipping them
//!   (for CI). Without it, the tests print `SKIPPED: chromium not found at PATH (install: apt-get
//!   install chromium)` to stderr, uncaptured so `cargo test` shows it, and pass.

mod common;

use serde_json::{json, Value};
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

const DEFAULT_CHROMIUM: &str = "/usr/bin/chromium";
/// The report must show at least this many charts (issue 4).
const MIN_CHARTS: usize = 6;
/// Longest wait for one DevTools reply or event; Chromium is killed when it is exceeded.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);
/// Width of the viewport and of the screenshot, in CSS pixels.
const WIDTH: u64 = 1280;
/// The screenshot is cut at this height (the raw tables make the page long).
const MAX_SHOT_HEIGHT: f64 = 12000.0;

/// One Chromium at a time, and no measuring run beside it (they slow each other down).
///
/// Two browsers, or a browser and a smoke run, on a 2-CPU machine only slow each other down.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Prints to stderr past libtest's capture, so the line shows in a plain `cargo test`.
fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// The Chromium binary, or `None` after saying why the test is skipped.
///
/// It fails instead when `HOOKBENCH_REQUIRE_CHROMIUM=1`.
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("HOOKBENCH_CHROMIUM")
        .filter(|p| !p.is_empty())
        .map_or_else(|| PathBuf::from(DEFAULT_CHROMIUM), PathBuf::from);
    if path.is_file() {
        return Some(path);
    }
    let required = std::env::var("HOOKBENCH_REQUIRE_CHROMIUM").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "chromium not found at {} and HOOKBENCH_REQUIRE_CHROMIUM=1 (install: apt-get install chromium)",
        path.display()
    );
    say(&format!(
        "SKIPPED: chromium not found at {} (install: apt-get install chromium)",
        path.display()
    ));
    None
}

/// `path` as a `file://` URL (absolute, percent-encoded).
fn file_url(path: &Path) -> String {
    let abs = std::fs::canonicalize(path).expect("page path resolves");
    let mut url = String::from("file://");
    for b in abs.to_str().expect("UTF-8 path").bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            url.push(b as char);
        } else {
            url.push_str(&format!("%{b:02X}"));
        }
    }
    url
}

/// A headless Chromium in its own process group, spoken to over `--remote-debugging-pipe`.
///
/// Dropping it kills the whole group, so no Chromium process outlives the test, whatever happened.
struct Browser {
    child: Child,
    to_chromium: Option<File>,
    from_chromium: Receiver<Value>,
    /// Events read while waiting for something else, oldest first.
    events: Vec<Value>,
    next_id: u64,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

fn cloexec_pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid array of two ints; on success both are new descriptors we own.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe2: {}", std::io::Error::last_os_error());
    // SAFETY: just created, owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

impl Browser {
    fn launch(chromium: &Path) -> Browser {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("chromium.log");
        let (cmd_read, cmd_write) = cloexec_pipe();
        let (out_read, out_write) = cloexec_pipe();
        let (fd3, fd4) = (cmd_read.as_raw_fd(), out_write.as_raw_fd());
        let mut command = std::process::Command::new(chromium);
        command
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--disable-breakpad",
                "--disable-dev-shm-usage",
                "--hide-scrollbars",
                "--mute-audio",
                "--remote-debugging-pipe",
            ])
            .arg(format!("--user-data-dir={}", dir.path().join("profile").display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log).expect("chromium.log"))
            .process_group(0);
        // SAFETY: only async-signal-safe calls (fcntl, dup2) between fork and exec. The descriptors are first
        // copied above 10 so that dup2 onto 3 and 4 cannot clobber one with the other, and so that the copies
        // on 3 and 4 lose close-on-exec.
        unsafe {
            command.pre_exec(move || {
                let r = libc::fcntl(fd3, libc::F_DUPFD_CLOEXEC, 10);
                let w = libc::fcntl(fd4, libc::F_DUPFD_CLOEXEC, 10);
                if r < 0 || w < 0 || libc::dup2(r, 3) < 0 || libc::dup2(w, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromium.display()));
        drop((cmd_read, out_write));
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(File::from(out_read));
            loop {
                let mut buf = Vec::new();
                match reader.read_until(0, &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                if buf.last() == Some(&0) {
                    buf.pop();
                }
                let msg = serde_json::from_slice(&buf)
                    .unwrap_or_else(|e| json!({ "unparsable": e.to_string(), "text": String::from_utf8_lossy(&buf) }));
                if tx.send(msg).is_err() {
                    break;
                }
            }
        });
        Browser {
            child,
            to_chromium: Some(File::from(cmd_write)),
            from_chromium: rx,
            events: Vec::new(),
            next_id: 1,
            log,
            _dir: dir,
        }
    }

    /// The last lines of Chromium's stderr, for failure messages.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// The next message from Chromium; panics (killing it) after `STEP_TIMEOUT` or if it is gone.
    fn recv(&mut self, waiting_for: &str) -> Value {
        match self.from_chromium.recv_timeout(STEP_TIMEOUT) {
            Ok(msg) => {
                assert!(msg.get("unparsable").is_none(), "bad DevTools message: {msg}");
                msg
            }
            Err(RecvTimeoutError::Timeout) => panic!(
                "chromium: no {waiting_for} within {STEP_TIMEOUT:?}; its stderr ends:\n{}",
                self.log_tail()
            ),
            Err(RecvTimeoutError::Disconnected) => panic!(
                "chromium exited while waiting for {waiting_for}; its stderr ends:\n{}",
                self.log_tail()
            ),
        }
    }

    /// Sends `method` (to the page `session`, or the browser) and returns its result.
    ///
    /// Events read meanwhile are kept in `self.events`.
    fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        let mut bytes = serde_json::to_vec(&msg).expect("JSON");
        bytes.push(0);
        let pipe = self.to_chromium.as_mut().expect("pipe to chromium is open");
        if let Err(e) = pipe.write_all(&bytes) {
            panic!(
                "cannot send {method} to chromium: {e}; its stderr ends:\n{}",
                self.log_tail()
            );
        }
        loop {
            let reply = self.recv(method);
            if reply.get("id").and_then(Value::as_u64) == Some(id) {
                if let Some(err) = reply.get("error") {
                    panic!("chromium: {method} failed: {err}");
                }
                return reply.get("result").cloned().unwrap_or(Value::Null);
            }
            self.events.push(reply);
        }
    }

    /// Waits for the first event, among those kept and those to come, for which `pred` holds.
    fn wait_event(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        if let Some(i) = self.events.iter().position(&pred) {
            return self.events.remove(i);
        }
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            assert!(Instant::now() < deadline, "chromium: no {what} within {STEP_TIMEOUT:?}");
            let msg = self.recv(what);
            if pred(&msg) {
                return msg;
            }
            self.events.push(msg);
        }
    }

    /// Asks Chromium to quit and gives it a few seconds; `Drop` kills what is left.
    fn close(mut self) {
        let id = self.next_id;
        let msg = format!("{{\"id\":{id},\"method\":\"Browser.close\"}}\0");
        if let Some(mut pipe) = self.to_chromium.take() {
            let _ = pipe.write_all(msg.as_bytes());
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The group of the browser process, which every Chromium helper it started belongs to.
        let group = self.child.id() as libc::pid_t;
        // SAFETY: plain syscall; the group is ours (process_group(0) at spawn).
        unsafe {
            libc::killpg(group, libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

/// One `<svg>` as Chromium laid it out.
#[derive(Debug)]
struct Chart {
    title: String,
    width: f64,
    height: f64,
    /// `text` elements (caption, axis labels, legend).
    texts: u64,
    /// Drawn marks: `path`, `line`, `polyline`, `polygon`, `circle`, `ellipse`.
    marks: u64,
    /// Box of the drawn content (`getBBox()`), zero when nothing was drawn.
    content: (f64, f64),
}

impl Chart {
    fn rendered(&self) -> bool {
        self.width > 0.0 && self.height > 0.0 && self.texts > 0 && self.marks > 0 && self.content.0 > 0.0
    }
}

/// What Chromium saw of one page.
#[derive(Debug, Default)]
struct Inspection {
    ready_state: String,
    /// `console.error`/`console.assert` calls, uncaught exceptions and error log entries.
    ///
    /// Error log entries include failed loads.
    console_errors: Vec<String>,
    /// Requests for anything but the page itself (or a `data:` URL).
    requests: Vec<String>,
    /// `src`, `href`, ... attributes that point outside the file, and `url(`/`@import` in styles.
    external_refs: Vec<String>,
    charts: Vec<Chart>,
    /// Rows or cells with a verdict class in the table after `#summary`, and whether it has a box.
    verdict_rows: u64,
    verdict_table_shown: bool,
    /// Whether the table after `#summary` comes before the first `<svg>` (true without charts).
    verdicts_before_charts: bool,
    /// Text of the table cells (`td`, `th`) that look like JSON: `{...`, `[...` or holding `":`.
    raw_json_cells: Vec<String>,
    /// Text of the `p.note` paragraphs that stand where a chart could not be drawn or had no data.
    notes: Vec<String>,
}

impl Inspection {
    /// Every reason the report fails, empty when it passes ([`Inspection::problems_with`]).
    fn problems(&self) -> Vec<String> {
        self.problems_with(MIN_CHARTS)
    }

    /// Every reason a page with at least `min_charts` charts fails, empty when it passes.
    fn problems_with(&self, min_charts: usize) -> Vec<String> {
        let mut p = Vec::new();
        if self.ready_state != "complete" {
            p.push(format!("document not loaded: readyState {:?}", self.ready_state));
        }
        p.extend(self.console_errors.iter().map(|e| format!("console error: {e}")));
        p.extend(
            self.requests
                .iter()
                .map(|u| format!("network request outside the file: {u}")),
        );
        p.extend(self.external_refs.iter().map(|r| format!("external reference: {r}")));
        for (i, c) in self.charts.iter().enumerate().filter(|(_, c)| !c.rendered()) {
            p.push(format!("chart {i} ({:?}) did not render: {c:?}", c.title));
        }
        let rendered = self.charts.iter().filter(|c| c.rendered()).count();
        if rendered < min_charts {
            p.push(format!(
                "only {rendered} chart(s) rendered, at least {min_charts} expected"
            ));
        }
        if self.verdict_rows == 0 || !self.verdict_table_shown {
            p.push(format!(
                "no verdict table shown after #summary ({} verdict rows, shown: {})",
                self.verdict_rows, self.verdict_table_shown
            ));
        }
        if !self.verdicts_before_charts {
            p.push("the verdict table does not come before the charts".to_string());
        }
        p.extend(
            self.raw_json_cells
                .iter()
                .map(|c| format!("table cell shows raw JSON: {c}")),
        );
        p.extend(
            self.notes
                .iter()
                .filter(|n| n.contains("could not draw"))
                .map(|n| format!("chart not drawn: {n}")),
        );
        p
    }
}

/// Measures the page in Chromium; returns a JSON object read by `inspect`.
const PROBE: &str = r#"(() => {
  const charts = [...document.querySelectorAll('svg')].map(s => {
    const r = s.getBoundingClientRect();
    let b = { width: 0, height: 0 };
    try { b = s.getBBox(); } catch (e) {}
    const t = s.querySelector('text');
    return {
      title: t ? t.textContent : '',
      width: r.width, height: r.height,
      texts: s.querySelectorAll('text').length,
      marks: s.querySelectorAll('path,line,polyline,polygon,circle,ellipse').length,
      contentWidth: b.width, contentHeight: b.height,
    };
  });
  const refs = [];
  const urlAttrs = /^(src|href|xlink:href|srcset|action|formaction|poster|data|background|ping|manifest|cite)$/i;
  for (const el of document.querySelectorAll('*')) {
    for (const a of el.attributes) {
      const v = a.value.trim();
      if (urlAttrs.test(a.name) && !v.startsWith('#') && !v.startsWith('data:'))
        refs.push(`${el.localName} ${a.name}="${v}"`);
      if (a.name === 'style' && /url\(|@import/i.test(v)) refs.push(`${el.localName} style="${v}"`);
    }
  }
  for (const s of document.querySelectorAll('style')) {
    if (/url\(|@import/i.test(s.textContent)) refs.push('<style> with url( or @import');
  }
  const summary = document.getElementById('summary');
  let table = summary && summary.nextElementSibling;
  if (table && table.localName !== 'table') table = null;
  const verdicts = ['supported', 'refuted', 'inconclusive', 'not-run'];
  const rows = table
    ? [...table.querySelectorAll('tr')].filter(tr => verdicts.some(v => tr.classList.contains(v)
        || tr.querySelector('td.' + v))).length
    : 0;
  const tr = table ? table.getBoundingClientRect() : { width: 0, height: 0 };
  const firstChart = document.querySelector('svg');
  const before = !table || !firstChart
    || (table.compareDocumentPosition(firstChart) & Node.DOCUMENT_POSITION_FOLLOWING) !== 0;
  const rawJson = [...document.querySelectorAll('td, th')]
    .map(c => c.textContent.trim())
    .filter(t => t.startsWith('{') || t.startsWith('[') || t.includes('":'))
    .map(t => t.slice(0, 120));
  return {
    readyState: document.readyState,
    charts, refs,
    verdictRows: rows, verdictTableShown: tr.width > 0 && tr.height > 0,
    verdictsBeforeCharts: before, rawJson,
    notes: [...document.querySelectorAll('p.note')].map(p => p.textContent),
    pageHeight: Math.max(document.documentElement.scrollHeight, document.body ? document.body.scrollHeight : 0),
  };
})()"#;

/// Loads `page` in a new tab with the console, log and network watched, and measures it.
///
/// Saves a screenshot of its top `MAX_SHOT_HEIGHT` pixels to `screenshot` when given.
fn inspect(browser: &mut Browser, page: &Path, screenshot: Option<&Path>) -> Inspection {
    let url = file_url(page);
    let target = browser.call(None, "Target.createTarget", json!({ "url": "about:blank" }));
    let target_id = target["targetId"].as_str().expect("targetId").to_string();
    let attached = browser.call(
        None,
        "Target.attachToTarget",
        json!({ "targetId": target_id, "flatten": true }),
    );
    let session = attached["sessionId"].as_str().expect("sessionId").to_string();
    let s = Some(session.as_str());
    for domain in ["Page", "Runtime", "Log", "Network"] {
        browser.call(s, &format!("{domain}.enable"), json!({}));
    }
    browser.call(s, "Page.setLifecycleEventsEnabled", json!({ "enabled": true }));
    browser.call(
        s,
        "Emulation.setDeviceMetricsOverride",
        json!({ "width": WIDTH, "height": 900, "deviceScaleFactor": 1, "mobile": false }),
    );
    let nav = browser.call(s, "Page.navigate", json!({ "url": url }));
    if let Some(err) = nav.get("errorText") {
        panic!("chromium cannot open {url}: {err}");
    }
    let loader = nav["loaderId"].as_str().expect("loaderId").to_string();
    browser.wait_event("load of the page", |m| {
        m["sessionId"] == json!(session)
            && m["method"] == "Page.lifecycleEvent"
            && m["params"]["name"] == "load"
            && m["params"]["loaderId"] == json!(loader)
    });
    // A round trip to the renderer after the load: every console message of the page is in by its reply.
    let probe = browser.call(
        s,
        "Runtime.evaluate",
        json!({ "expression": PROBE, "returnByValue": true }),
    );
    assert!(probe.get("exceptionDetails").is_none(), "probe failed: {probe}");
    let v = &probe["result"]["value"];
    if let Some(path) = screenshot {
        let height = v["pageHeight"].as_f64().unwrap_or(900.0).clamp(1.0, MAX_SHOT_HEIGHT);
        let shot = browser.call(
            s,
            "Page.captureScreenshot",
            json!({
                "format": "png",
                "captureBeyondViewport": true,
                "clip": { "x": 0, "y": 0, "width": WIDTH, "height": height, "scale": 1 },
            }),
        );
        use base64::Engine as _;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("screenshot data"))
            .expect("base64 PNG");
        std::fs::create_dir_all(path.parent().expect("screenshot dir")).expect("screenshot dir");
        std::fs::write(path, png).expect("screenshot written");
    }
    let mut out = Inspection {
        ready_state: v["readyState"].as_str().unwrap_or_default().to_string(),
        verdict_rows: v["verdictRows"].as_u64().unwrap_or(0),
        verdict_table_shown: v["verdictTableShown"].as_bool().unwrap_or(false),
        verdicts_before_charts: v["verdictsBeforeCharts"].as_bool().unwrap_or(false),
        ..Inspection::default()
    };
    let strings = |key: &str| -> Vec<String> {
        v[key]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
            .unwrap_or_default()
    };
    out.external_refs = strings("refs");
    out.notes = strings("notes");
    out.raw_json_cells = strings("rawJson");
    for c in v["charts"].as_array().map(Vec::as_slice).unwrap_or_default() {
        let f = |k: &str| c[k].as_f64().unwrap_or(0.0);
        out.charts.push(Chart {
            title: c["title"].as_str().unwrap_or_default().to_string(),
            width: f("width"),
            height: f("height"),
            texts: c["texts"].as_u64().unwrap_or(0),
            marks: c["marks"].as_u64().unwrap_or(0),
            content: (f("contentWidth"), f("contentHeight")),
        });
    }
    for e in browser.events.iter().filter(|e| e["sessionId"] == json!(session)) {
        let p = &e["params"];
        match e["method"].as_str().unwrap_or_default() {
            "Runtime.consoleAPICalled" if matches!(p["type"].as_str(), Some("error" | "assert")) => {
                let args: Vec<String> = p["args"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                    .iter()
                    .map(|a| {
                        a.get("value")
                            .map_or_else(|| a["description"].to_string(), Value::to_string)
                    })
                    .collect();
                out.console_errors.push(format!(
                    "console.{}({})",
                    p["type"].as_str().unwrap_or_default(),
                    args.join(", ")
                ));
            }
            "Runtime.exceptionThrown" => {
                let d = &p["exceptionDetails"];
                let what = d["exception"]["description"]
                    .as_str()
                    .or(d["text"].as_str())
                    .unwrap_or("exception");
                out.console_errors.push(format!("uncaught: {what}"));
            }
            "Log.entryAdded" if p["entry"]["level"] == "error" => {
                let entry = &p["entry"];
                out.console_errors.push(format!(
                    "{} ({})",
                    entry["text"].as_str().unwrap_or_default(),
                    entry["url"].as_str().unwrap_or_default()
                ));
            }
            "Network.requestWillBeSent" => {
                let u = p["request"]["url"].as_str().unwrap_or_default();
                if u != url && !u.starts_with("data:") {
                    out.requests.push(u.to_string());
                }
            }
            _ => {}
        }
    }
    browser.events.retain(|e| e["sessionId"] != json!(session));
    browser.call(None, "Target.closeTarget", json!({ "targetId": target_id }));
    out
}

/// `<target dir>/chromium`, where the screenshot and the report it shows are kept after the test.
fn artifacts_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir")
        .join("chromium")
}

/// Copies `source` into [`artifacts_dir`] as `<name>.html` and inspects it there in Chromium.
///
/// The screenshot goes to `<name>.png` beside it (an old one is removed first). Returns what the
/// browser saw and the kept page and screenshot.
fn inspect_kept(chromium: &Path, source: &Path, name: &str) -> (Inspection, PathBuf, PathBuf) {
    let dir = artifacts_dir();
    std::fs::create_dir_all(&dir).expect("artifacts dir");
    let report = dir.join(format!("{name}.html"));
    std::fs::copy(source, &report).unwrap_or_else(|e| panic!("cannot copy {}: {e}", source.display()));
    let shot = dir.join(format!("{name}.png"));
    let _ = std::fs::remove_file(&shot);
    let mut browser = Browser::launch(chromium);
    let seen = inspect(&mut browser, &report, Some(&shot));
    browser.close();
    (seen, report, shot)
}

#[test]
fn report_of_a_model_smoke_run_renders_in_headless_chromium() {
    let Some(chromium) = chromium() else { return };
    let _one = serial();
    let tmp = tempfile::tempdir().expect("tempdir");
    let given = std::env::var_os("HOOKBENCH_CHROMIUM_REPORT").filter(|p| !p.is_empty());
    let source = match given {
        Some(path) => PathBuf::from(path),
        None => {
            let out = tmp.path().join("run");
            common::run_smoke_with(&["--backend", "model"], &out);
            out.join("report.html")
        }
    };
    let started = Instant::now();
    let (seen, report, shot) = inspect_kept(&chromium, &source, "report");
    say(&format!(
        "chromium: {} of {} chart(s) rendered, {} verdict cell(s), in {:.1?}; screenshot {}",
        seen.charts.iter().filter(|c| c.rendered()).count(),
        seen.charts.len(),
        seen.verdict_rows,
        started.elapsed(),
        shot.display()
    ));
    let problems = seen.problems();
    assert!(
        problems.is_empty(),
        "report.html in Chromium ({}):\n  {}",
        report.display(),
        problems.join("\n  ")
    );
    assert!(
        std::fs::metadata(&shot).is_ok_and(|m| m.len() > 10_000),
        "no screenshot at {}",
        shot.display()
    );
}

#[test]
fn merged_report_of_three_runs_renders_in_headless_chromium() {
    let Some(chromium) = chromium() else { return };
    let _one = serial();
    let tmp = tempfile::tempdir().expect("tempdir");
    let runs = common::runs_to_merge(tmp.path());
    let out = tmp.path().join("merged");
    common::hookbench()
        .arg("merge")
        .args(&runs)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let merged: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("merged.json")).expect("merged.json")).expect("JSON");
    // One chart per claim with slopes and host class with slopes of that claim.
    let mut charts = std::collections::BTreeSet::new();
    for s in merged["slopes"].as_array().expect("slopes") {
        let run = merged["runs"]
            .as_array()
            .and_then(|r| r.iter().find(|r| r["label"] == s["run"]))
            .expect("the slope's run");
        charts.insert((s["claim"].to_string(), run["host_class"].to_string()));
    }
    assert!(charts.len() >= 2, "{charts:?}");
    let (seen, report, shot) = inspect_kept(&chromium, &out.join("report.html"), "merged-report");
    say(&format!(
        "chromium: merged report: {} of {} chart(s) rendered, {} verdict row(s); screenshot {}",
        seen.charts.iter().filter(|c| c.rendered()).count(),
        seen.charts.len(),
        seen.verdict_rows,
        shot.display()
    ));
    let problems = seen.problems_with(charts.len());
    assert!(
        problems.is_empty(),
        "merged report.html in Chromium ({}):\n  {}",
        report.display(),
        problems.join("\n  ")
    );
    assert_eq!(seen.charts.len(), charts.len(), "one chart per claim and host class");
    assert_eq!(seen.verdict_rows, 7, "one matrix row per claim on the model backend");
}

/// A drawn stand-in chart, `chart i` its caption.
fn chart(i: usize) -> String {
    format!(
        "<svg width=\"320\" height=\"180\" viewBox=\"0 0 320 180\" xmlns=\"http://www.w3.org/2000/svg\">\
         <rect x=\"0\" y=\"0\" width=\"320\" height=\"180\" fill=\"#fff\"/><text x=\"10\" y=\"20\">chart {i}</text>\
         <polyline fill=\"none\" stroke=\"#0072b2\" points=\"20,160 100,120 200,60 300,30\"/>\
         <circle cx=\"100\" cy=\"120\" r=\"3\"/></svg>"
    )
}

/// A stand-in for the report: a verdict table, then six drawn charts, to break on purpose.
///
/// `inject` is added to the body after the verdict table and, for `broken = Some((i, markup))`,
/// chart `i` is replaced by `markup`.
fn page(inject: &str, broken: Option<(usize, &str)>) -> String {
    let charts: String = (0..MIN_CHARTS)
        .map(|i| match broken {
            Some((b, r)) if b == i => r.to_string(),
            _ => chart(i),
        })
        .collect();
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>t</title></head><body>\
         <h2 id=\"summary\">Summary: verdicts</h2><table><tr><th>claim</th><th>verdict</th></tr>\
         <tr><td>1</td><td class=\"verdict supported\">supported</td></tr></table>{inject}{charts}</body></html>"
    )
}

#[test]
fn the_checker_fails_on_console_errors_broken_charts_external_urls_and_raw_json() {
    let Some(chromium) = chromium() else { return };
    let _one = serial();
    let tmp = tempfile::tempdir().expect("tempdir");
    let empty = "<svg width=\"320\" height=\"180\"></svg>";
    let zero = "<svg width=\"0\" height=\"0\"><text x=\"1\" y=\"1\">z</text><line x1=\"0\" y1=\"0\" x2=\"9\" y2=\"9\" \
                stroke=\"#000\"/></svg>";
    let hidden = "<svg width=\"320\" height=\"180\" style=\"display:none\"><text x=\"1\" y=\"9\">h</text>\
                  <line x1=\"0\" y1=\"0\" x2=\"9\" y2=\"9\" stroke=\"#000\"/></svg>";
    let not_drawn = "<p class=\"note\">Hook latency: could not draw: backend error</p>";
    // (name, page, a problem it must raise); the clean stand-in first, which must raise none.
    let cases: Vec<(&str, String, &str)> = vec![
        ("clean", page("", None), ""),
        (
            "console.error",
            page("<script>console.error('x')</script>", None),
            "console error: console.error(\"x\")",
        ),
        (
            "exception",
            page("<script>null.f()</script>", None),
            "console error: uncaught: TypeError",
        ),
        ("empty svg", page("", Some((2, empty))), "chart 2 (\"\") did not render"),
        (
            "zero-size svg",
            page("", Some((3, zero))),
            "chart 3 (\"z\") did not render",
        ),
        (
            "hidden svg",
            page("", Some((4, hidden))),
            "chart 4 (\"h\") did not render",
        ),
        ("five charts", page("", Some((5, ""))), "only 5 chart(s) rendered"),
        (
            "chart not drawn",
            page(not_drawn, None),
            "chart not drawn: Hook latency: could not draw",
        ),
        (
            "external image",
            page("<img src=\"http://127.0.0.1:9/x.png\" alt=\"\">", None),
            "network request outside the file: http://127.0.0.1:9/x.png",
        ),
        (
            "external stylesheet",
            page("<link rel=\"stylesheet\" href=\"other.css\">", None),
            "external reference: link href=\"other.css\"",
        ),
        (
            "no verdict table",
            page("", None).replace("id=\"summary\"", "id=\"elsewhere\""),
            "no verdict table shown",
        ),
        (
            "a chart before the verdicts",
            page("", None).replace("<h2 id=\"summary\">", &format!("{}<h2 id=\"summary\">", chart(9))),
            "the verdict table does not come before the charts",
        ),
        (
            "a JSON object in a cell",
            page(
                "<table><tr><th>bpf_jit</th><td>{\"available\":true}</td></tr></table>",
                None,
            ),
            "table cell shows raw JSON: {\"available\":true}",
        ),
        (
            "a JSON list in a cell",
            page(
                "<table><tr><td> [[\"meltdown\", \"Not affected\"]]</td></tr></table>",
                None,
            ),
            "table cell shows raw JSON: [[",
        ),
        (
            "a JSON member in a cell",
            page("<table><tr><td>clock: \"kind\": \"tsc\"</td></tr></table>", None),
            "table cell shows raw JSON: clock: \"kind\":",
        ),
    ];
    let mut browser = Browser::launch(&chromium);
    let mut failures = Vec::new();
    for (i, (name, html, expected)) in cases.iter().enumerate() {
        let path = tmp.path().join(format!("case{i}.html"));
        std::fs::write(&path, html).expect("page written");
        let problems = inspect(&mut browser, &path, None).problems();
        eprintln!("{name}: {problems:?}");
        let ok = if expected.is_empty() {
            problems.is_empty()
        } else {
            problems.iter().any(|p| p.starts_with(expected))
        };
        if !ok {
            failures.push(format!("{name}: expected {expected:?}, got {problems:#?}"));
        }
    }
    browser.close();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
