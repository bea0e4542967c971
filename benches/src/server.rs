//! sqs-local against the reference: throughput and memory.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, SendMessageBatchRequestEntry};

/// sqs-local in a child process, killed on drop.
pub(crate) struct ChildServer {
    child: Child,
    pub(crate) endpoint: String,
}

impl ChildServer {
    pub(crate) fn start() -> Result<Self, String> {
        Self::start_with("none")
    }

    /// sqs-local with a latency spec (`none`, `aws`, `receive=15ms,...`): see
    /// `sqs_local::Latency`.
    pub(crate) fn start_with(latency: &str) -> Result<Self, String> {
        let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
        let mut child = Command::new(exe)
            .args(["serve", "--latency", latency])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start the sqs-local child: {e}"))?;
        let stdout = child.stdout.take().ok_or("the child has no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| format!("cannot read the child's endpoint: {e}"))?;
        let endpoint = line.trim().to_owned();
        if !endpoint.starts_with("http://") {
            return Err(format!(
                "the child printed {endpoint:?} instead of its endpoint"
            ));
        }
        Ok(Self { child, endpoint })
    }

    /// Resident memory of the child, in bytes (Linux /proc).
    pub(crate) fn rss_bytes(&self) -> Option<u64> {
        status_field(&self.child.id().to_string(), "VmRSS:").map(|kb| kb * 1024)
    }

    /// CPU seconds the child has used (user + system).
    pub(crate) fn cpu_seconds(&self) -> Option<f64> {
        cpu_seconds_of(&self.child.id().to_string())
    }
}

/// A numeric field of `/proc/<pid>/status` (`VmRSS:`, `VmHWM:` in KiB, `Threads:`); `pid` may
/// be `self`.
pub(crate) fn status_field(pid: &str, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// CPU seconds (user + system) a process has used, from /proc; `pid` may be `self`.
pub(crate) fn cpu_seconds_of(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit(')').next()?.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // Clock ticks: 100 per second on Linux.
    Some((utime + stime) / 100.0)
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The child: serve until stdin closes or the parent kills it.
pub(crate) async fn serve_child(latency: &str) -> Result<(), String> {
    let latency: sqs_local::Latency = latency
        .parse()
        .map_err(|e| format!("--latency {latency:?}: {e}"))?;
    let server = sqs_local::LocalSqs::builder()
        .latency(latency)
        .start()
        .await
        .map_err(|e| format!("cannot start sqs-local: {e}"))?;
    println!("{}", server.endpoint_url());
    std::future::pending::<()>().await;
    Ok(())
}

pub(crate) fn client(endpoint: &str) -> Client {
    Client::new(&sqs_local::sdk_config_for(endpoint))
}

pub(crate) async fn create(client: &Client, name: &str) -> Result<String, String> {
    client
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .map_err(|e| format!("CreateQueue {name}: {e:?}"))?
        .queue_url
        .ok_or_else(|| "CreateQueue returned no URL".to_owned())
}

/// Sends `n` messages of `body` in batches of 10 from `workers` tasks; returns seconds taken.
pub(crate) async fn send_all(
    client: &Client,
    url: &str,
    n: usize,
    workers: usize,
    body: &str,
) -> Result<f64, String> {
    send_batches(client, url, n, workers, body, 10).await
}

/// Sends `n` messages of `body` in batches of `batch` (1 to 10; a batch holds at most 1 MiB)
/// from `workers` tasks; returns seconds taken.
pub(crate) async fn send_batches(
    client: &Client,
    url: &str,
    n: usize,
    workers: usize,
    body: &str,
    batch: usize,
) -> Result<f64, String> {
    let batch = batch.clamp(1, 10);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (client, url, next, body) = (
            client.clone(),
            url.to_owned(),
            next.clone(),
            body.to_owned(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let first = next.fetch_add(batch, Ordering::Relaxed);
                if first >= n {
                    return Ok::<(), String>(());
                }
                let entries = (first..(first + batch).min(n))
                    .map(|i| {
                        SendMessageBatchRequestEntry::builder()
                            .id(format!("m{i}"))
                            .message_body(&body)
                            .build()
                            .map_err(|e| e.to_string())
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let out = client
                    .send_message_batch()
                    .queue_url(&url)
                    .set_entries(Some(entries))
                    .send()
                    .await
                    .map_err(|e| format!("SendMessageBatch: {e:?}"))?;
                if !out.failed().is_empty() {
                    return Err(format!(
                        "SendMessageBatch entries failed: {:?}",
                        out.failed()
                    ));
                }
            }
        }));
    }
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    Ok(start.elapsed().as_secs_f64())
}

/// Receives and batch-deletes until `n` messages were consumed; returns seconds taken.
async fn consume_all(client: &Client, url: &str, n: usize, workers: usize) -> Result<f64, String> {
    let done = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (client, url, done) = (client.clone(), url.to_owned(), done.clone());
        tasks.push(tokio::spawn(async move {
            while done.load(Ordering::Relaxed) < n {
                let out = client
                    .receive_message()
                    .queue_url(&url)
                    .max_number_of_messages(10)
                    .wait_time_seconds(1)
                    .send()
                    .await
                    .map_err(|e| format!("ReceiveMessage: {e:?}"))?;
                let messages = out.messages();
                if messages.is_empty() {
                    continue;
                }
                let entries = messages
                    .iter()
                    .enumerate()
                    .map(|(i, m)| {
                        DeleteMessageBatchRequestEntry::builder()
                            .id(i.to_string())
                            .receipt_handle(m.receipt_handle().unwrap_or_default())
                            .build()
                            .map_err(|e| e.to_string())
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                client
                    .delete_message_batch()
                    .queue_url(&url)
                    .set_entries(Some(entries))
                    .send()
                    .await
                    .map_err(|e| format!("DeleteMessageBatch: {e:?}"))?;
                done.fetch_add(messages.len(), Ordering::Relaxed);
            }
            Ok::<(), String>(())
        }));
    }
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    Ok(start.elapsed().as_secs_f64())
}

struct Rates {
    send: f64,
    consume: f64,
}

async fn measure(endpoint: &str, n: usize, workers: usize) -> Result<Rates, String> {
    let client = client(endpoint);
    let name = format!("bench-{}", std::process::id());
    let url = create(&client, &name).await?;
    let send = send_all(&client, &url, n, workers, &"x".repeat(256)).await?;
    let consume = consume_all(&client, &url, n, workers).await?;
    let _ = client.delete_queue().queue_url(&url).send().await;
    Ok(Rates {
        send: n as f64 / send,
        consume: n as f64 / consume,
    })
}

/// `server`: sqs-local and the reference, same clients, same run.
pub(crate) async fn throughput(
    n: usize,
    workers: usize,
    reference: Option<String>,
) -> Result<(), String> {
    let local = ChildServer::start()?;
    println!("sqs-local throughput: {n} messages of 256 bytes, {workers} concurrent clients");
    let ours = measure(&local.endpoint, n, workers).await?;
    let cpu = local.cpu_seconds().unwrap_or(f64::NAN);
    println!("| endpoint   | messages | SendMessageBatch msg/s | Receive+DeleteBatch msg/s |");
    println!("|------------|---------:|-----------------------:|--------------------------:|");
    println!(
        "| sqs-local  | {n:>8} | {:>22.0} | {:>25.0} |",
        ours.send, ours.consume
    );
    let mut ratio = None;
    if let Some(url) = reference {
        // The reference is ~15x slower: a tenth of the messages keeps the run short.
        let rn = (n / 10).max(1000);
        let theirs = measure(&url, rn, workers).await?;
        println!(
            "| reference  | {rn:>8} | {:>22.0} | {:>25.0} |",
            theirs.send, theirs.consume
        );
        ratio = Some(ours.consume / theirs.consume);
    } else {
        println!("(no reference endpoint: pass --reference URL or set SQS_REFERENCE_ENDPOINT)");
    }
    println!("sqs-local CPU: {cpu:.2} s for {n} messages sent and consumed");
    match ratio {
        Some(r) => println!(
            "RESULT sqs_local_consume_per_s={:.0} sqs_local_send_per_s={:.0} ratio_vs_reference={r:.1}",
            ours.consume, ours.send
        ),
        None => println!(
            "RESULT sqs_local_consume_per_s={:.0} sqs_local_send_per_s={:.0}",
            ours.consume, ours.send
        ),
    }
    Ok(())
}

/// `memory`: resident memory of sqs-local holding `n` messages of `size` bytes.
pub(crate) async fn memory(n: usize, size: usize) -> Result<(), String> {
    let local = ChildServer::start()?;
    let client = client(&local.endpoint);
    let url = create(&client, "memory").await?;
    let before = local.rss_bytes().ok_or("cannot read the child's VmRSS")?;
    send_all(&client, &url, n, 8, &"m".repeat(size)).await?;
    let queued: u64 = client
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .map_err(|e| format!("GetQueueAttributes: {e:?}"))?
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let after = local.rss_bytes().ok_or("cannot read the child's VmRSS")?;
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    println!("sqs-local memory: {queued} messages of {size} bytes queued");
    println!(
        "resident before: {:.1} MiB, after: {:.1} MiB",
        mib(before),
        mib(after)
    );
    println!(
        "RESULT queued={queued} rss_mib={:.1} per_message_bytes={:.0}",
        mib(after),
        (after - before.min(after)) as f64 / queued.max(1) as f64
    );
    if queued as usize != n {
        return Err(format!("expected {n} queued messages, found {queued}"));
    }
    Ok(())
}
