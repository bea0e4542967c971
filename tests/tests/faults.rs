//! Faults with real processes: a worker process killed with SIGKILL, the SQS endpoint taken
//! away and brought back, the endpoint frozen with SIGSTOP, and SIGTERM to a worker whose
//! handlers outlive its shutdown deadline.
//!
//! The worker is the `fault-worker` binary of this package, which appends each handled body
//! to a file; the endpoint is sqs-local, in this process or in its own (`local-sqs`), reached
//! directly or through `sqs-proxy`. Every test accounts for every message: each body handled
//! at least once, duplicates only where a fault can explain them and within a stated bound,
//! the queue empty (nothing invisible) at the end and its dead-letter queue empty.
//!
//! The tests run one at a time: they share few cores and their bounds are about time.

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::QueueAttributeName;
use sqs_handler::{OutgoingMessage, Producer};
use sqs_handler_tests::{queue_counts, wait_for};
use sqs_local::{LocalSqs, Operation};

/// One test at a time: the bounds below are about time, and the machine may have two cores.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const WORKER: &str = env!("CARGO_BIN_EXE_fault-worker");
const PROXY: &str = env!("CARGO_BIN_EXE_sqs-proxy");
const LOCAL_SQS: &str = env!("CARGO_BIN_EXE_local-sqs");

/// How long a child process may take to say it is ready.
const STARTUP: Duration = Duration::from_secs(30);
/// How long a worker may take to handle a whole queue after a fault.
const DRAIN: Duration = Duration::from_secs(60);
/// The handler's time in the load tests. A message is at risk of a second handling from the
/// moment its line is written until its delete reaches SQS: the flush interval (10 ms) plus a
/// round trip. While that window is shorter than a handler, each of the `concurrency` slots
/// has at most one message in it, which is what bounds the duplicates below by
/// `concurrency`. 50 ms leaves that window a margin on a loaded two-core machine. Handlers
/// that start together end together, so one burst of `concurrency` deletes in flight at the
/// fault (and as many duplicates) is the expected worst case, not a flake.
const HANDLER_DELAY: Duration = Duration::from_millis(50);

// --- processes ---------------------------------------------------------------------------------

/// A child process, killed with SIGKILL and reaped when dropped (also when stopped with
/// SIGSTOP), so a failed test leaves no process behind. Its stdout lines arrive on a channel;
/// its stderr goes to a log file that failures print.
struct Proc {
    name: String,
    child: Child,
    lines: mpsc::Receiver<String>,
    log: PathBuf,
    exited: Option<ExitStatus>,
}

impl Proc {
    fn spawn(name: &str, mut cmd: Command, log: PathBuf) -> Self {
        let stderr = std::fs::File::create(&log).expect("create a log file");
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        // Ends at EOF, when the process is gone.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            name: name.to_owned(),
            child,
            lines,
            log,
            exited: None,
        }
    }

    fn pid(&self) -> String {
        self.child.id().to_string()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for a stdout line starting with `prefix` and returns the rest of it. Panics with
    /// the process's log if it exits first or `deadline` passes.
    async fn line(&mut self, prefix: &str, deadline: Duration) -> String {
        let what = format!("{} to print {prefix:?}", self.name);
        let start = Instant::now();
        loop {
            match self.lines.try_recv() {
                Ok(line) => match line.strip_prefix(prefix) {
                    Some(rest) => return rest.trim().to_owned(),
                    None => continue,
                },
                Err(mpsc::TryRecvError::Disconnected) => {
                    let status = self.child.try_wait().ok().flatten();
                    panic!(
                        "{} ended ({status:?}) before {what}; its log:\n{}",
                        self.name,
                        self.log()
                    );
                }
                Err(mpsc::TryRecvError::Empty) => {}
            }
            assert!(
                start.elapsed() < deadline,
                "timed out after {deadline:?} waiting for {what}; its log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Sends a signal with the `kill` command: `KILL`, `TERM`, `STOP`, `CONT`.
    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {}: {status}", self.name);
    }

    /// Waits for the process to end; panics after `deadline`.
    async fn exit(&mut self, deadline: Duration) -> ExitStatus {
        let what = format!("{} to exit", self.name);
        let child = &mut self.child;
        let status = wait_for(&what, deadline, || {
            let r = child.try_wait().expect("try_wait");
            async move { r }
        })
        .await;
        self.exited = Some(status);
        status
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.exited.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "--- {} log ({}):\n{}",
                self.name,
                self.log.display(),
                self.log()
            );
        }
    }
}

