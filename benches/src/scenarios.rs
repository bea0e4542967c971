//! The scenarios where users feel performance: AWS-like latency, I/O-bound handlers, large
//! messages and CPU per message at saturation, each against hand-written aws-sdk-sqs loops in
//! one run (the long-handler and many-queue scenarios are in `long.rs`).
//!
//! Every consumer run is a fresh child process (`sqs-handler-bench consume ...`) on a queue the
//! parent filled beforehand, so that its CPU time, peak memory and (under callgrind) instruction
//! count are its own: sending is not in them. sqs-local runs in another child process, with the
//! scenario's latency.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_sqs::Client;
use sqs_handler::{QueueOptions, SqsConsumer};

use crate::chart::{self, Panel, Series};
use crate::consumer::{node_run, raw, server_calls};
use crate::server::{ChildServer, client, cpu_seconds_of, create, send_batches, status_field};
use crate::telemetry::Telemetry;

/// Options every scenario takes.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    /// The latency spec of sqs-local (`none`, `aws`, `receive=15ms,...`); `None`: the
    /// scenario's default.
    pub(crate) latency: Option<String>,
    /// Rounds of interleaved engines; figures are the median round.
    pub(crate) rounds: usize,
    /// Multiplies every message count.
    pub(crate) scale: f64,
    /// Concurrency levels of the latency scenario.
    pub(crate) levels: Vec<usize>,
    /// Messages of the sqs-consumer (node) run with its defaults; 0 skips node.
    pub(crate) node_messages: usize,
    /// Messages per callgrind run of the cpu scenario (the difference of two runs); 0 skips it.
    pub(crate) callgrind_messages: usize,
    /// Where to keep callgrind's output files (one per consume child, named by engine and
    /// message count); `None`: a temporary directory, removed after the run.
    pub(crate) callgrind_dir: Option<PathBuf>,
}

impl Options {
    fn scaled(&self, n: usize) -> usize {
        ((n as f64 * self.scale).round() as usize).max(10)
    }

    fn latency_or(&self, default: &str) -> String {
        self.latency.clone().unwrap_or_else(|| default.to_owned())
    }
}

/// A consumer engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Engine {
    /// Receive up to 10, delete each with DeleteMessage.
    Each,
    /// Receive up to 10, delete them with one DeleteMessageBatch.
    Batch,
    /// sqs-handler.
    Handler,
    /// sqs-handler with a prefetch of a fifth of its concurrency.
    Prefetch,
    /// sqs-handler receiving no system attributes, as the raw loops do.
    Bare,
}

impl Engine {
    pub(crate) fn parse(s: &str) -> Result<Self, String> {
        match s {
            "each" => Ok(Engine::Each),
            "batch" => Ok(Engine::Batch),
            "handler" => Ok(Engine::Handler),
            "prefetch" => Ok(Engine::Prefetch),
            "bare" => Ok(Engine::Bare),
            other => Err(format!(
                "unknown engine {other:?} (each, batch, handler, prefetch or bare)"
            )),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Engine::Each => "each",
            Engine::Batch => "batch",
            Engine::Handler => "handler",
            Engine::Prefetch => "prefetch",
            Engine::Bare => "bare",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Engine::Each => "raw: receive 10, delete each",
            Engine::Batch => "raw: receive 10, delete batch",
            Engine::Handler => "sqs-handler",
            Engine::Prefetch => "sqs-handler, prefetch concurrency/5",
            Engine::Bare => "sqs-handler, no system attributes",
        }
    }
}

/// What one consumer run measured.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Run {
    messages: usize,
    seconds: f64,
    cpu_seconds: f64,
    rss_start_kib: u64,
    rss_peak_kib: u64,
    api_calls: Option<u64>,
}

impl Run {
    fn rate(&self) -> f64 {
        self.messages as f64 / self.seconds
    }

    fn cpu_us_per_msg(&self) -> f64 {
        self.cpu_seconds * 1e6 / self.messages as f64
    }

    fn calls_per_msg(&self) -> String {
        self.api_calls.map_or("n/a".to_owned(), |c| {
            format!("{:.3}", c as f64 / self.messages as f64)
        })
    }
}

