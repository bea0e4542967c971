//! The consumer benchmark: sqs-handler against hand-written aws-sdk-sqs loops and the
//! original's engine (bbc/sqs-consumer), on the same endpoint in one run.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::DeleteMessageBatchRequestEntry;
use sqs_handler::{Body, QueueOptions, SqsConsumer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::server::{ChildServer, client, cpu_seconds_of, create, send_all};

/// Options of the consumer benchmark.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) messages: usize,
    pub(crate) endpoint: Option<String>,
    pub(crate) idle_seconds: u64,
    pub(crate) latency_samples: usize,
    pub(crate) node_messages: usize,
    /// Concurrency levels to run (default 1, 10, 100).
    pub(crate) levels: Vec<usize>,
    /// Engines to run: `each`, `batch`, `handler`, `node` (default all).
    pub(crate) engines: Vec<String>,
    /// Rounds: the engines run interleaved this many times; each figure is the median round.
    pub(crate) rounds: usize,
}

/// The run with the median rate.
fn median(mut runs: Vec<Run>) -> Run {
    runs.sort_by(|a, b| a.rate().total_cmp(&b.rate()));
    runs[runs.len() / 2]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Engine {
    RawDeleteEach,
    RawDeleteBatch,
    SqsHandler,
    SqsConsumerDefault,
    SqsConsumerBatch10,
}

impl Engine {
    fn label(self) -> &'static str {
        match self {
            Engine::RawDeleteEach => "raw: receive 10, delete each",
            Engine::RawDeleteBatch => "raw: receive 10, delete batch",
            Engine::SqsHandler => "sqs-handler",
            Engine::SqsConsumerDefault => "sqs-consumer (defaults)",
            Engine::SqsConsumerBatch10 => "sqs-consumer (batchSize 10)",
        }
    }
}

/// One measured run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Run {
    pub(crate) messages: usize,
    pub(crate) seconds: f64,
    pub(crate) cpu_seconds: f64,
    pub(crate) api_calls: Option<u64>,
}

impl Run {
    pub(crate) fn rate(&self) -> f64 {
        self.messages as f64 / self.seconds
    }
    fn calls_per_msg(&self) -> Option<f64> {
        self.api_calls.map(|c| c as f64 / self.messages as f64)
    }
    fn cpu_us_per_msg(&self) -> f64 {
        self.cpu_seconds * 1e6 / self.messages as f64
    }
}

/// Request counters of an sqs-local endpoint (`GET /_sqs-local/stats`); `None` elsewhere.
pub(crate) async fn server_calls(endpoint: &str) -> Option<(u64, u64)> {
    let addr = endpoint.strip_prefix("http://")?.trim_end_matches('/');
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    let req =
        format!("GET /_sqs-local/stats HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).await.ok()?;
    let json: serde_json::Value = serde_json::from_str(out.split("\r\n\r\n").nth(1)?).ok()?;
    let receives = json["calls"]["ReceiveMessage"].as_u64().unwrap_or(0);
    Some((json["total"].as_u64()?, receives))
}

fn self_cpu() -> f64 {
    cpu_seconds_of("self").unwrap_or(0.0)
}

/// Raw aws-sdk-sqs loop: `ceil(c/10)` workers, each receiving up to `min(10, c)`, running the
/// handler (a sleep of `work`, zero for none) on the received messages concurrently, then
/// deleting them.
pub(crate) async fn raw(
    client: &Client,
    url: &str,
    c: usize,
    n: usize,
    batch_delete: bool,
    work: Duration,
) -> Result<f64, String> {
    let workers = c.div_ceil(10).max(1);
    let per = c.clamp(1, 10) as i32;
    let done = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(tokio::sync::Notify::new());
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (client, url, done, finished) = (
            client.clone(),
            url.to_owned(),
            done.clone(),
            finished.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while done.load(Ordering::Relaxed) < n {
                let out = client
                    .receive_message()
                    .queue_url(&url)
                    .max_number_of_messages(per)
                    .wait_time_seconds(1)
                    .send()
                    .await;
                let Ok(out) = out else { continue };
                let messages = out.messages();
                if messages.is_empty() {
                    continue;
                }
                if !work.is_zero() {
                    futures_util::future::join_all(
                        messages.iter().map(|_| tokio::time::sleep(work)),
                    )
                    .await;
                }
                if batch_delete {
                    let entries: Vec<_> = messages
                        .iter()
                        .enumerate()
                        .filter_map(|(i, m)| {
                            DeleteMessageBatchRequestEntry::builder()
                                .id(i.to_string())
                                .receipt_handle(m.receipt_handle().unwrap_or_default())
                                .build()
                                .ok()
                        })
                        .collect();
                    let _ = client
                        .delete_message_batch()
                        .queue_url(&url)
                        .set_entries(Some(entries))
                        .send()
                        .await;
                } else {
                    for m in messages {
                        let _ = client
                            .delete_message()
                            .queue_url(&url)
                            .receipt_handle(m.receipt_handle().unwrap_or_default())
                            .send()
                            .await;
                    }
                }
                if done.fetch_add(messages.len(), Ordering::Relaxed) + messages.len() >= n {
                    finished.notify_one();
                }
            }
        }));
    }
    let waited = tokio::time::timeout(Duration::from_secs(900), finished.notified()).await;
    let secs = start.elapsed().as_secs_f64();
    for t in tasks {
        t.abort();
    }
    waited.map_err(|_| format!("raw loop did not finish {n} messages in 900 s"))?;
    Ok(secs)
}

