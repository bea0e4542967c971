//! Job statuses: in Redis with a TTL under a key prefix, or in memory.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::AsyncCommands as _;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use utoipa::ToSchema;

/// Where a job is.
///
/// `waiting` → `processing` → `done`. An attempt that fails or times out makes the job
/// `retrying` when SQS will deliver it again, `dead_lettered` when its message is in the
/// dead-letter queue (a non-retryable failure, or the last attempt the queue's
/// `maxReceiveCount` allows; `POST /dlq/redrive` sends it back), `error` when the message was
/// deleted. `error` and `dead_lettered` are final unless the job is redriven.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Queued, not picked up yet.
    Waiting,
    /// A worker is on it (`attempts` says which attempt this is).
    Processing,
    /// An attempt failed or timed out and SQS will deliver the job again; `error` says why.
    Retrying,
    /// Finished.
    Done,
    /// Failed for good and its message was deleted; `error` says why.
    Error,
    /// Failed for good and its message is in the dead-letter queue; `error` says why.
    DeadLettered,
}

/// A job's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Job {
    /// The job id.
    pub id: String,
    /// Its status.
    pub status: Status,
    /// When it was accepted, in milliseconds since the Unix epoch.
    pub created_at_ms: u64,
    /// When its status last changed, in milliseconds since the Unix epoch.
    pub updated_at_ms: u64,
    /// Attempts started so far (the message's receive count); 0 while waiting.
    #[serde(default)]
    pub attempts: u32,
    /// Why the last failed attempt failed: present once an attempt failed, kept while a retry
    /// runs, removed when the job is done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The store could not be reached.
#[derive(Debug, thiserror::Error)]
#[error("the status store is unavailable: {0}")]
pub struct StoreError(pub String);

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Statuses, shared by the API and the worker. Cheap to clone.
#[derive(Clone)]
pub enum JobStore {
    /// Redis, connected on first use and reconnected by the connection manager.
    Redis {
        /// The client.
        client: redis::Client,
        /// The connection, once made.
        conn: Arc<Mutex<Option<redis::aio::ConnectionManager>>>,
        /// Key prefix.
        prefix: String,
        /// Time to live of each status.
        ttl: Duration,
    },
    /// This process's memory.
    Memory(Arc<Mutex<HashMap<String, Job>>>),
}

impl std::fmt::Debug for JobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JobStore::Redis { prefix, ttl, .. } => f
                .debug_struct("Redis")
                .field("prefix", prefix)
                .field("ttl", ttl)
                .finish(),
            JobStore::Memory(_) => f.write_str("Memory"),
        }
    }
}

const TIMEOUT: Duration = Duration::from_secs(2);

impl JobStore {
    /// A Redis store for `url`; nothing is connected until first use.
    ///
    /// # Errors
    /// When the URL is not a Redis URL.
    pub fn redis(url: &str, prefix: &str, ttl: Duration) -> Result<Self, StoreError> {
        let client = redis::Client::open(url)
            .map_err(|e| StoreError(format!("REDIS_URL {url:?} is not a valid Redis URL: {e}")))?;
        Ok(JobStore::Redis {
            client,
            conn: Arc::new(Mutex::new(None)),
            prefix: prefix.to_owned(),
            ttl,
        })
    }

    /// A store in this process's memory.
    pub fn memory() -> Self {
        JobStore::Memory(Arc::default())
    }