/// The run with the median rate.
fn median(mut runs: Vec<Run>) -> Run {
    runs.sort_by(|a, b| a.rate().total_cmp(&b.rate()));
    runs[runs.len() / 2]
}

/// What the `consume` child does.
#[derive(Debug, Clone)]
pub(crate) struct Consume {
    pub(crate) endpoint: String,
    pub(crate) queue: String,
    pub(crate) url: String,
    pub(crate) messages: usize,
    pub(crate) engine: Engine,
    pub(crate) concurrency: usize,
    pub(crate) work: Duration,
    /// What is installed before sqs-handler's consumer is built.
    pub(crate) telemetry: Telemetry,
}

impl Consume {
    fn args(&self) -> Vec<String> {
        vec![
            "consume".to_owned(),
            "--endpoint".to_owned(),
            self.endpoint.clone(),
            "--queue".to_owned(),
            self.queue.clone(),
            "--url".to_owned(),
            self.url.clone(),
            "--messages".to_owned(),
            self.messages.to_string(),
            "--engine".to_owned(),
            self.engine.name().to_owned(),
            "--concurrency".to_owned(),
            self.concurrency.to_string(),
            "--work-ms".to_owned(),
            self.work.as_millis().to_string(),
            "--telemetry".to_owned(),
            self.telemetry.name().to_owned(),
        ]
    }
}

/// The `consume` child: consumes `messages` from the queue with one engine and prints one JSON
/// line: seconds from the first receive to the last confirmed delete, the process's CPU
/// seconds over them, its resident memory at start and its peak (VmHWM), in KiB. The telemetry
/// is installed first; its CPU time includes the final scrape and span export.
pub(crate) async fn consume_child(c: Consume) -> Result<(), String> {
    let installed = c.telemetry.install()?;
    let client = client(&c.endpoint);
    let rss_start = status_field("self", "VmRSS:").unwrap_or(0);
    let cpu0 = cpu_seconds_of("self").unwrap_or(0.0);
    let seconds = match c.engine {
        Engine::Each => raw(&client, &c.url, c.concurrency, c.messages, false, c.work).await?,
        Engine::Batch => raw(&client, &c.url, c.concurrency, c.messages, true, c.work).await?,
        Engine::Handler | Engine::Prefetch | Engine::Bare => {
            let options = QueueOptions::default()
                .concurrency(c.concurrency)
                // A 1 s long poll, as the raw loops use: it changes nothing while the queue
                // has messages, and lets the consumer stop soon after the last one.
                .wait_time(Duration::from_secs(1));
            let options = match c.engine {
                Engine::Prefetch => options.prefetch(c.concurrency / 5),
                Engine::Bare => options.system_attributes([]),
                _ => options,
            };
            handler(&client, &c.queue, options, c.messages, c.work).await?
        }
    };
    let scrape_bytes = installed.finish()?;
    let cpu = cpu_seconds_of("self").unwrap_or(0.0) - cpu0;
    let peak = status_field("self", "VmHWM:").unwrap_or(0);
    println!(
        "{}",
        serde_json::json!({
            "seconds": seconds,
            "cpu_seconds": cpu,
            "rss_start_kib": rss_start,
            "rss_peak_kib": peak,
            "scrape_bytes": scrape_bytes,
        })
    );
    Ok(())
}

