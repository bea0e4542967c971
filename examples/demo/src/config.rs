//! Configuration from the environment, with defaults that run on a fresh machine.

use std::time::Duration;

/// What the demo runs with. Every field has an environment variable and a default.
#[derive(Debug, Clone)]
pub struct Config {
    /// `PORT`: the HTTP port (default 3000; 0 picks a free one).
    pub port: u16,
    /// `SQS_QUEUE_NAME`: the jobs queue (default `jobs`); its dead-letter queue is `<name>-dlq`.
    pub queue: String,
    /// `AWS_ENDPOINT_URL_SQS` (or `AWS_ENDPOINT_URL`): the SQS endpoint. When neither is set
    /// and `AWS_REGION` is unset too, sqs-local runs in process.
    pub sqs_endpoint: Option<String>,
    /// True when the AWS standard chain should be used (an endpoint or `AWS_REGION` is set).
    pub use_aws_chain: bool,
    /// `SQS_LOCAL_PORT`: port of the embedded sqs-local (default 0, any free port), so that a
    /// `demo worker` in another process can reach it.
    pub sqs_local_port: u16,
    /// `REDIS_URL`: statuses in Redis; unset keeps them in memory.
    pub redis_url: Option<String>,
    /// `REDIS_KEY_PREFIX` (default `demo:jobs:`).
    pub key_prefix: String,
    /// `STATUS_TTL_SECS`: how long a status is kept (default 86400, 24 h).
    pub status_ttl: Duration,
    /// `JOB_DURATION_MS`: the heavy work's duration (default 10000, as in the original).
    pub job_duration: Duration,
    /// `JOB_TIMEOUT_MS`: the handler timeout (default 30000); a job containing "slow" runs
    /// twice as long.
    pub job_timeout: Duration,
    /// `WORKER_CONCURRENCY` (default 16).
    pub concurrency: usize,
    /// `RETRY_DELAY_MS`: how long a failed attempt waits before the next one, doubling with
    /// each attempt (at most 15 minutes). Unset: the message stays invisible for the queue's
    /// visibility timeout (30 s by default).
    pub retry_delay: Option<Duration>,
    /// `BREAKER_OPEN_MS`: how long the worker's circuit breaker stays open before probing
    /// (default 30000; doubled after each failed probe, at most 60 s). It opens when at
    /// least half of the last minute's jobs (10 or more) failed: a Redis outage then costs no
    /// receive counts and sends nothing to the dead-letter queue.
    pub breaker_open_for: Duration,
    /// `SQS_WAIT_TIME_SECS`: the worker's long-poll wait, 1 to 20 (default 20). Shutdown lets
    /// a poll in flight finish, so this bounds how long a stopping worker waits for it.
    pub wait_time: Duration,
}

/// A variable that is set but cannot be read as the type it needs.
#[derive(Debug, thiserror::Error)]
#[error("environment variable {var}={value:?} is not valid: {expected}")]
pub struct ConfigError {
    var: &'static str,
    value: String,
    expected: &'static str,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn parse<T: std::str::FromStr>(
    name: &'static str,
    default: T,
    expected: &'static str,
) -> Result<T, ConfigError> {
    match var(name) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|_| ConfigError {
            var: name,
            value: v,
            expected,
        }),
    }
}

impl Config {
    /// Reads the environment.
    ///
    /// # Errors
    /// When a variable is set to something that is not valid for it.
    pub fn from_env() -> Result<Self, ConfigError> {
        let sqs_endpoint = var("AWS_ENDPOINT_URL_SQS").or_else(|| var("AWS_ENDPOINT_URL"));
        let use_aws_chain = sqs_endpoint.is_some() || var("AWS_REGION").is_some();
        Ok(Self {
            port: parse("PORT", 3000, "a port number")?,
            queue: var("SQS_QUEUE_NAME").unwrap_or_else(|| "jobs".to_owned()),
            sqs_endpoint,
            use_aws_chain,
            sqs_local_port: parse("SQS_LOCAL_PORT", 0, "a port number")?,
            redis_url: var("REDIS_URL"),
            key_prefix: var("REDIS_KEY_PREFIX").unwrap_or_else(|| "demo:jobs:".to_owned()),
            status_ttl: Duration::from_secs(parse(
                "STATUS_TTL_SECS",
                86_400,
                "a number of seconds",
            )?),
            job_duration: Duration::from_millis(parse(
                "JOB_DURATION_MS",
                10_000,
                "a number of milliseconds",
            )?),
            job_timeout: Duration::from_millis(parse(
                "JOB_TIMEOUT_MS",
                30_000,
                "a number of milliseconds",
            )?),
            concurrency: parse("WORKER_CONCURRENCY", 16, "a whole number")?,
            breaker_open_for: Duration::from_millis(parse(
                "BREAKER_OPEN_MS",
                30_000,
                "a number of milliseconds",
            )?),
            wait_time: Duration::from_secs(parse("SQS_WAIT_TIME_SECS", 20, "a number of seconds")?),
            retry_delay: match var("RETRY_DELAY_MS") {
                None => None,
                Some(_) => Some(Duration::from_millis(parse(
                    "RETRY_DELAY_MS",
                    0,
                    "a number of milliseconds",
                )?)),
            },
        })
    }
}