/// sqs-handler with a no-op handler at concurrency `c`: the time until SQS has confirmed the
/// last delete (as the raw loops' time ends with their last delete).
async fn handler(client: &Client, queue: &str, c: usize, n: usize) -> Result<f64, String> {
    let count = Arc::new(AtomicUsize::new(0));
    let counted = count.clone();
    let consumer = SqsConsumer::builder_with_client(client.clone())
        .discover(false)
        .queue(queue, QueueOptions::default().concurrency(c))
        .handler(queue, move || {
            let count = counted.clone();
            async move {
                count.fetch_add(1, Ordering::Relaxed);
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
    let deadline = Instant::now() + Duration::from_secs(900);
    while status.queue(queue).map_or(0, |s| s.deleted) < n as u64 {
        if Instant::now() > deadline {
            return Err(format!("sqs-handler did not delete {n} messages in 900 s"));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let secs = start.elapsed().as_secs_f64();
    let _ = stop.send(());
    run.await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let got = count.load(Ordering::Relaxed);
    if got != n {
        return Err(format!("sqs-handler handled {got} messages, expected {n}"));
    }
    Ok(secs)
}

async fn measure(
    client: &Client,
    endpoint: &str,
    engine: Engine,
    c: usize,
    n: usize,
) -> Result<Run, String> {
    let name = format!("bench-{}-{c}-{}", engine as u8, std::process::id());
    let url = create(client, &name).await?;
    send_all(client, &url, n, 8, "{\"job\":\"no-op\"}").await?;
    let calls0 = server_calls(endpoint).await;
    let cpu0 = self_cpu();
    let seconds = match engine {
        Engine::RawDeleteEach => raw(client, &url, c, n, false, Duration::ZERO).await?,
        Engine::RawDeleteBatch => raw(client, &url, c, n, true, Duration::ZERO).await?,
        Engine::SqsHandler => handler(client, &name, c, n).await?,
        Engine::SqsConsumerDefault | Engine::SqsConsumerBatch10 => {
            return Err("sqs-consumer runs through node".to_owned());
        }
    };
    let cpu_seconds = self_cpu() - cpu0;
    let api_calls = match (calls0, server_calls(endpoint).await) {
        (Some((a, _)), Some((b, _))) => Some(b.saturating_sub(a)),
        _ => None,
    };
    let _ = client.delete_queue().queue_url(&url).send().await;
    Ok(Run {
        messages: n,
        seconds,
        cpu_seconds,
        api_calls,
    })
}

/// sqs-consumer through node, when node and npm are installed.
pub(crate) async fn node_run(
    client: &Client,
    endpoint: &str,
    batch: usize,
    n: usize,
) -> Result<Option<Run>, String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("node");
    let has = |cmd: &str| {
        std::process::Command::new(cmd)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !has("node") || !has("npm") {
        println!("sqs-consumer skipped: node and npm are needed (apt-get install nodejs npm)");
        return Ok(None);
    }
    if !dir.join("node_modules/sqs-consumer").exists() {
        println!("installing sqs-consumer with npm ci in {}", dir.display());
        let st = tokio::process::Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir)
            .status()
            .await
            .map_err(|e| e.to_string())?;
        if !st.success() {
            return Err("npm ci failed in benches/node".to_owned());
        }
    }
    let name = format!("bench-node-{batch}-{}", std::process::id());
    let url = create(client, &name).await?;
    send_all(client, &url, n, 8, "{\"job\":\"no-op\"}").await?;
    let calls0 = server_calls(endpoint).await;
    let out = tokio::process::Command::new("node")
        .args([
            "consume.mjs",
            endpoint,
            &url,
            &n.to_string(),
            &batch.to_string(),
        ])
        .current_dir(&dir)
        .output()
        .await
        .map_err(|e| format!("cannot run node: {e}"))?;
    let calls1 = server_calls(endpoint).await;
    let _ = client.delete_queue().queue_url(&url).send().await;
    if !out.status.success() {
        return Err(format!(
            "sqs-consumer run failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let json: serde_json::Value = serde_json::from_slice(out.stdout.trim_ascii())
        .map_err(|e| format!("sqs-consumer printed no result: {e}"))?;
    Ok(Some(Run {
        messages: json["messages"].as_u64().unwrap_or(0) as usize,
        seconds: json["seconds"].as_f64().unwrap_or(f64::NAN),
        cpu_seconds: json["cpu_seconds"].as_f64().unwrap_or(f64::NAN),
        api_calls: match (calls0, calls1) {
            (Some((a, _)), Some((b, _))) => Some(b.saturating_sub(a)),
            _ => None,
        },
    }))
}

/// ReceiveMessage calls per minute of sqs-handler on an empty queue.
async fn idle(client: &Client, endpoint: &str, seconds: u64) -> Result<Option<f64>, String> {
    let name = format!("bench-idle-{}", std::process::id());
    let url = create(client, &name).await?;
    let consumer = SqsConsumer::builder_with_client(client.clone())
        .discover(false)
        .handler(&name, || async {})
        .build()
        .await
        .map_err(|e| e.to_string())?;
    let before = server_calls(endpoint).await;
    let run = tokio::spawn(consumer.run_until(tokio::time::sleep(Duration::from_secs(seconds))));
    run.await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let after = server_calls(endpoint).await;
    let _ = client.delete_queue().queue_url(&url).send().await;
    Ok(match (before, after) {
        (Some((_, a)), Some((_, b))) => Some((b - a) as f64 * 60.0 / seconds as f64),
        _ => None,
    })
}

/// Send-to-handler latency under light load: one message every 5 ms.
async fn latency(client: &Client, samples: usize) -> Result<(f64, f64), String> {
    let name = format!("bench-latency-{}", std::process::id());
    let url = create(client, &name).await?;
    let seen: Arc<std::sync::Mutex<Vec<f64>>> = Arc::default();
    let (seen2, finished) = (seen.clone(), Arc::new(tokio::sync::Notify::new()));
    let finished2 = finished.clone();
    let consumer = SqsConsumer::builder_with_client(client.clone())
        .discover(false)
        .queue(&name, QueueOptions::default().concurrency(10))
        .handler(&name, move |Body(b): Body| {
            let (seen, finished) = (seen2.clone(), finished2.clone());
            async move {
                let sent: u128 = b.parse().unwrap_or(0);
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or(0);
                let mut v = seen.lock().unwrap_or_else(|e| e.into_inner());
                v.push(now.saturating_sub(sent) as f64 / 1e6);
                if v.len() == samples {
                    finished.notify_one();
                }
            }
        })
        .build()
        .await
        .map_err(|e| e.to_string())?;
    let done = finished.clone();
    let run = tokio::spawn(consumer.run_until(async move { done.notified().await }));
    // Let the consumer's first long poll start.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for _ in 0..samples {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        client
            .send_message()
            .queue_url(&url)
            .message_body(now.to_string())
            .send()
            .await
            .map_err(|e| format!("SendMessage: {e:?}"))?;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    run.await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let _ = client.delete_queue().queue_url(&url).send().await;
    let mut v = seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
    v.sort_by(f64::total_cmp);
    let pct = |p: f64| v[((v.len() as f64 - 1.0) * p).round() as usize];
    Ok((pct(0.5), pct(0.99)))
}

fn svg(results: &BTreeMap<(Engine, usize), Run>, path: &Path) -> std::io::Result<()> {
    let (w, h, left, bottom, top, right) = (780.0, 420.0, 70.0, 50.0, 30.0, 280.0);
    let xs = [1usize, 10, 100];
    let max = results.values().map(Run::rate).fold(1.0, f64::max) * 1.1;
    let x = |i: usize| left + (w - left - right) * i as f64 / 2.0;
    let y = |v: f64| top + (h - top - bottom) * (1.0 - v / max);
    let mut out = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">"#
    );
    out.push_str(&format!(r#"<rect width="{w}" height="{h}" fill="white"/><text x="{left}" y="18" font-size="14">Throughput (messages/s) against concurrency, no-op handler, sqs-local</text>"#));
    for t in 0..=4 {
        let v = max * t as f64 / 4.0;
        out.push_str(&format!(r##"<line x1="{left}" x2="{}" y1="{y}" y2="{y}" stroke="#ddd"/><text x="{}" y="{}" text-anchor="end">{:.0}</text>"##, w - right, left - 6.0, y(v) + 4.0, v, y = y(v)));
    }
    for (i, c) in xs.iter().enumerate() {
        out.push_str(&format!(
            r#"<text x="{}" y="{}" text-anchor="middle">{c}</text>"#,
            x(i),
            h - bottom + 18.0
        ));
    }
    out.push_str(&format!(
        r#"<text x="{}" y="{}" text-anchor="middle">concurrency</text>"#,
        (left + w - right) / 2.0,
        h - 10.0
    ));
    let colors = [
        (Engine::SqsHandler, "#d62728"),
        (Engine::RawDeleteBatch, "#1f77b4"),
        (Engine::RawDeleteEach, "#7f7f7f"),
    ];
    for (k, (engine, color)) in colors.iter().enumerate() {
        let pts: Vec<String> = xs
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                results
                    .get(&(*engine, *c))
                    .map(|r| format!("{:.1},{:.1}", x(i), y(r.rate())))
            })
            .collect();
        out.push_str(&format!(
            r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
            pts.join(" ")
        ));
        for p in &pts {
            let (px, py) = p.split_once(',').unwrap_or(("0", "0"));
            out.push_str(&format!(
                r#"<circle cx="{px}" cy="{py}" r="3" fill="{color}"/>"#
            ));
        }
        let ly = top + 20.0 + 20.0 * k as f64;
        out.push_str(&format!(r#"<line x1="{}" x2="{}" y1="{ly}" y2="{ly}" stroke="{color}" stroke-width="2"/><text x="{}" y="{}">{}</text>"#, w - right + 10.0, w - right + 30.0, w - right + 36.0, ly + 4.0, engine.label()));
    }
    for (k, engine) in [Engine::SqsConsumerDefault, Engine::SqsConsumerBatch10]
        .iter()
        .enumerate()
    {
        if let Some(r) = results.get(&(*engine, 0)) {
            let ly = top + 90.0 + 20.0 * k as f64;
            out.push_str(&format!(
                r#"<text x="{}" y="{ly}">{}: {:.0}/s</text>"#,
                w - right + 10.0,
                engine.label(),
                r.rate()
            ));
        }
    }
    out.push_str("</svg>\n");
    std::fs::write(path, out)
}

/// The whole suite.
pub(crate) async fn run(opts: Options) -> Result<(), String> {
    let child = match &opts.endpoint {
        Some(_) => None,
        None => Some(ChildServer::start()?),
    };
    let endpoint = opts
        .endpoint
        .clone()
        .or_else(|| child.as_ref().map(|c| c.endpoint.clone()))
        .unwrap_or_default();
    let client = client(&endpoint);
    let n = opts.messages;
    println!(
        "sqs-handler-bench: {n} messages per run, no-op handler, endpoint {endpoint} ({})",
        if child.is_some() {
            "sqs-local in a child process"
        } else {
            "given"
        }
    );
    let mut results: BTreeMap<(Engine, usize), Run> = BTreeMap::new();
    let wanted = |name: &str| opts.engines.is_empty() || opts.engines.iter().any(|e| e == name);
    let mut rounds: BTreeMap<(Engine, usize), Vec<Run>> = BTreeMap::new();
    for round in 1..=opts.rounds.max(1) {
        for &c in &opts.levels {
            for (engine, name) in [
                (Engine::RawDeleteEach, "each"),
                (Engine::RawDeleteBatch, "batch"),
                (Engine::SqsHandler, "handler"),
            ] {
                if !wanted(name) {
                    continue;
                }
                let r = measure(&client, &endpoint, engine, c, n).await?;
                println!(
                    "  round {round}: {:<30} c={c:<3} {:>9.0} msg/s",
                    engine.label(),
                    r.rate()
                );
                rounds.entry((engine, c)).or_default().push(r);
            }
        }
    }
    for (key, runs) in rounds {
        results.insert(key, median(runs));
    }
    for (engine, batch) in [
        (Engine::SqsConsumerDefault, 1),
        (Engine::SqsConsumerBatch10, 10),
    ] {
        if !wanted("node") {
            continue;
        }
        if let Some(r) = node_run(&client, &endpoint, batch, opts.node_messages.min(n)).await? {
            println!("  {:<30}       {:>9.0} msg/s", engine.label(), r.rate());
            results.insert((engine, 0), r);
        }
    }
    let idle_rate = if opts.idle_seconds > 0 {
        idle(&client, &endpoint, opts.idle_seconds).await?
    } else {
        None
    };
    let (p50, p99) = if opts.latency_samples > 0 {
        latency(&client, opts.latency_samples).await?
    } else {
        (f64::NAN, f64::NAN)
    };

    println!();
    println!("| engine | concurrency | messages | msg/s | API calls/msg | consumer CPU µs/msg |");
    println!("|---|---:|---:|---:|---:|---:|");
    for ((engine, c), r) in &results {
        let calls = r
            .calls_per_msg()
            .map_or("n/a".to_owned(), |v| format!("{v:.3}"));
        let conc = if *c == 0 {
            "(its own)".to_owned()
        } else {
            c.to_string()
        };
        println!(
            "| {} | {conc} | {} | {:.0} | {calls} | {:.0} |",
            engine.label(),
            r.messages,
            r.rate(),
            r.cpu_us_per_msg()
        );
    }
    let idle_text = idle_rate.map_or("n/a".to_owned(), |v| format!("{v:.1}"));
    println!();
    println!(
        "idle queue: {idle_text} ReceiveMessage calls per minute ({} s measured)",
        opts.idle_seconds
    );
    println!(
        "send-to-handler latency, one message every 5 ms: p50 {p50:.2} ms, p99 {p99:.2} ms ({} samples)",
        opts.latency_samples
    );

    let (Some(ours), Some(raw_batch), Some(raw_each)) = (
        results.get(&(Engine::SqsHandler, 100)).copied(),
        results.get(&(Engine::RawDeleteBatch, 100)),
        results.get(&(Engine::RawDeleteEach, 100)),
    ) else {
        println!("(the RESULT line needs every engine at concurrency 100)");
        return Ok(());
    };
    let best_raw = raw_batch.rate().max(raw_each.rate());
    let ratio = |e: Engine| {
        results.get(&(e, 0)).map_or("n/a".to_owned(), |r| {
            format!("{:.2}", ours.rate() / r.rate())
        })
    };
    let chart = Path::new(env!("CARGO_MANIFEST_DIR")).join("throughput.svg");
    svg(&results, &chart).map_err(|e| format!("cannot write {}: {e}", chart.display()))?;
    println!("chart: {}", chart.display());
    println!(
        "RESULT ratio_vs_raw={:.2} ratio_vs_sqs_consumer={} ratio_vs_sqs_consumer_batch={} api_calls_per_msg={} idle_receives_per_min={idle_text} p50_ms={p50:.2}",
        ours.rate() / best_raw,
        ratio(Engine::SqsConsumerDefault),
        ratio(Engine::SqsConsumerBatch10),
        ours.calls_per_msg()
            .map_or("n/a".to_owned(), |v| format!("{v:.3}")),
    );
    Ok(())
}