/// sqs-handler with `options`, each handler sleeping `work`: seconds from the start of the
/// consumer to SQS's confirmation of the last delete. Completion is signalled by the handlers,
/// not polled, so that a run's instruction count does not grow with its duration.
async fn handler(
    client: &Client,
    queue: &str,
    options: QueueOptions,
    n: usize,
    work: Duration,
) -> Result<f64, String> {
    let handled = Arc::new(AtomicUsize::new(0));
    let all = Arc::new(tokio::sync::Notify::new());
    let (counted, notify) = (handled.clone(), all.clone());
    let consumer = SqsConsumer::builder_with_client(client.clone())
        .discover(false)
        .queue(queue, options)
        .handler(queue, move || {
            let (counted, notify) = (counted.clone(), notify.clone());
            async move {
                if !work.is_zero() {
                    tokio::time::sleep(work).await;
                }
                if counted.fetch_add(1, Ordering::Relaxed) + 1 == n {
                    notify.notify_one();
                }
            }
        })
        .build()
        .await
        .map_err(|e| e.to_string())?;
    let status = consumer.status();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let start = Instant::now();
    let run = tokio::spawn(consumer.run_until(async move {
        let _ = stopped.await;
    }));
    let limit = Duration::from_secs(900);
    if n > 0 {
        tokio::time::timeout(limit, all.notified())
            .await
            .map_err(|_| format!("sqs-handler did not handle {n} messages in 900 s"))?;
    }
    // The last deletes are at most a flush interval and a round trip away.
    while status.queue(queue).map_or(0, |s| s.deleted) < n as u64 {
        if start.elapsed() > limit {
            return Err(format!("sqs-handler did not delete {n} messages in 900 s"));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let secs = start.elapsed().as_secs_f64();
    let _ = stop.send(());
    run.await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let got = handled.load(Ordering::Relaxed);
    if got != n {
        return Err(format!("sqs-handler handled {got} messages, expected {n}"));
    }
    Ok(secs)
}

/// What a run's queue holds and its handlers do.
#[derive(Debug, Clone, Copy)]
struct Load<'a> {
    /// Every message's body.
    body: &'a str,
    /// Messages per SendMessageBatch when filling the queue (a batch holds at most 1 MiB).
    batch: usize,
    /// How long each handler waits (zero: a no-op handler).
    work: Duration,
    /// What observes sqs-handler's consumer (the raw loops ignore it).
    telemetry: Telemetry,
}

const NO_OP: Load<'static> = Load {
    body: "{\"job\":\"no-op\"}",
    batch: 10,
    work: Duration::ZERO,
    telemetry: Telemetry::Off,
};

/// sqs-local in a child process with a latency, and a client for it.
struct Env {
    server: ChildServer,
    client: Client,
    latency: String,
    queues: AtomicUsize,
}

impl Env {
    fn start(latency: &str) -> Result<Self, String> {
        let server = ChildServer::start_with(latency)?;
        let client = client(&server.endpoint);
        Ok(Self {
            server,
            client,
            latency: latency.to_owned(),
            queues: AtomicUsize::new(0),
        })
    }

    fn endpoint(&self) -> &str {
        &self.server.endpoint
    }

    /// Fills a new queue with `n` messages of the load, consumes them in a child process
    /// (wrapped in `wrapper`, such as valgrind, when given), and deletes the queue. Returns the
    /// run and the child's stderr.
    async fn run(
        &self,
        engine: Engine,
        c: usize,
        n: usize,
        load: Load<'_>,
        wrapper: &[String],
    ) -> Result<(Run, String), String> {
        let k = self.queues.fetch_add(1, Ordering::Relaxed);
        let queue = format!("s{k}-{}-{c}-{}", engine.name(), std::process::id());
        let url = create(&self.client, &queue).await?;
        send_batches(&self.client, &url, n, 32, load.body, load.batch).await?;
        let calls0 = server_calls(self.endpoint()).await;
        let args = Consume {
            endpoint: self.endpoint().to_owned(),
            queue,
            url: url.clone(),
            messages: n,
            engine,
            concurrency: c,
            work: load.work,
            telemetry: load.telemetry,
        }
        .args();
        let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
        let mut cmd = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut cmd = tokio::process::Command::new(program);
                cmd.args(rest).arg(&exe);
                cmd
            }
            None => tokio::process::Command::new(&exe),
        };
        let out = cmd
            .args(&args)
            .output()
            .await
            .map_err(|e| format!("cannot run the consume child: {e}"))?;
        let calls1 = server_calls(self.endpoint()).await;
        let _ = self.client.delete_queue().queue_url(&url).send().await;
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if !out.status.success() {
            return Err(format!(
                "the consume child failed ({}): {stderr}",
                out.status
            ));
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let json: serde_json::Value = stdout
            .lines()
            .last()
            .and_then(|l| serde_json::from_str(l).ok())
            .ok_or_else(|| format!("the consume child printed no result: {stdout}"))?;
        let run = Run {
            messages: n,
            seconds: json["seconds"].as_f64().unwrap_or(f64::NAN),
            cpu_seconds: json["cpu_seconds"].as_f64().unwrap_or(f64::NAN),
            rss_start_kib: json["rss_start_kib"].as_u64().unwrap_or(0),
            rss_peak_kib: json["rss_peak_kib"].as_u64().unwrap_or(0),
            api_calls: match (calls0, calls1) {
                (Some((a, _)), Some((b, _))) => Some(b.saturating_sub(a)),
                _ => None,
            },
        };
        Ok((run, stderr))
    }

    /// Runs `engines` interleaved over `rounds` rounds; the median round of each.
    async fn rounds(
        &self,
        rounds: usize,
        plan: &[(Engine, usize, usize)],
        load: Load<'_>,
    ) -> Result<BTreeMap<(Engine, usize), Run>, String> {
        let mut all: BTreeMap<(Engine, usize), Vec<Run>> = BTreeMap::new();
        for round in 1..=rounds.max(1) {
            for &(engine, c, n) in plan {
                let (r, _) = self.run(engine, c, n, load, &[]).await?;
                println!(
                    "  round {round}: {:<30} c={c:<4} {n:>6} messages {:>9.0} msg/s  {:>6.0} µs CPU/msg",
                    engine.label(),
                    r.rate(),
                    r.cpu_us_per_msg()
                );
                all.entry((engine, c)).or_default().push(r);
            }
        }
        Ok(all.into_iter().map(|(k, v)| (k, median(v))).collect())
    }
}