/// A directory for one test's files, removed at the end unless the test failed.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "sqs-faults-{test}-{}-{nanos:x}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("create a scratch directory");
        Self(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept {} for inspection", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

// --- the worker --------------------------------------------------------------------------------

/// How a `fault-worker` process is configured (its environment variables).
#[derive(Clone, Debug)]
struct WorkerConfig {
    endpoint: String,
    queue: String,
    output: PathBuf,
    concurrency: u32,
    handler_delay: Duration,
    shutdown_timeout: Duration,
    wait: Duration,
}

/// Starts a `fault-worker` and waits until it has built its consumer.
async fn start_worker(scratch: &Scratch, name: &str, config: &WorkerConfig) -> Proc {
    let mut cmd = Command::new(WORKER);
    cmd.env("AWS_ENDPOINT_URL_SQS", &config.endpoint)
        .env("AWS_REGION", sqs_local::REGION)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        // Nothing from the user's AWS files, and no instance metadata lookups.
        .env("AWS_CONFIG_FILE", scratch.path("no-aws-config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            scratch.path("no-aws-credentials"),
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("FAULT_QUEUE", &config.queue)
        .env("FAULT_OUTPUT", &config.output)
        .env("FAULT_CONCURRENCY", config.concurrency.to_string())
        .env(
            "FAULT_HANDLER_DELAY_MS",
            config.handler_delay.as_millis().to_string(),
        )
        .env(
            "FAULT_SHUTDOWN_TIMEOUT_MS",
            config.shutdown_timeout.as_millis().to_string(),
        )
        .env("FAULT_WAIT_SECS", config.wait.as_secs().to_string());
    let mut worker = Proc::spawn(name, cmd, scratch.path(&format!("{name}.log")));
    worker.line("READY", STARTUP).await;
    worker
}

/// The counters a worker prints when it has shut down.
#[derive(Debug, Default, Clone, Copy)]
struct WorkerStatus {
    received: u64,
    processed: u64,
    deleted: u64,
}

/// SIGTERM, then the exit (0 within `deadline`) and the status line.
async fn stop_worker(worker: &mut Proc, deadline: Duration) -> (WorkerStatus, Duration) {
    let start = Instant::now();
    worker.signal("TERM");
    let status = worker.exit(deadline).await;
    let took = start.elapsed();
    assert!(
        status.success(),
        "{} exited with {status} after SIGTERM; its log:\n{}",
        worker.name,
        worker.log()
    );
    let line = worker.line("STATUS", Duration::from_secs(5)).await;
    let field = |name: &str| -> u64 {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in STATUS {line:?}"))
    };
    let s = WorkerStatus {
        received: field("received"),
        processed: field("processed"),
        deleted: field("deleted"),
    };
    (s, took)
}

/// The SQS calls a worker reported as failed, by operation (its `EVENT error` lines).
fn reported_errors(worker: &Proc) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for line in worker.log().lines() {
        if let Some(rest) = line.strip_prefix("EVENT error ") {
            let op = rest.split(':').next().unwrap_or_default().to_owned();
            *out.entry(op).or_default() += 1;
        }
    }
    out
}

// --- accounting --------------------------------------------------------------------------------

/// How many times each body was handled, from the workers' output file. A last line without
/// its newline would be a write cut short by SIGKILL: not a handled message.
fn handled(output: &Path) -> HashMap<String, u32> {
    let text = std::fs::read_to_string(output).unwrap_or_default();
    let complete = text.rfind('\n').map_or("", |i| &text[..=i]);
    let mut out = HashMap::new();
    for line in complete.lines().filter(|l| !l.is_empty()) {
        *out.entry(line.to_owned()).or_default() += 1;
    }
    out
}

/// Lines in the output file (handlings, duplicates included).
fn handled_lines(output: &Path) -> u32 {
    handled(output).values().sum()
}

/// Waits until every sent body has been handled at least once.
async fn wait_all_handled(output: &Path, sent: &[String], deadline: Duration) {
    let what = format!("all {} messages handled", sent.len());
    wait_for(&what, deadline, || async {
        let seen = handled(output);
        sent.iter().all(|b| seen.contains_key(b)).then_some(())
    })
    .await;
}

/// Asserts every sent body was handled and nothing else was; returns the duplicates (extra
/// handlings) and the bodies handled more than once.
fn duplicates(output: &Path, sent: &[String]) -> (u32, Vec<String>) {
    let seen = handled(output);
    let missing: Vec<_> = sent.iter().filter(|b| !seen.contains_key(*b)).collect();
    assert!(missing.is_empty(), "never handled: {missing:?}");
    let foreign: Vec<_> = seen.keys().filter(|b| !sent.contains(b)).collect();
    assert!(foreign.is_empty(), "handled but never sent: {foreign:?}");
    let mut twice: Vec<String> = seen
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(b, n)| format!("{b}x{n}"))
        .collect();
    twice.sort();
    (seen.values().map(|n| n - 1).sum(), twice)
}

// --- queues ------------------------------------------------------------------------------------

/// A queue with a dead-letter queue.
struct Queues {
    name: String,
    url: String,
    dlq: String,
}

/// After this many receives a message goes to the dead-letter queue: more than any fault here
/// explains, so a message there is a finding.
const MAX_RECEIVE_COUNT: u32 = 5;

async fn create_queues(client: &Client, name: &str, visibility: Duration) -> Queues {
    let dlq = client
        .create_queue()
        .queue_name(format!("{name}-dlq"))
        .send()
        .await
        .expect("create the DLQ")
        .queue_url
        .expect("a DLQ URL");
    let arn = client
        .get_queue_attributes()
        .queue_url(&dlq)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("the DLQ's ARN")
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .expect("a QueueArn");
    let policy =
        format!(r#"{{"deadLetterTargetArn":"{arn}","maxReceiveCount":"{MAX_RECEIVE_COUNT}"}}"#);
    let url = client
        .create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::RedrivePolicy, policy)
        .attributes(
            QueueAttributeName::VisibilityTimeout,
            visibility.as_secs().to_string(),
        )
        .send()
        .await
        .expect("create the queue")
        .queue_url
        .expect("a queue URL");
    Queues {
        name: name.to_owned(),
        url,
        dlq,
    }
}

/// Sends `count` messages with bodies `<prefix>-0000`, `<prefix>-0001`, ...; returns the bodies.
async fn send(client: &Client, queue: &str, prefix: &str, count: usize) -> Vec<String> {
    let bodies: Vec<String> = (0..count).map(|i| format!("{prefix}-{i:04}")).collect();
    let report = Producer::with_client(client.clone())
        .send_batch(queue, bodies.iter().cloned().map(OutgoingMessage::new))
        .await
        .expect("send the messages");
    assert!(report.is_complete(), "send failures: {:?}", report.failed);
    bodies
}

async fn wait_counts(client: &Client, url: &str, want: (u64, u64, u64), deadline: Duration) {
    let what = format!("queue counts (visible, in flight, delayed) = {want:?}");
    wait_for(&what, deadline, || async {
        (queue_counts(client, url).await == want).then_some(())
    })
    .await;
}

/// Asserts the queue and its DLQ are empty now.
async fn assert_drained(client: &Client, queues: &Queues) {
    assert_eq!(
        queue_counts(client, &queues.url).await,
        (0, 0, 0),
        "nothing left in the queue, visible or not"
    );
    assert_eq!(
        queue_counts(client, &queues.dlq).await,
        (0, 0, 0),
        "nothing dead-lettered: no fault here costs {MAX_RECEIVE_COUNT} receives"
    );
}

/// One endpoint fault seen from the worker: how many lines were handled when it began, and
/// during it.
struct Fault {
    what: &'static str,
    at_start: u32,
    during: u32,
}

/// What both endpoint faults assert once the endpoint is back: every body handled, the queue
/// empty, the fault came under load, only held messages were handled during it, and duplicates
/// stay within those plus the deletes in flight when it began. Returns the worker's count.
async fn account_after_fault(
    fault: Fault,
    client: &Client,
    queues: &Queues,
    worker: &mut Proc,
    config: &WorkerConfig,
    sent: &[String],
    started: Instant,
) -> WorkerStatus {
    let Fault {
        what,
        at_start,
        during,
    } = fault;
    wait_all_handled(&config.output, sent, DRAIN).await;
    wait_counts(client, &queues.url, (0, 0, 0), Duration::from_secs(20)).await;
    let errors = reported_errors(worker);
    let (status, took) = stop_worker(worker, Duration::from_secs(10)).await;
    let (dups, twice) = duplicates(&config.output, sent);
    eprintln!(
        "endpoint {what}: {} sent, {at_start} handled before, {during} during, {dups} duplicates \
         {twice:?}; errors reported {errors:?}; worker {status:?}, stopped in {took:?}; {:?} in all",
        sent.len(),
        started.elapsed()
    );
    assert!(
        (at_start as usize) < sent.len(),
        "endpoint {what}: the fault came under load, not after the work ({at_start} handled)"
    );
    assert!(
        during <= config.concurrency,
        "endpoint {what}: only held messages are handled during the fault: {during} > {}",
        config.concurrency
    );
    let bound = during + config.concurrency;
    assert!(
        dups <= bound,
        "endpoint {what}: duplicates {dups} > {bound} (handled during the fault + deletes in flight when it began): {twice:?}"
    );
    assert_drained(client, queues).await;
    status
}

async fn local_sqs() -> LocalSqs {
    LocalSqs::start().await.expect("start sqs-local")
}

// --- the tests ---------------------------------------------------------------------------------

/// SIGKILL to a worker under load, then a new worker. Only the messages whose line was written
/// but whose delete had not reached SQS can be handled twice: at most `concurrency` (see
/// [`HANDLER_DELAY`]). Messages the dead worker held come back when their visibility timeout
/// (3 s) ends and are handled once, by the second worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_killed_with_sigkill_under_load_loses_nothing() {
    let _serial = SERIAL.lock().await;
    let started = Instant::now();
    let scratch = Scratch::new("sigkill");
    let server = local_sqs().await;
    let client = server.client();
    let queues = create_queues(&client, "sigkill", Duration::from_secs(3)).await;
    let sent = send(&client, &queues.name, "k", 400).await;
    let config = WorkerConfig {
        endpoint: server.endpoint_url(),
        queue: queues.name.clone(),
        output: scratch.path("handled.txt"),
        concurrency: 20,
        handler_delay: HANDLER_DELAY,
        shutdown_timeout: Duration::from_secs(5),
        wait: Duration::from_secs(2),
    };

    let mut first = start_worker(&scratch, "worker-1", &config).await;
    wait_for("100 messages handled", DRAIN, || async {
        (handled_lines(&config.output) >= 100).then_some(())
    })
    .await;
    first.signal("KILL");
    let status = first.exit(Duration::from_secs(10)).await;
    assert!(!status.success(), "SIGKILL ends the worker: {status}");
    let at_kill = handled_lines(&config.output);
    assert!(
        at_kill < 400,
        "the kill came under load, not after the work ({at_kill} handled)"
    );

    let mut second = start_worker(&scratch, "worker-2", &config).await;
    wait_all_handled(&config.output, &sent, DRAIN).await;
    wait_counts(&client, &queues.url, (0, 0, 0), Duration::from_secs(20)).await;
    let (status, took) = stop_worker(&mut second, Duration::from_secs(10)).await;

    let (dups, twice) = duplicates(&config.output, &sent);
    eprintln!(
        "sigkill: {} sent, {at_kill} handled before the kill, {dups} duplicates {twice:?}; \
         second worker {status:?}, stopped in {took:?}; {:?} in all",
        sent.len(),
        started.elapsed()
    );
    assert!(
        dups <= config.concurrency,
        "at most `concurrency` ({}) handled twice, the deletes lost with the process; got {dups}: {twice:?}",
        config.concurrency
    );
    assert_drained(&client, &queues).await;
}

