//! A Redis outage under load: the test's own `redis-server` is killed while jobs run and
//! restarted on the same port later. The worker's circuit breaker stops receiving while jobs
//! fail, so no message spends its receive counts on the outage: nothing reaches the
//! dead-letter queue and every job ends `done`.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{config, free_port, http, post_job, queue_depth, sqs_client, status_of, wait_for};
use demo::Role;

/// A `redis-server` of this test's own on `port`, its data in `dir` (an append-only file
/// synced on every write, so that a restart after SIGKILL finds every status); killed on drop.
struct RedisServer {
    port: u16,
    dir: std::path::PathBuf,
    child: Option<Child>,
}

impl RedisServer {
    async fn start(port: u16, dir: &std::path::Path) -> Self {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server (apt-get install redis-server)");
        let url = format!("redis://127.0.0.1:{port}");
        wait_for("redis-server answers PING", Duration::from_secs(10), || {
            let url = url.clone();
            async move {
                let client = redis::Client::open(url).ok()?;
                let mut c = client.get_multiplexed_async_connection().await.ok()?;
                redis::cmd("PING").query_async::<String>(&mut c).await.ok()
            }
        })
        .await;
        Self {
            port,
            dir: dir.to_owned(),
            child: Some(child),
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test]
async fn redis_outage_under_load_dead_letters_nothing() {
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("demo-redis-outage-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut redis = RedisServer::start(port, &dir).await;
    let mut cfg = config("outage");
    cfg.redis_url = Some(format!("redis://127.0.0.1:{port}"));
    cfg.concurrency = 4;
    cfg.job_duration = Duration::from_millis(300);
    cfg.job_timeout = Duration::from_secs(5);
    cfg.retry_delay = Some(Duration::from_secs(2));
    cfg.breaker_open_for = Duration::from_secs(1);
    let demo = demo::start(cfg, Role::All).await.unwrap();
    let addr = demo.addr.unwrap();
    let sqs = sqs_client(demo.sqs_endpoint.as_deref().unwrap());

    let mut ids = Vec::new();
    for i in 0..40 {
        ids.push(post_job(addr, &format!("job {i}")).await);
    }
    wait_for("8 jobs done", Duration::from_secs(30), || async {
        let (_, health) = http(addr, "GET", "/health", None).await;
        (health["consumer"][0]["processed"].as_u64() >= Some(8)).then_some(())
    })
    .await;

    redis.kill();
    let opened = wait_for(
        "the circuit breaker opens",
        Duration::from_secs(20),
        || async {
            let (code, health) = http(addr, "GET", "/health", None).await;
            (health["consumer"][0]["circuit"] == "open").then_some((code, health))
        },
    )
    .await;
    assert_eq!(opened.0, 503, "Redis is down: {}", opened.1);
    let failed_at_open = opened.1["consumer"][0]["failed"].as_u64().unwrap();
    // Through at least two failed probes (open 1 s, then 2 s, then 4 s).
    wait_for("two probes", Duration::from_secs(20), || async {
        let (_, health) = http(addr, "GET", "/health", None).await;
        (health["consumer"][0]["failed"].as_u64() >= Some(failed_at_open + 2)).then_some(())
    })
    .await;
    let (_, during) = http(addr, "GET", "/health", None).await;
    let failed_while_down = during["consumer"][0]["failed"].as_u64().unwrap();
    let _redis = RedisServer::start(redis.port, &redis.dir).await;

    for id in &ids {
        wait_for(
            &format!("job {id} done"),
            Duration::from_secs(60),
            || async { (status_of(addr, id).await["status"] == "done").then_some(()) },
        )
        .await;
    }
    let (code, health) = http(addr, "GET", "/health", None).await;
    assert_eq!(code, 200, "{health}");
    assert_eq!(health["consumer"][0]["circuit"], "closed");
    assert_eq!(health["consumer"][0]["processed"], 40);
    assert_eq!(queue_depth(&sqs, "jobs").await, 0);
    assert_eq!(
        queue_depth(&sqs, "jobs-dlq").await,
        0,
        "nothing dead-lettered"
    );
    // Once open, only the jobs already running (at most the concurrency, 4) and the probes
    // (one job each, at most three before Redis is back) could fail: the breaker left the rest
    // of the queue untouched.
    let failed = health["consumer"][0]["failed"].as_u64().unwrap();
    assert!(
        failed <= failed_at_open + 4 + 3,
        "{failed} failures, {failed_at_open} when it opened"
    );
    eprintln!(
        "failures: {failed_at_open} when the breaker opened, {failed_while_down} after two probes, {failed} in all"
    );
    demo.stop().await;
    drop(_redis);
    let _ = std::fs::remove_dir_all(&dir);
}