fn print_table(results: &BTreeMap<(Engine, usize), Run>) {
    println!();
    println!("| engine | concurrency | messages | msg/s | API calls/msg | consumer CPU µs/msg |");
    println!("|---|---:|---:|---:|---:|---:|");
    for ((engine, c), r) in results {
        println!(
            "| {} | {c} | {} | {:.0} | {} | {:.0} |",
            engine.label(),
            r.messages,
            r.rate(),
            r.calls_per_msg(),
            r.cpu_us_per_msg()
        );
    }
}

fn chart_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(name)
}

/// `latency`: a no-op handler at AWS-like latency, at each concurrency level, against the raw
/// loops and sqs-consumer.
pub(crate) async fn latency(o: &Options) -> Result<(), String> {
    let env = Env::start(&o.latency_or("aws"))?;
    println!(
        "scenario latency: no-op handler, sqs-local latency {:?}, {} rounds",
        env.latency, o.rounds
    );
    // Message counts for runs of about 2 to 4 s each at this latency.
    let count = |engine: Engine, c: usize| {
        let per = match engine {
            Engine::Each => 30,
            _ => 100,
        };
        o.scaled((per * c).max(150))
    };
    let plan: Vec<_> = o
        .levels
        .iter()
        .flat_map(|&c| [Engine::Each, Engine::Batch, Engine::Handler].map(|e| (e, c, count(e, c))))
        .collect();
    let results = env.rounds(o.rounds, &plan, NO_OP).await?;
    print_table(&results);
    let mut node = BTreeMap::new();
    if o.node_messages > 0 {
        for (label, batch, n) in [
            ("defaults", 1, o.node_messages),
            ("batchSize 10", 10, o.node_messages * 4),
        ] {
            if let Some(r) = node_run(&env.client, env.endpoint(), batch, n).await? {
                println!(
                    "| sqs-consumer ({label}) | (its own) | {} | {:.0} | {} | {:.0} |",
                    r.messages,
                    r.rate(),
                    r.api_calls.map_or("n/a".to_owned(), |c| format!(
                        "{:.3}",
                        c as f64 / r.messages as f64
                    )),
                    r.cpu_seconds * 1e6 / r.messages as f64
                );
                node.insert(batch, r.rate());
            }
        }
    }

    let rate = |e: Engine, c: usize| results.get(&(e, c)).map(Run::rate);
    let ratio_at = |c: usize| {
        let ours = rate(Engine::Handler, c)?;
        let best = rate(Engine::Each, c)?.max(rate(Engine::Batch, c)?);
        Some(ours / best)
    };
    let fmt = |v: Option<f64>| v.map_or("n/a".to_owned(), |v| format!("{v:.2}"));
    let top = o.levels.iter().copied().max().unwrap_or(100);
    let vs_node = |batch: usize| {
        fmt(rate(Engine::Handler, top).and_then(|ours| node.get(&batch).map(|n| ours / n)))
    };
    let ratios: Vec<f64> = [10, 100].iter().filter_map(|&c| ratio_at(c)).collect();
    let min_ratio = ratios.iter().copied().reduce(f64::min);

    let colors = [
        (Engine::Handler, "#d62728"),
        (Engine::Batch, "#1f77b4"),
        (Engine::Each, "#7f7f7f"),
    ];
    let mut series: Vec<Series> = colors
        .iter()
        .map(|&(e, color)| Series {
            label: e.label().to_owned(),
            color,
            points: o
                .levels
                .iter()
                .filter_map(|&c| rate(e, c).map(|r| (c as f64, r)))
                .collect(),
        })
        .collect();
    for (batch, label, color) in [
        (1, "sqs-consumer defaults", "#2ca02c"),
        (10, "sqs-consumer batchSize 10", "#98df8a"),
    ] {
        if let Some(r) = node.get(&batch) {
            series.push(Series {
                label: format!("{label} ({r:.0}/s)"),
                color,
                points: o.levels.iter().map(|&c| (c as f64, *r)).collect(),
            });
        }
    }
    let path = chart_path("latency.svg");
    chart::write(
        &path,
        &[Panel {
            title: format!(
                "No-op handler at AWS-like latency (sqs-local --latency {}): messages/s",
                env.latency
            ),
            x_label: "concurrency".to_owned(),
            y_label: "messages/s".to_owned(),
            log_x: true,
            series,
        }],
    )?;
    println!("chart: {}", path.display());
    let per_level: String = o
        .levels
        .iter()
        .map(|&c| {
            format!(
                " ratio_vs_raw_c{c}={} msg_per_s_c{c}={}",
                fmt(ratio_at(c)),
                rate(Engine::Handler, c).map_or("n/a".to_owned(), |r| format!("{r:.0}"))
            )
        })
        .collect();
    println!(
        "RESULT scenario=latency ratio_vs_raw={}{per_level} ratio_vs_sqs_consumer={} ratio_vs_sqs_consumer_batch={} latency={}",
        fmt(min_ratio),
        vs_node(1),
        vs_node(10),
        env.latency
    );
    Ok(())
}