/// The endpoint taken away for 4 s under load (the proxy in front of sqs-local killed), then
/// back on the same port with its state. The worker survives and finishes.
///
/// While the endpoint is away no receive succeeds, so the worker handles only what it held:
/// at most `concurrency` lines. Duplicates come from the messages whose delete did not reach
/// SQS before their visibility timeout (3 s) ended: those handled while it was away, and those
/// whose delete was batched or in flight when it went (at most `concurrency`, see
/// [`HANDLER_DELAY`]). A delete retried past the visibility timeout may be "confirmed" with a
/// stale receipt handle, which SQS accepts and which deletes nothing, so the worker's own
/// `deleted` counter does not bound them; the output file does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_gone_and_back_on_the_same_port_loses_nothing() {
    let _serial = SERIAL.lock().await;
    let started = Instant::now();
    let scratch = Scratch::new("endpoint-gone");
    let server = local_sqs().await;
    let client = server.client();
    let queues = create_queues(&client, "gone", Duration::from_secs(3)).await;
    let sent = send(&client, &queues.name, "g", 400).await;

    let upstream = server.addr().to_string();
    let proxy_cmd = |port: &str| {
        let mut cmd = Command::new(PROXY);
        cmd.arg(port).arg(&upstream);
        cmd
    };
    let mut proxy = Proc::spawn("proxy", proxy_cmd("0"), scratch.path("proxy-1.log"));
    let port = proxy.line("LISTENING", STARTUP).await;
    let config = WorkerConfig {
        endpoint: format!("http://127.0.0.1:{port}"),
        queue: queues.name.clone(),
        output: scratch.path("handled.txt"),
        concurrency: 20,
        handler_delay: HANDLER_DELAY,
        shutdown_timeout: Duration::from_secs(5),
        wait: Duration::from_secs(2),
    };
    let mut worker = start_worker(&scratch, "worker", &config).await;
    wait_for("100 messages handled", DRAIN, || async {
        (handled_lines(&config.output) >= 100).then_some(())
    })
    .await;

    proxy.signal("KILL");
    proxy.exit(Duration::from_secs(10)).await;
    let at_cut = handled_lines(&config.output);
    // The fault's length, not a synchronisation: the endpoint stays away this long.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let during = handled_lines(&config.output) - at_cut;
    let mut proxy = Proc::spawn("proxy", proxy_cmd(&port), scratch.path("proxy-2.log"));
    assert_eq!(proxy.line("LISTENING", STARTUP).await, port, "same port");

    let fault = Fault {
        what: "gone",
        at_start: at_cut,
        during,
    };
    let status = account_after_fault(
        fault,
        &client,
        &queues,
        &mut worker,
        &config,
        &sent,
        started,
    )
    .await;
    assert!(
        status.processed >= 400 && status.deleted <= status.processed,
        "the worker's own count: {status:?}"
    );
}

