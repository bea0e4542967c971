//! What the demo's end-to-end suites share: configuration, an HTTP client, polling with a
//! deadline, Redis keys, and a standalone sqs-local process to freeze and kill.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use demo::Config;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

pub fn prefix(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("demo-test:{test}:{}:{nanos}:", std::process::id())
}

pub fn config(test: &str) -> Config {
    Config {
        port: 0,
        queue: "jobs".to_owned(),
        sqs_endpoint: None,
        use_aws_chain: false,
        sqs_local_port: 0,
        redis_url: Some(redis_url()),
        key_prefix: prefix(test),
        status_ttl: Duration::from_secs(600),
        job_duration: Duration::from_millis(300),
        job_timeout: Duration::from_millis(1500),
        concurrency: 16,
        retry_delay: None,
        breaker_open_for: Duration::from_secs(30),
        wait_time: Duration::from_secs(2),
    }
}

/// An HTTP answer: status, headers (names lowercased) and body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    /// The first header named `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request with extra headers; the demo answers with a Content-Length body.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Answer {
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to the demo");
    let body = body.unwrap_or("");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        req.push_str(&format!("{name}: {value}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    s.write_all(body.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Answer {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// One HTTP/1.1 request; returns (status, JSON body).
pub async fn http(addr: SocketAddr, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
    let answer = request(addr, method, path, &[], body).await;
    let json = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
    (answer.status, json)
}

/// `http`, also returning how long the answer took.
pub async fn timed(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> (u16, Value, Duration) {
    let start = Instant::now();
    let (code, json) = http(addr, method, path, body).await;
    (code, json, start.elapsed())
}

pub async fn post_job(addr: SocketAddr, message: &str) -> String {
    let (status, body) = http(
        addr,
        "POST",
        "/jobs",
        Some(&serde_json::json!({ "message": message }).to_string()),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    body["id"].as_str().expect("an id").to_owned()
}

pub async fn status_of(addr: SocketAddr, id: &str) -> Value {
    let (code, body) = http(addr, "GET", &format!("/jobs/{id}"), None).await;
    assert_eq!(code, 200, "{body}");
    body
}

/// Polls a job until `done(status)`, returning every distinct status seen, in order.
pub async fn watch(
    addr: SocketAddr,
    id: &str,
    deadline: Duration,
    done: &str,
) -> (Vec<String>, Value) {
    let (seen, job) = watch_attempts(addr, id, deadline, done).await;
    let mut statuses: Vec<String> = Vec::new();
    for (s, _) in seen {
        if statuses.last() != Some(&s) {
            statuses.push(s);
        }
    }
    (statuses, job)
}

/// Polls a job until its status is `done`, returning every distinct (status, attempts) seen,
/// in order.
pub async fn watch_attempts(
    addr: SocketAddr,
    id: &str,
    deadline: Duration,
    done: &str,
) -> (Vec<(String, u64)>, Value) {
    let start = Instant::now();
    let mut seen: Vec<(String, u64)> = Vec::new();
    loop {
        let job = status_of(addr, id).await;
        let now = (
            job["status"].as_str().unwrap_or("").to_owned(),
            job["attempts"].as_u64().unwrap_or(u64::MAX),
        );
        if seen.last() != Some(&now) {
            seen.push(now.clone());
        }
        if now.0 == done {
            return (seen, job);
        }
        assert!(
            start.elapsed() < deadline,
            "job {id} never reached {done}: saw {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until `check` gives `Some`, or panics naming `what` after `deadline`.
pub async fn wait_for<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            start.elapsed() < deadline,
            "{what}: not within {deadline:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The Redis keys under `prefix`, sorted.
pub async fn redis_keys(prefix: &str) -> Vec<String> {
    let client = redis::Client::open(redis_url()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut c)
        .await
        .unwrap();
    keys.sort();
    keys
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An SQS client for `endpoint` (the test's own view of the queues).
pub fn sqs_client(endpoint: &str) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&sqs_local::sdk_config_for(endpoint))
}

/// A queue's ApproximateNumberOfMessages.
pub async fn queue_depth(client: &aws_sdk_sqs::Client, queue: &str) -> u64 {
    use aws_sdk_sqs::types::QueueAttributeName;
    let url = client
        .get_queue_url()
        .queue_name(queue)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .unwrap()
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::ApproximateNumberOfMessages))
        .and_then(|n| n.parse().ok())
        .expect("ApproximateNumberOfMessages")
}

/// The sqs-local binary of this target directory, built first if missing.
fn sqs_local_bin() -> std::path::PathBuf {
    static BUILT: std::sync::Once = std::sync::Once::new();
    let dir = std::env::current_exe()
        .unwrap()
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test binary is in target/<profile>/deps")
        .to_path_buf();
    let bin = dir.join("sqs-local");
    BUILT.call_once(|| {
        if !bin.exists() {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
            let status = std::process::Command::new(cargo)
                .args([
                    "build",
                    "-p",
                    "sqs-local",
                    "--features",
                    "cli",
                    "--bin",
                    "sqs-local",
                ])
                .status()
                .expect("run cargo build -p sqs-local --features cli");
            assert!(status.success(), "cargo build -p sqs-local failed");
        }
    });
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p sqs-local --features cli`",
        bin.display()
    );
    bin
}

/// A standalone sqs-local process, to freeze (SIGSTOP), thaw and kill. Killed on drop.
pub struct SqsLocalProcess {
    child: std::process::Child,
    pub endpoint: String,
}

impl SqsLocalProcess {
    /// Starts it on a free port and waits until it accepts connections.
    pub async fn start() -> Self {
        let port = free_port();
        let child = std::process::Command::new(sqs_local_bin())
            .args(["--port", &port.to_string()])
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start sqs-local");
        let endpoint = format!("http://127.0.0.1:{port}");
        let client = sqs_client(&endpoint);
        wait_for("sqs-local answers", Duration::from_secs(30), || {
            let client = client.clone();
            async move { client.list_queues().send().await.ok().map(|_| ()) }
        })
        .await;
        Self { child, endpoint }
    }

    fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} {}", self.child.id());
    }

    /// SIGSTOP: the port still accepts connections, nothing answers.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// SIGCONT.
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    /// SIGKILL, then reaps it: the port refuses connections.
    pub fn kill(&mut self) {
        self.signal("-KILL");
        self.child.wait().expect("reap sqs-local");
    }
}

impl Drop for SqsLocalProcess {
    fn drop(&mut self) {
        // A frozen process must be thawed to die of SIGKILL promptly everywhere.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the demo binary and reads its stdout until `marker`; returns the line.
pub async fn spawn_demo(
    args: &[&str],
    env: &[(&str, String)],
    marker: &str,
) -> (tokio::process::Child, String) {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_demo"));
    cmd.args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    for var in [
        "AWS_ENDPOINT_URL_SQS",
        "AWS_ENDPOINT_URL",
        "AWS_REGION",
        "SQS_QUEUE_NAME",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_SERVICE_NAME",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start the demo binary");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(l)) = lines.next_line().await {
            if l.contains(marker) {
                return l;
            }
        }
        String::new()
    })
    .await
    .expect("the demo printed its address");
    assert!(
        line.contains(marker),
        "the demo exited before printing {marker:?}"
    );
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, line)
}

/// SIGTERM, then waits (30 s at most) for the exit.
pub async fn terminate(child: &mut tokio::process::Child) -> std::process::ExitStatus {
    let pid = child.id().expect("running").to_string();
    let killed = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("exits after SIGTERM")
        .unwrap()
}