/// `io`: handlers that wait 100 ms (a database call) at concurrency 500, against Little's law
/// (concurrency / handler time) and the raw batch loop handling each receive's messages
/// concurrently.
pub(crate) async fn io(o: &Options) -> Result<(), String> {
    let env = Env::start(&o.latency_or("aws"))?;
    let (c, work) = (500, Duration::from_millis(100));
    let bound = c as f64 / work.as_secs_f64();
    println!(
        "scenario io: handlers sleeping {work:?}, concurrency {c} (bound {bound:.0} msg/s), sqs-local latency {:?}",
        env.latency
    );
    let plan = [
        (Engine::Batch, c, o.scaled(16_000)),
        (Engine::Handler, c, o.scaled(20_000)),
        (Engine::Prefetch, c, o.scaled(20_000)),
    ];
    let results = env.rounds(o.rounds, &plan, Load { work, ..NO_OP }).await?;
    print_table(&results);
    let rate = |e| results.get(&(e, c)).map(Run::rate);
    let (Some(ours), Some(ahead), Some(theirs)) = (
        rate(Engine::Handler),
        rate(Engine::Prefetch),
        rate(Engine::Batch),
    ) else {
        return Err("io: a run is missing".to_owned());
    };
    println!(
        "RESULT scenario=io msg_per_s={ahead:.0} bound={bound:.0} fraction_of_bound={:.3} ratio_vs_raw={:.2} prefetch={} no_prefetch_msg_per_s={ours:.0} no_prefetch_fraction={:.3} latency={}",
        ahead / bound,
        ahead / theirs,
        c / 5,
        ours / bound,
        env.latency
    );
    Ok(())
}