    /// A short name for logs and health checks.
    pub fn kind(&self) -> &'static str {
        match self {
            JobStore::Redis { .. } => "redis",
            JobStore::Memory(_) => "memory",
        }
    }

    async fn connection(
        client: &redis::Client,
        slot: &Mutex<Option<redis::aio::ConnectionManager>>,
    ) -> Result<redis::aio::ConnectionManager, StoreError> {
        let mut slot = slot.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(TIMEOUT)
            .set_response_timeout(TIMEOUT)
            .set_number_of_retries(1);
        let conn = tokio::time::timeout(TIMEOUT, client.get_connection_manager_with_config(config))
            .await
            .map_err(|_| StoreError("Redis did not answer within 2 s".to_owned()))?
            .map_err(|e| StoreError(format!("cannot connect to Redis: {e}")))?;
        *slot = Some(conn.clone());
        Ok(conn)
    }

    /// Checks the store answers.
    ///
    /// # Errors
    /// When Redis cannot be reached.
    pub async fn ping(&self) -> Result<(), StoreError> {
        match self {
            JobStore::Redis { client, conn, .. } => {
                let mut c = Self::connection(client, conn).await?;
                let _: String = redis::cmd("PING")
                    .query_async(&mut c)
                    .await
                    .map_err(|e| StoreError(e.to_string()))?;
                Ok(())
            }
            JobStore::Memory(_) => Ok(()),
        }
    }

    /// Reads a job.
    ///
    /// # Errors
    /// When Redis cannot be reached.
    pub async fn get(&self, id: &str) -> Result<Option<Job>, StoreError> {
        match self {
            JobStore::Redis {
                client,
                conn,
                prefix,
                ..
            } => {
                let mut c = Self::connection(client, conn).await?;
                let raw: Option<String> = c
                    .get(format!("{prefix}{id}"))
                    .await
                    .map_err(|e| StoreError(e.to_string()))?;
                Ok(raw.and_then(|r| serde_json::from_str(&r).ok()))
            }
            JobStore::Memory(m) => Ok(m.lock().await.get(id).cloned()),
        }
    }

    async fn put(&self, job: &Job) -> Result<(), StoreError> {
        match self {
            JobStore::Redis {
                client,
                conn,
                prefix,
                ttl,
            } => {
                let mut c = Self::connection(client, conn).await?;
                let raw = serde_json::to_string(job).map_err(|e| StoreError(e.to_string()))?;
                let () = c
                    .set_ex(format!("{prefix}{}", job.id), raw, ttl.as_secs().max(1))
                    .await
                    .map_err(|e| StoreError(e.to_string()))?;
                Ok(())
            }
            JobStore::Memory(m) => {
                m.lock().await.insert(job.id.clone(), job.clone());
                Ok(())
            }
        }
    }

    /// Records a new job as waiting.
    ///
    /// # Errors
    /// When Redis cannot be reached.
    pub async fn create(&self, id: &str) -> Result<Job, StoreError> {
        let now = now_ms();
        let job = Job {
            id: id.to_owned(),
            status: Status::Waiting,
            created_at_ms: now,
            updated_at_ms: now,
            attempts: 0,
            error: None,
        };
        self.put(&job).await?;
        Ok(job)
    }

    /// Deletes a job's record (a job that could not be queued).
    ///
    /// # Errors
    /// When Redis cannot be reached.
    pub async fn remove(&self, id: &str) -> Result<(), StoreError> {
        match self {
            JobStore::Redis {
                client,
                conn,
                prefix,
                ..
            } => {
                let mut c = Self::connection(client, conn).await?;
                let _: u64 = c
                    .del(format!("{prefix}{id}"))
                    .await
                    .map_err(|e| StoreError(e.to_string()))?;
                Ok(())
            }
            JobStore::Memory(m) => {
                m.lock().await.remove(id);
                Ok(())
            }
        }
    }

    /// Moves a job to `status` at attempt `attempts`. `error` is the reason of a failed
    /// attempt; without one, `processing` keeps the last failure's reason and every other
    /// status clears it.
    ///
    /// # Errors
    /// When Redis cannot be reached.
    pub async fn set(
        &self,
        id: &str,
        status: Status,
        attempts: u32,
        error: Option<String>,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let mut job = self.get(id).await?.unwrap_or(Job {
            id: id.to_owned(),
            status,
            created_at_ms: now,
            updated_at_ms: now,
            attempts,
            error: None,
        });
        job.status = status;
        job.updated_at_ms = now;
        job.attempts = attempts;
        if error.is_some() || status != Status::Processing {
            job.error = error;
        }
        self.put(&job).await
    }
}