/// sqs-local's process frozen with SIGSTOP for 4 s under load, longer than the visibility
/// timeout (3 s), then thawed with SIGCONT. The worker's calls hang rather than fail; it
/// survives and finishes. Same accounting as when the endpoint is gone: only held messages
/// are handled while frozen, and only those and the deletes in flight at the freeze can be
/// handled twice (their visibility ran out while their deletes waited).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_frozen_with_sigstop_then_thawed_loses_nothing() {
    let _serial = SERIAL.lock().await;
    let started = Instant::now();
    let scratch = Scratch::new("endpoint-frozen");
    let mut server = Proc::spawn(
        "local-sqs",
        Command::new(LOCAL_SQS),
        scratch.path("local-sqs.log"),
    );
    let endpoint = server.line("LISTENING", STARTUP).await;
    let client = Client::new(&sqs_local::sdk_config_for(&endpoint));
    let queues = create_queues(&client, "frozen", Duration::from_secs(3)).await;
    let sent = send(&client, &queues.name, "f", 400).await;
    let config = WorkerConfig {
        endpoint: endpoint.clone(),
        queue: queues.name.clone(),
        output: scratch.path("handled.txt"),
        concurrency: 20,
        handler_delay: HANDLER_DELAY,
        shutdown_timeout: Duration::from_secs(5),
        wait: Duration::from_secs(2),
    };
    let mut worker = start_worker(&scratch, "worker", &config).await;
    wait_for("100 messages handled", DRAIN, || async {
        (handled_lines(&config.output) >= 100).then_some(())
    })
    .await;

    server.signal("STOP");
    let at_freeze = handled_lines(&config.output);
    // The fault's length, not a synchronisation: the endpoint stays frozen this long. No call
    // to it from here until SIGCONT: it would hang.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let during = handled_lines(&config.output) - at_freeze;
    server.signal("CONT");

    let fault = Fault {
        what: "frozen",
        at_start: at_freeze,
        during,
    };
    account_after_fault(
        fault,
        &client,
        &queues,
        &mut worker,
        &config,
        &sent,
        started,
    )
    .await;
    server.signal("TERM");
    assert!(
        server.exit(Duration::from_secs(10)).await.success(),
        "local-sqs stops on SIGTERM"
    );
}