/// `large`: 256 KiB bodies at concurrency 100: MB/s against the raw batch loop, and the
/// consumer process's peak resident memory against concurrency × body size.
pub(crate) async fn large(o: &Options) -> Result<(), String> {
    let env = Env::start(&o.latency_or("aws"))?;
    let (c, size) = (100, 256 * 1024);
    let body = "x".repeat(size);
    println!(
        "scenario large: {size}-byte bodies, concurrency {c}, sqs-local latency {:?}",
        env.latency
    );
    let n = o.scaled(2000);
    let plan = [(Engine::Batch, c, n), (Engine::Handler, c, n)];
    // Three 256 KiB bodies to a SendMessageBatch: a batch holds at most 1 MiB.
    let load = Load {
        body: &body,
        batch: 3,
        ..NO_OP
    };
    let results = env.rounds(o.rounds, &plan, load).await?;
    print_table(&results);
    let mb = |r: &Run| r.messages as f64 * size as f64 / r.seconds / 1e6;
    let mib = |kib: u64| kib as f64 / 1024.0;
    let (Some(ours), Some(theirs)) = (
        results.get(&(Engine::Handler, c)),
        results.get(&(Engine::Batch, c)),
    ) else {
        return Err("large: a run is missing".to_owned());
    };
    let bound = (c * size) as f64 / (1024.0 * 1024.0);
    for (label, r) in [("sqs-handler", ours), ("raw batch loop", theirs)] {
        println!(
            "{label}: {:.1} MB/s; consumer RSS at start {:.1} MiB, peak {:.1} MiB",
            mb(r),
            mib(r.rss_start_kib),
            mib(r.rss_peak_kib)
        );
    }
    println!(
        "RESULT scenario=large mb_per_s={:.1} raw_mb_per_s={:.1} ratio_vs_raw={:.2} rss_peak_mib={:.1} rss_start_mib={:.1} concurrency_x_body_mib={bound:.1} constant_mib={:.1} raw_rss_peak_mib={:.1} latency={}",
        mb(ours),
        mb(theirs),
        mb(ours) / mb(theirs),
        mib(ours.rss_peak_kib),
        mib(ours.rss_start_kib),
        mib(ours.rss_peak_kib) - bound,
        mib(theirs.rss_peak_kib),
        env.latency
    );
    Ok(())
}

/// Instructions a callgrind run of the consume child executed ("Collected : N").
fn collected(stderr: &str) -> Option<u64> {
    stderr
        .lines()
        .find_map(|l| l.split("Collected :").nth(1))
        .and_then(|v| v.trim().parse().ok())
}

/// One consume child measured under callgrind.
#[derive(Debug, Clone)]
struct Variant<'a> {
    /// Names its output files: `callgrind.<file>.<messages>.out`.
    file: String,
    label: String,
    engine: Engine,
    load: Load<'a>,
}

/// Instructions per message of each variant at concurrency `c`: the consume child run under
/// `valgrind --tool=callgrind` on a fifth of `--callgrind-messages` and on all of them, the
/// difference divided by the difference in messages, so that start-up and shutdown cancel out.
/// `None` for every variant when callgrind is off (`--callgrind-messages 0`) or valgrind is
/// not installed.
async fn instructions_per_message(
    env: &Env,
    o: &Options,
    c: usize,
    variants: &[Variant<'_>],
) -> Result<Vec<Option<f64>>, String> {
    let none = vec![None; variants.len()];
    if o.callgrind_messages == 0 {
        return Ok(none);
    }
    let have_valgrind = std::process::Command::new("valgrind")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have_valgrind {
        println!("callgrind skipped: valgrind is not installed (apt-get install valgrind)");
        return Ok(none);
    }
    let dir = o.callgrind_dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("sqs-handler-bench-cg-{}", std::process::id()))
    });
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let (small, big) = (o.callgrind_messages / 5, o.callgrind_messages);
    let mut measured = Ok(Vec::new());
    'variants: for v in variants {
        let mut counts = Vec::new();
        for m in [small, big] {
            let wrapper = [
                "valgrind".to_owned(),
                "--tool=callgrind".to_owned(),
                format!(
                    "--callgrind-out-file={}/callgrind.{}.{m}.out",
                    dir.display(),
                    v.file
                ),
            ];
            let stderr = match env.run(v.engine, c, m, v.load, &wrapper).await {
                Ok((_, stderr)) => stderr,
                Err(e) => {
                    measured = Err(e);
                    break 'variants;
                }
            };
            let Some(i) = collected(&stderr) else {
                measured = Err(format!("callgrind printed no count: {stderr}"));
                break 'variants;
            };
            println!(
                "  callgrind: {:<34} {m:>5} messages: {i} instructions",
                v.label
            );
            counts.push(i);
        }
        if let Ok(per) = &mut measured {
            per.push(Some(
                (counts[1] as f64 - counts[0] as f64) / (big - small) as f64,
            ));
        }
    }
    if o.callgrind_dir.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    measured
}

