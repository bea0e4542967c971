//! Scenarios that run the consumer in this process, to watch it while it runs: long handlers
//! (in-flight messages and visibility extensions over time) and many idle queues.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_sqs::Client;
use aws_sdk_sqs::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_sqs::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_sqs::types::QueueAttributeName;
use sqs_handler::{MessageId, QueueOptions, ReceiveCount, SqsConsumer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::chart::{self, Panel, Series};
use crate::scenarios::Options;
use crate::server::{ChildServer, client, create, send_all, status_field};

/// Request counters of an sqs-local endpoint by operation (`GET /_sqs-local/stats`).
async fn server_stats(endpoint: &str) -> Result<HashMap<String, u64>, String> {
    let addr = endpoint
        .strip_prefix("http://")
        .ok_or("not an http endpoint")?
        .trim_end_matches('/');
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("stats: {e}"))?;
    let req =
        format!("GET /_sqs-local/stats HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes())
        .await
        .map_err(|e| format!("stats: {e}"))?;
    let mut out = String::new();
    s.read_to_string(&mut out)
        .await
        .map_err(|e| format!("stats: {e}"))?;
    let body = out.split("\r\n\r\n").nth(1).ok_or("stats: no body")?;
    let json: serde_json::Value = serde_json::from_str(body).map_err(|e| format!("stats: {e}"))?;
    Ok(json["calls"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default())
}

fn calls(stats: &HashMap<String, u64>, op: &str) -> u64 {
    stats.get(op).copied().unwrap_or(0)
}

/// The visibility calls a client sent: each ChangeMessageVisibilityBatch with its time and
/// number of entries (read from the request body), and ChangeMessageVisibility calls.
#[derive(Debug)]
struct VisibilityLog {
    start: Instant,
    batches: Mutex<Vec<(f64, usize)>>,
    singles: AtomicUsize,
}

#[derive(Debug, Clone)]
struct CountVisibility(Arc<VisibilityLog>);

impl Intercept for CountVisibility {
    fn name(&self) -> &'static str {
        "CountVisibility"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), aws_sdk_sqs::error::BoxError> {
        let request = context.request();
        match request.headers().get("x-amz-target") {
            Some("AmazonSQS.ChangeMessageVisibilityBatch") => {
                let entries = request
                    .body()
                    .bytes()
                    .and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok())
                    .and_then(|v| v["Entries"].as_array().map(Vec::len))
                    .unwrap_or(0);
                let t = self.0.start.elapsed().as_secs_f64();
                self.0
                    .batches
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((t, entries));
            }
            Some("AmazonSQS.ChangeMessageVisibility") => {
                self.0.singles.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
        Ok(())
    }
}

/// `long`: `messages` handlers of `handler_secs` each, all in flight at once, on a queue with a
/// visibility timeout of `visibility_secs`: no message may be delivered twice, and the
/// heartbeat's extensions are counted at the server (calls) and on the wire (entries per call).
pub(crate) async fn long(
    o: &Options,
    messages: usize,
    handler_secs: u64,
    visibility_secs: u64,
) -> Result<(), String> {
    let latency = o.latency.clone().unwrap_or_else(|| "aws".to_owned());
    let server = ChildServer::start_with(&latency)?;
    let endpoint = server.endpoint.clone();
    let plain = client(&endpoint);
    let log = Arc::new(VisibilityLog {
        start: Instant::now(),
        batches: Mutex::default(),
        singles: AtomicUsize::new(0),
    });
    let config = aws_sdk_sqs::config::Builder::from(&sqs_local::sdk_config_for(&endpoint))
        .interceptor(CountVisibility(log.clone()))
        .build();
    let counted = Client::from_conf(config);
    println!(
        "scenario long: {messages} messages, handlers of {handler_secs} s, visibility timeout {visibility_secs} s, sqs-local latency {latency:?}"
    );
    let queue = format!("long-{}", std::process::id());
    let url = plain
        .create_queue()
        .queue_name(&queue)
        .attributes(
            QueueAttributeName::VisibilityTimeout,
            visibility_secs.to_string(),
        )
        .send()
        .await
        .map_err(|e| format!("CreateQueue: {e:?}"))?
        .queue_url
        .unwrap_or_default();
    send_all(&plain, &url, messages, 32, "{\"job\":\"long\"}").await?;

    let deliveries: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let redelivered = Arc::new(AtomicUsize::new(0));
    let running = Arc::new(AtomicUsize::new(0));
    let work = Duration::from_secs(handler_secs);
    let consumer = SqsConsumer::builder_with_client(counted)
        .discover(false)
        .queue(
            &queue,
            QueueOptions::default()
                .concurrency(messages)
                .wait_time(Duration::from_secs(1)),
        )
        .handler(&queue, {
            let (deliveries, redelivered, running) =
                (deliveries.clone(), redelivered.clone(), running.clone());
            move |MessageId(id): MessageId, ReceiveCount(count): ReceiveCount| {
                let (deliveries, redelivered, running) =
                    (deliveries.clone(), redelivered.clone(), running.clone());
                async move {
                    *deliveries
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .entry(id)
                        .or_default() += 1;
                    if count > 1 {
                        redelivered.fetch_add(1, Ordering::Relaxed);
                    }
                    running.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(work).await;
                    running.fetch_sub(1, Ordering::Relaxed);
                }
            }
        })
        .build()
        .await
        .map_err(|e| e.to_string())?;
    let status = consumer.status();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let start = Instant::now();
    let t0 = log.start.elapsed().as_secs_f64();
    let run = tokio::spawn(consumer.run_until(async move {
        let _ = stopped.await;
    }));
    // In-flight handlers and server-counted extension calls, every half second.
    let mut samples: Vec<(f64, f64, f64)> = Vec::new();
    let limit = Duration::from_secs(handler_secs * 3 + 120);
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tick.tick().await;
        let stats = server_stats(&endpoint).await?;
        let t = start.elapsed().as_secs_f64();
        samples.push((
            t,
            running.load(Ordering::Relaxed) as f64,
            calls(&stats, "ChangeMessageVisibilityBatch") as f64,
        ));
        if status.queue(&queue).map_or(0, |s| s.deleted) >= messages as u64 {
            break;
        }
        if start.elapsed() > limit {
            return Err(format!("long: not every message was deleted in {limit:?}"));
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let _ = stop.send(());
    run.await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let stats = server_stats(&endpoint).await?;
    let left = plain
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .map_err(|e| format!("GetQueueAttributes: {e:?}"))?;
    let attr = |name: QueueAttributeName| {
        left.attributes()
            .and_then(|a| a.get(&name))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(u64::MAX)
    };
    let left = attr(QueueAttributeName::ApproximateNumberOfMessages).saturating_add(attr(
        QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
    ));

    let deliveries = deliveries.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let handled: u32 = deliveries.values().sum();
    let twice = deliveries.values().filter(|n| **n > 1).count();
    let batches = log
        .batches
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let entries: usize = batches.iter().map(|(_, n)| n).sum();
    let full = batches.iter().filter(|(_, n)| *n == 10).count();
    let server_batches = calls(&stats, "ChangeMessageVisibilityBatch");
    let server_singles = calls(&stats, "ChangeMessageVisibility");
    println!(
        "handled {handled} deliveries of {} distinct messages in {seconds:.1} s; {twice} delivered more than once; {} with a receive count above 1; {left} left in the queue",
        deliveries.len(),
        redelivered.load(Ordering::Relaxed)
    );
    println!(
        "visibility extensions: {server_batches} ChangeMessageVisibilityBatch calls at the server ({} sent by the consumer, {entries} entries, {full} of 10 entries), {server_singles} ChangeMessageVisibility calls; ReceiveMessage calls {}, DeleteMessageBatch calls {}",
        batches.len(),
        calls(&stats, "ReceiveMessage"),
        calls(&stats, "DeleteMessageBatch"),
    );

    // Extension calls per second, from the consumer's log (the server counts the same calls).
    let end = seconds.ceil() as usize + 1;
    let mut per_second = vec![0.0; end];
    for (t, _) in &batches {
        let i = (t - t0).max(0.0).floor() as usize;
        if let Some(v) = per_second.get_mut(i) {
            *v += 1.0;
        }
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("long_handlers.svg");
    chart::write(
        &path,
        &[
            Panel {
                title: format!(
                    "{messages} handlers of {handler_secs} s, visibility timeout {visibility_secs} s: messages in flight"
                ),
                x_label: "seconds since the consumer started".to_owned(),
                y_label: "handlers running".to_owned(),
                log_x: false,
                series: vec![Series {
                    label: "handlers running".to_owned(),
                    color: "#d62728",
                    points: samples.iter().map(|(t, r, _)| (*t, *r)).collect(),
                }],
            },
            Panel {
                title: "Visibility extensions: ChangeMessageVisibilityBatch calls".to_owned(),
                x_label: "seconds since the consumer started".to_owned(),
                y_label: "calls".to_owned(),
                log_x: false,
                series: vec![
                    Series {
                        label: "calls in each second".to_owned(),
                        color: "#1f77b4",
                        points: per_second
                            .iter()
                            .enumerate()
                            .map(|(i, v)| (i as f64, *v))
                            .collect(),
                    },
                    Series {
                        label: "calls so far / 10 (server)".to_owned(),
                        color: "#7f7f7f",
                        points: samples.iter().map(|(t, _, c)| (*t, c / 10.0)).collect(),
                    },
                ],
            },
        ],
    )?;
    println!("chart: {}", path.display());
    let per_call = if batches.is_empty() {
        0.0
    } else {
        entries as f64 / batches.len() as f64
    };
    println!(
        "RESULT scenario=long messages={messages} handled={handled} delivered_twice={twice} redelivered={} left={left} extension_calls={server_batches} single_extension_calls={server_singles} entries_per_call={per_call:.2} full_batches={full} seconds={seconds:.1} latency={latency}",
        redelivered.load(Ordering::Relaxed)
    );
    if twice > 0 || handled as usize != messages || left != 0 {
        return Err(format!(
            "long: {twice} messages delivered twice, {handled} handled of {messages}, {left} left"
        ));
    }
    Ok(())
}

/// `many`: one consumer for `queues` idle queues: how fast build() resolves them, receives per
/// minute per queue over a window of `window_secs` (after `warmup_secs`), and the process's
/// resident memory, tasks and threads.
pub(crate) async fn many(
    o: &Options,
    queues: usize,
    warmup_secs: u64,
    window_secs: u64,
) -> Result<(), String> {
    let latency = o.latency.clone().unwrap_or_else(|| "aws".to_owned());
    let spec: sqs_local::Latency = latency.parse().map_err(|e| format!("{e}"))?;
    let server = ChildServer::start_with(&latency)?;
    let endpoint = server.endpoint.clone();
    let client = client(&endpoint);
    println!("scenario many: {queues} idle queues in one consumer, sqs-local latency {latency:?}");
    let names: Vec<String> = (0..queues)
        .map(|i| format!("many-{i}-{}", std::process::id()))
        .collect();
    for name in &names {
        create(&client, name).await?;
    }
    let metrics = tokio::runtime::Handle::current().metrics();
    let rss = || status_field("self", "VmRSS:").unwrap_or(0) as f64 / 1024.0;
    let threads = || status_field("self", "Threads:").unwrap_or(0);
    let (rss0, tasks0, threads0) = (rss(), metrics.num_alive_tasks(), threads());
    let before = server_stats(&endpoint).await?;
    let mut builder = SqsConsumer::builder_with_client(client.clone()).discover(false);
    for name in &names {
        builder = builder.handler(name, || async {});
    }
    let build_start = Instant::now();
    let consumer = builder.build().await.map_err(|e| e.to_string())?;
    let build_ms = build_start.elapsed().as_secs_f64() * 1e3;
    let built = server_stats(&endpoint).await?;
    let resolved = |op: &str| calls(&built, op) - calls(&before, op);
    // What resolving one queue after another would take at least: each queue's GetQueueUrl
    // and GetQueueAttributes at their shortest latency.
    let serial_ms = queues as f64
        * (spec.delay(sqs_local::Operation::GetQueueUrl).min()
            + spec.delay(sqs_local::Operation::GetQueueAttributes).min())
        .as_secs_f64()
        * 1e3;
    println!(
        "build(): {build_ms:.0} ms for {queues} queues ({} GetQueueUrl, {} GetQueueAttributes calls); one after another would take at least {serial_ms:.0} ms",
        resolved("GetQueueUrl"),
        resolved("GetQueueAttributes")
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(consumer.run_until(async move {
        let _ = stopped.await;
    }));
    tokio::time::sleep(Duration::from_secs(warmup_secs)).await;
    let a = server_stats(&endpoint).await?;
    tokio::time::sleep(Duration::from_secs(window_secs)).await;
    let b = server_stats(&endpoint).await?;
    let (rss1, tasks1, threads1) = (rss(), metrics.num_alive_tasks(), threads());
    let _ = stop.send(());
    run.await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let receives = calls(&b, "ReceiveMessage") - calls(&a, "ReceiveMessage");
    let per_min = receives as f64 * 60.0 / window_secs as f64 / queues as f64;
    let other = b.values().sum::<u64>() - a.values().sum::<u64>() - receives;
    println!(
        "idle: {receives} ReceiveMessage calls in {window_secs} s ({per_min:.2} per queue per minute), {other} other calls"
    );
    println!(
        "process: RSS {rss0:.1} MiB before build, {rss1:.1} MiB idle ({:.1} KiB per queue); tokio tasks {tasks0} -> {tasks1}; threads {threads0} -> {threads1}",
        (rss1 - rss0) * 1024.0 / queues as f64
    );
    println!(
        "RESULT scenario=many queues={queues} receives_per_min_per_queue={per_min:.2} build_ms={build_ms:.0} serial_min_ms={serial_ms:.0} build_concurrent={} rss_mib={rss1:.1} rss_delta_mib={:.1} tasks={tasks1} tasks_per_queue={:.1} threads={threads1} latency={latency}",
        build_ms < serial_ms,
        rss1 - rss0,
        tasks1.saturating_sub(tasks0) as f64 / queues as f64
    );
    for name in &names {
        if let Ok(out) = client.get_queue_url().queue_name(name).send().await
            && let Some(url) = out.queue_url
        {
            let _ = client.delete_queue().queue_url(url).send().await;
        }
    }
    Ok(())
}