/// SIGTERM to a worker whose handlers (5 s) outlive its shutdown timeout (500 ms), on a queue
/// whose visibility timeout (60 s) would hide an abandoned message for a minute. The worker
/// holds all 15 messages and has capacity left, and the signal comes with a long poll (2 s) in
/// flight: shutdown lets it end (cut, sqs-local would hand the released messages to the
/// abandoned poll), gives the handlers the shutdown timeout, cancels them and releases their
/// messages. The worker exits 0 within the wait plus the shutdown timeout plus
/// a margin, and at that moment every message not handled is visible again: none in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_handlers_past_the_deadline_releases_them_at_once() {
    let _serial = SERIAL.lock().await;
    let started = Instant::now();
    let scratch = Scratch::new("sigterm");
    let server = local_sqs().await;
    let client = server.client();
    let queues = create_queues(&client, "sigterm", Duration::from_secs(60)).await;
    let sent = send(&client, &queues.name, "t", 15).await;
    let config = WorkerConfig {
        endpoint: server.endpoint_url(),
        queue: queues.name.clone(),
        output: scratch.path("handled.txt"),
        concurrency: 20,
        handler_delay: Duration::from_secs(5),
        shutdown_timeout: Duration::from_millis(500),
        wait: Duration::from_secs(2),
    };
    let mut worker = start_worker(&scratch, "worker", &config).await;
    // The worker holds every message: its handlers are running. Then a receive arrives at
    // sqs-local (counted on arrival) and, the queue being empty, long-polls: SIGTERM comes
    // with it in flight.
    wait_counts(&client, &queues.url, (0, 15, 0), Duration::from_secs(10)).await;
    let receives = server.stats().calls(Operation::ReceiveMessage);
    wait_for("a long poll in flight", Duration::from_secs(10), || async {
        (server.stats().calls(Operation::ReceiveMessage) > receives).then_some(())
    })
    .await;

    let bound = config.wait + config.shutdown_timeout + Duration::from_secs(2);
    let (status, took) = stop_worker(&mut worker, bound).await;
    let counts = queue_counts(&client, &queues.url).await;
    let processed = handled_lines(&config.output);
    eprintln!(
        "sigterm: {} sent, {processed} handled, worker {status:?}, exited {took:?} after \
         SIGTERM (bound {bound:?}), counts then {counts:?}; {:?} in all",
        sent.len(),
        started.elapsed()
    );
    assert!(took <= bound, "exit took {took:?} > {bound:?}");
    assert!(
        took >= config.shutdown_timeout,
        "running handlers get the shutdown timeout before they are cancelled: exit after {took:?}"
    );
    assert_eq!(
        counts,
        (sent.len() as u64 - u64::from(processed), 0, 0),
        "right after the exit: every unhandled message visible, none in flight"
    );
    assert_eq!(
        (status.received, status.processed, status.deleted),
        (15, u64::from(processed), u64::from(processed)),
        "the worker received each message once and deleted what it handled"
    );
    assert_eq!(
        queue_counts(&client, &queues.dlq).await,
        (0, 0, 0),
        "nothing dead-lettered"
    );
}