/// `cpu`: a no-op handler on a zero-latency endpoint at concurrency 100 (the CPU-bound case):
/// CPU per message of the consumer process in wall-clock runs, and instructions per message
/// under callgrind (the difference of two runs of different lengths, so that start-up and
/// shutdown cancel out).
pub(crate) async fn cpu(o: &Options) -> Result<(), String> {
    let env = Env::start(&o.latency_or("none"))?;
    let c = 100;
    println!(
        "scenario cpu: no-op handler, concurrency {c}, sqs-local latency {:?}",
        env.latency
    );
    let n = o.scaled(30_000);
    let plan = [(Engine::Batch, c, n), (Engine::Handler, c, n)];
    let results = env.rounds(o.rounds, &plan, NO_OP).await?;
    print_table(&results);
    let (Some(ours), Some(theirs)) = (
        results.get(&(Engine::Handler, c)),
        results.get(&(Engine::Batch, c)),
    ) else {
        return Err("cpu: a run is missing".to_owned());
    };

    let variants = [Engine::Batch, Engine::Handler, Engine::Bare].map(|e| Variant {
        file: e.name().to_owned(),
        label: e.label().to_owned(),
        engine: e,
        load: NO_OP,
    });
    let counts = instructions_per_message(&env, o, c, &variants).await?;
    let instructions: BTreeMap<Engine, f64> = variants
        .iter()
        .zip(counts)
        .filter_map(|(v, i)| Some((v.engine, i?)))
        .collect();
    let instr = |e: Engine| instructions.get(&e).copied();
    let fmt0 = |v: Option<f64>| v.map_or("n/a".to_owned(), |v| format!("{v:.0}"));
    let ratio = |e: Engine| match (instr(e), instr(Engine::Batch)) {
        (Some(a), Some(b)) => format!("{:.3}", a / b),
        _ => "n/a".to_owned(),
    };
    println!(
        "RESULT scenario=cpu instr_per_msg={} raw_instr_per_msg={} instr_ratio_vs_raw={} no_attributes_instr_per_msg={} no_attributes_instr_ratio_vs_raw={} cpu_us_per_msg={:.1} raw_cpu_us_per_msg={:.1} cpu_ratio_vs_raw={:.3} throughput_ratio_vs_raw={:.2} latency={}",
        fmt0(instr(Engine::Handler)),
        fmt0(instr(Engine::Batch)),
        ratio(Engine::Handler),
        fmt0(instr(Engine::Bare)),
        ratio(Engine::Bare),
        ours.cpu_us_per_msg(),
        theirs.cpu_us_per_msg(),
        ours.cpu_us_per_msg() / theirs.cpu_us_per_msg(),
        ours.rate() / theirs.rate(),
        env.latency
    );
    Ok(())
}

/// The median of some figures.
fn median_of(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// `telemetry`: the `cpu` scenario's sqs-handler run (a no-op handler on a zero-latency
/// endpoint, concurrency 100) with nothing observing it, with a subscriber and a recorder that
/// do nothing, and with the OpenTelemetry SDK layer and the Prometheus recorder: throughput and
/// CPU per message against the first, in interleaved rounds (each round in a rotated order),
/// and instructions per message under callgrind.
pub(crate) async fn telemetry(o: &Options) -> Result<(), String> {
    let env = Env::start(&o.latency_or("none"))?;
    let c = 100;
    let n = o.scaled(30_000);
    println!(
        "scenario telemetry: no-op handler, concurrency {c}, {n} messages a run, sqs-local latency {:?}, {} rounds",
        env.latency, o.rounds
    );
    let modes = Telemetry::ALL;
    let mut runs: BTreeMap<Telemetry, Vec<Run>> = BTreeMap::new();
    for round in 0..o.rounds.max(1) {
        for k in 0..modes.len() {
            let t = modes[(round + k) % modes.len()];
            let load = Load {
                telemetry: t,
                ..NO_OP
            };
            let (r, _) = env.run(Engine::Handler, c, n, load, &[]).await?;
            println!(
                "  round {}: {:<34} {:>9.0} msg/s  {:>6.1} µs CPU/msg",
                round + 1,
                t.label(),
                r.rate(),
                r.cpu_us_per_msg()
            );
            runs.entry(t).or_default().push(r);
        }
    }
    let rate = |t: Telemetry| median_of(runs[&t].iter().map(Run::rate).collect());
    let cpu = |t: Telemetry| median_of(runs[&t].iter().map(Run::cpu_us_per_msg).collect());

    let variants = modes.map(|t| Variant {
        file: format!("handler-{}", t.name()),
        label: t.label().to_owned(),
        engine: Engine::Handler,
        load: Load {
            telemetry: t,
            ..NO_OP
        },
    });
    let counts = instructions_per_message(&env, o, c, &variants).await?;
    let instr: BTreeMap<Telemetry, f64> = modes
        .iter()
        .zip(counts)
        .filter_map(|(&t, i)| Some((t, i?)))
        .collect();

    let fmt0 = |v: Option<f64>| v.map_or("n/a".to_owned(), |v| format!("{v:.0}"));
    let fmt3 = |v: Option<f64>| v.map_or("n/a".to_owned(), |v| format!("{v:.3}"));
    let instr_ratio = |t: Telemetry| Some(instr.get(&t)? / instr.get(&Telemetry::Off)?);
    println!();
    println!(
        "| telemetry | msg/s (median) | msg/s of the rounds | throughput vs off | consumer CPU µs/msg | CPU vs off | instructions/msg | instructions vs off |"
    );
    println!("|---|---:|---|---:|---:|---:|---:|---:|");
    for t in modes {
        let rounds: Vec<String> = runs[&t]
            .iter()
            .map(|r| format!("{:.0}", r.rate()))
            .collect();
        println!(
            "| {} | {:.0} | {} | {:.3} | {:.1} | {:.3} | {} | {} |",
            t.label(),
            rate(t),
            rounds.join(", "),
            rate(t) / rate(Telemetry::Off),
            cpu(t),
            cpu(t) / cpu(Telemetry::Off),
            fmt0(instr.get(&t).copied()),
            fmt3(instr_ratio(t)),
        );
    }
    let (off, noop, real) = (Telemetry::Off, Telemetry::Noop, Telemetry::Real);
    println!(
        "RESULT scenario=telemetry ratio_noop={:.3} ratio_real={:.3} msg_per_s_off={:.0} msg_per_s_noop={:.0} msg_per_s_real={:.0} cpu_us_per_msg_off={:.1} cpu_us_per_msg_noop={:.1} cpu_us_per_msg_real={:.1} cpu_ratio_noop={:.3} cpu_ratio_real={:.3} instr_per_msg_off={} instr_per_msg_noop={} instr_per_msg_real={} instr_ratio_noop={} instr_ratio_real={} latency={}",
        rate(noop) / rate(off),
        rate(real) / rate(off),
        rate(off),
        rate(noop),
        rate(real),
        cpu(off),
        cpu(noop),
        cpu(real),
        cpu(noop) / cpu(off),
        cpu(real) / cpu(off),
        fmt0(instr.get(&off).copied()),
        fmt0(instr.get(&noop).copied()),
        fmt0(instr.get(&real).copied()),
        fmt3(instr_ratio(noop)),
        fmt3(instr_ratio(real)),
        env.latency
    );
    Ok(())
}
