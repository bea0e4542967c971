//! The per-queue circuit breaker: stop receiving while most recent messages fail.
//!
//! A dependency outage (a database, Redis, an HTTP API) makes every handler fail with a
//! retryable error. Receiving at full rate then spends one receive count per message per
//! visibility timeout, and the queue's redrive policy moves healthy work to the dead-letter
//! queue. The breaker (MassTransit's kill switch) watches the outcomes of recent messages: when
//! enough of them fail it *opens* and the queue's pollers stop receiving; after the open period it
//! goes *half-open* and receives a few probe messages; a probe that succeeds *closes* it, one that
//! fails opens it again for twice as long (up to a maximum).
//!
//! While it is not closed, a message that fails with a counted failure is released with a delay
//! that outlasts the next probe instead of following the retry policy, so that successive probes
//! take different messages and no message spends its receive counts on the outage.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::BoxError;
use crate::events::FailureKind;

/// A failure the breaker may count; see [`CircuitBreaker::counts`].
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Failure<'a> {
    /// The handler returned this error, panicked, or an extractor failed.
    Error(&'a BoxError, FailureKind),
    /// The handler ran past its timeout.
    TimedOut(Duration),
}

/// Decides which failures a [`CircuitBreaker`] counts.
pub type FailureFilter = Arc<dyn Fn(&Failure<'_>) -> bool + Send + Sync>;

/// A per-queue circuit breaker, off unless set with
/// [`QueueOptions::circuit_breaker`](crate::QueueOptions::circuit_breaker).
///
/// It opens when, within the last `window`, at least `minimum_messages` messages finished and
/// at least `failure_ratio` of them failed with a counted failure. By default it counts handler
/// errors, panics and timeouts; it never counts [`NonRetryable`](crate::NonRetryable) errors
/// (those settle the message) and by default not extractor failures (a body that does not
/// decode is the message's fault, not a dependency's).
///
/// | setting | default |
/// |---|---|
/// | [`failure_ratio`](Self::failure_ratio) | 0.5 |
/// | [`minimum_messages`](Self::minimum_messages) | 10 |
/// | [`window`](Self::window) | 60 s |
/// | [`open_for`](Self::open_for) | 30 s, doubled after each failed probe |
/// | [`max_open_for`](Self::max_open_for) | 60 s |
/// | [`probe_messages`](Self::probe_messages) | 1 |
///
/// The `circuit_opened` and `circuit_closed` events fire, and a WARN / INFO line is logged, when
/// it opens and closes; [`QueueStatus::circuit`](crate::QueueStatus::circuit) shows its state.
///
/// ```
/// use std::time::Duration;
/// use sqs_handler::{CircuitBreaker, QueueOptions};
///
/// let options = QueueOptions::default().circuit_breaker(
///     CircuitBreaker::default()
///         .failure_ratio(0.8)
///         .open_for(Duration::from_secs(10)),
/// );
/// ```
#[derive(Clone)]
pub struct CircuitBreaker {
    pub(crate) failure_ratio: f64,
    pub(crate) minimum_messages: usize,
    pub(crate) window: Duration,
    pub(crate) open_for: Duration,
    pub(crate) max_open_for: Duration,
    pub(crate) probe_messages: i32,
    pub(crate) counts: Option<FailureFilter>,
}

impl Default for CircuitBreaker {
    fn default() -> Self {
        Self {
            failure_ratio: 0.5,
            minimum_messages: 10,
            window: Duration::from_secs(60),
            open_for: Duration::from_secs(30),
            max_open_for: Duration::from_secs(60),
            probe_messages: 1,
            counts: None,
        }
    }
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("failure_ratio", &self.failure_ratio)
            .field("minimum_messages", &self.minimum_messages)
            .field("window", &self.window)
            .field("open_for", &self.open_for)
            .field("max_open_for", &self.max_open_for)
            .field("probe_messages", &self.probe_messages)
            .field("counts", &self.counts.as_ref().map(|_| "custom"))
            .finish()
    }
}

impl CircuitBreaker {
    /// The share of failed messages, 0 to 1, that opens the breaker (default 0.5).
    pub fn failure_ratio(mut self, ratio: f64) -> Self {
        self.failure_ratio = ratio;
        self
    }

    /// The fewest finished messages in the window before it may open (default 10).
    pub fn minimum_messages(mut self, n: usize) -> Self {
        self.minimum_messages = n;
        self
    }

    /// How far back outcomes are counted (default 60 s).
    pub fn window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// How long it stays open before probing (default 30 s); doubled after each failed probe.
    pub fn open_for(mut self, period: Duration) -> Self {
        self.open_for = period;
        self
    }

    /// The longest open period (default 60 s): at most this long after a dependency is back,
    /// a probe finds out.
    pub fn max_open_for(mut self, period: Duration) -> Self {
        self.max_open_for = period;
        self
    }

    /// How many messages one probe receives, 1 to 10 (default 1).
    pub fn probe_messages(mut self, n: i32) -> Self {
        self.probe_messages = n;
        self
    }

    /// Counts the failures for which `filter` is true instead of the default (errors and
    /// panics of the handler, and timeouts). `NonRetryable` errors are never counted.
    ///
    /// ```
    /// use sqs_handler::{CircuitBreaker, Failure};
    ///
    /// // Only timeouts: a slow dependency, not a failing one, opens the breaker.
    /// let breaker = CircuitBreaker::default().counts(|f| matches!(f, Failure::TimedOut(_)));
    /// ```
    pub fn counts(mut self, filter: impl Fn(&Failure<'_>) -> bool + Send + Sync + 'static) -> Self {
        self.counts = Some(Arc::new(filter));
        self
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        if !(self.failure_ratio > 0.0 && self.failure_ratio <= 1.0) {
            return Err(format!(
                "circuit_breaker failure_ratio must be more than 0 and at most 1, got {}",
                self.failure_ratio
            ));
        }
        if self.minimum_messages == 0 {
            return Err("circuit_breaker minimum_messages must be at least 1".to_owned());
        }
        if !(1..=10).contains(&self.probe_messages) {
            return Err(format!(
                "circuit_breaker probe_messages must be 1 to 10, got {}",
                self.probe_messages
            ));
        }
        for (name, d) in [
            ("window", self.window),
            ("open_for", self.open_for),
            ("max_open_for", self.max_open_for),
        ] {
            if d.is_zero() || d > Duration::from_secs(43_200) {
                return Err(format!(
                    "circuit_breaker {name} must be more than 0 and at most 12 hours, got {d:?}"
                ));
            }
        }
        if self.max_open_for < self.open_for {
            return Err("circuit_breaker max_open_for must be at least open_for".to_owned());
        }
        Ok(())
    }

    fn counted(&self, failure: &Failure<'_>) -> bool {
        match &self.counts {
            Some(filter) => filter(failure),
            None => !matches!(failure, Failure::Error(_, FailureKind::Extract)),
        }
    }
}

/// The state of a queue's circuit breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CircuitState {
    /// Receiving normally (also when no breaker is configured).
    #[default]
    Closed,
    /// Not receiving until the open period ends.
    Open,
    /// Receiving a few probe messages.
    HalfOpen,
}

/// What changed when an outcome was recorded, for the caller to report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transition {
    Opened {
        failures: usize,
        messages: usize,
        open_for: Duration,
    },
    Closed,
}

#[derive(Debug)]
enum Phase {
    Closed,
    Open { until: Instant },
    HalfOpen { probing: bool },
}

#[derive(Debug)]
struct Inner {
    phase: Phase,
    /// Finish time and whether it was a counted failure, oldest first.
    outcomes: VecDeque<(Instant, bool)>,
    open_for: Duration,
}

/// One queue's breaker, shared by its pollers and handlers.
#[derive(Debug)]
pub(crate) struct Breaker {
    config: CircuitBreaker,
    inner: Mutex<Inner>,
    /// Bumped on every phase change, to wake pollers waiting for one.
    changed: watch::Sender<CircuitState>,
}

impl Breaker {
    pub(crate) fn new(config: CircuitBreaker) -> Self {
        let open_for = config.open_for;
        Self {
            config,
            inner: Mutex::new(Inner {
                phase: Phase::Closed,
                outcomes: VecDeque::new(),
                open_for,
            }),
            changed: watch::channel(CircuitState::Closed).0,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn state(&self) -> CircuitState {
        *self.changed.borrow()
    }

    fn set(&self, inner: &mut Inner, phase: Phase) {
        let state = match phase {
            Phase::Closed => CircuitState::Closed,
            Phase::Open { .. } => CircuitState::Open,
            Phase::HalfOpen { .. } => CircuitState::HalfOpen,
        };
        inner.phase = phase;
        self.changed.send_replace(state);
    }

    /// Waits until the poller may receive, and says how many messages at most (`None`: no
    /// limit). Returns `Err(())` when `shutdown` fires first. A probe must be ended with
    /// [`Breaker::probe_received`].
    pub(crate) async fn admit(&self, shutdown: &CancellationToken) -> Result<Option<i32>, ()> {
        let mut changed = self.changed.subscribe();
        loop {
            let wait_until = {
                let mut inner = self.lock();
                match inner.phase {
                    Phase::Closed => return Ok(None),
                    Phase::Open { until } if Instant::now() >= until => {
                        tracing::info!("circuit breaker half-open: probing");
                        self.set(&mut inner, Phase::HalfOpen { probing: true });
                        return Ok(Some(self.config.probe_messages));
                    }
                    Phase::HalfOpen { probing: false } => {
                        inner.phase = Phase::HalfOpen { probing: true };
                        return Ok(Some(self.config.probe_messages));
                    }
                    Phase::Open { until } => Some(until),
                    Phase::HalfOpen { probing: true } => None,
                }
            };
            changed.borrow_and_update();
            let sleep = async {
                match wait_until {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => return Err(()),
                _ = changed.changed() => {}
                _ = sleep => {}
            }
        }
    }

    /// A probe receive came back with `messages`: with none, the next poll probes again.
    pub(crate) fn probe_received(&self, messages: usize) {
        if messages == 0 {
            let mut inner = self.lock();
            if let Phase::HalfOpen { probing: true } = inner.phase {
                inner.phase = Phase::HalfOpen { probing: false };
            }
        }
    }

    /// Records a message that succeeded.
    pub(crate) fn succeeded(&self) -> Option<Transition> {
        let mut inner = self.lock();
        match inner.phase {
            Phase::HalfOpen { .. } => {
                inner.outcomes.clear();
                inner.open_for = self.config.open_for;
                self.set(&mut inner, Phase::Closed);
                Some(Transition::Closed)
            }
            Phase::Closed => {
                self.push(&mut inner, false);
                None
            }
            Phase::Open { .. } => None,
        }
    }

    /// Records a retryable failure; says whether it was counted and what changed.
    pub(crate) fn failed(&self, failure: &Failure<'_>) -> (bool, Option<Transition>) {
        if !self.config.counted(failure) {
            return (false, None);
        }
        let mut inner = self.lock();
        let transition = match inner.phase {
            Phase::Closed => {
                self.push(&mut inner, true);
                let messages = inner.outcomes.len();
                let failures = inner.outcomes.iter().filter(|(_, f)| *f).count();
                let tripped = messages >= self.config.minimum_messages
                    && failures as f64 >= self.config.failure_ratio * messages as f64;
                tripped.then(|| self.open(&mut inner, failures, messages))
            }
            Phase::HalfOpen { .. } => {
                inner.open_for = (inner.open_for * 2).min(self.config.max_open_for);
                Some(self.open(&mut inner, 0, 0))
            }
            Phase::Open { .. } => None,
        };
        (true, transition)
    }

    fn open(&self, inner: &mut Inner, failures: usize, messages: usize) -> Transition {
        let open_for = inner.open_for;
        self.set(
            inner,
            Phase::Open {
                until: Instant::now() + open_for,
            },
        );
        Transition::Opened {
            failures,
            messages,
            open_for,
        }
    }

    /// How long to hold a message that failed while the breaker is not closed: past the next
    /// probe, so that the next probe takes another message. `None` while closed.
    pub(crate) fn hold(&self) -> Option<Duration> {
        let inner = self.lock();
        let now = Instant::now();
        match inner.phase {
            Phase::Closed => None,
            Phase::Open { until } => Some(until.saturating_duration_since(now) + inner.open_for),
            Phase::HalfOpen { .. } => Some(inner.open_for * 2),
        }
    }

    fn push(&self, inner: &mut Inner, failed: bool) {
        let now = Instant::now();
        inner.outcomes.push_back((now, failed));
        while inner
            .outcomes
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) > self.config.window)
        {
            inner.outcomes.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error() -> BoxError {
        "down".into()
    }

    #[tokio::test(start_paused = true)]
    async fn opens_at_the_ratio_then_probes_and_closes() {
        let b = Breaker::new(
            CircuitBreaker::default()
                .minimum_messages(4)
                .open_for(Duration::from_secs(10)),
        );
        let e = error();
        let f = Failure::Error(&e, FailureKind::Handler);
        assert_eq!(b.succeeded(), None);
        assert_eq!(b.failed(&f), (true, None));
        assert_eq!(b.failed(&f), (true, None));
        // 3 of 4 failed: at least half, and the minimum is reached.
        let (_, t) = b.failed(&f);
        assert_eq!(
            t,
            Some(Transition::Opened {
                failures: 3,
                messages: 4,
                open_for: Duration::from_secs(10)
            })
        );
        assert_eq!(b.state(), CircuitState::Open);
        assert_eq!(b.hold(), Some(Duration::from_secs(20)));

        let token = CancellationToken::new();
        let start = Instant::now();
        assert_eq!(b.admit(&token).await, Ok(Some(1)));
        assert_eq!(start.elapsed(), Duration::from_secs(10));
        assert_eq!(b.state(), CircuitState::HalfOpen);

        // A failed probe opens it for twice as long.
        let (_, t) = b.failed(&f);
        assert!(
            matches!(t, Some(Transition::Opened { open_for, .. }) if open_for == Duration::from_secs(20))
        );
        let start = Instant::now();
        assert_eq!(b.admit(&token).await, Ok(Some(1)));
        assert_eq!(start.elapsed(), Duration::from_secs(20));

        // An empty probe lets the next poll probe again; a success closes it.
        b.probe_received(0);
        assert_eq!(b.admit(&token).await, Ok(Some(1)));
        assert_eq!(b.succeeded(), Some(Transition::Closed));
        assert_eq!(b.state(), CircuitState::Closed);
        assert_eq!(b.admit(&token).await, Ok(None));
        assert_eq!(b.hold(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn uncounted_failures_and_old_outcomes_do_not_trip() {
        let b = Breaker::new(CircuitBreaker::default().minimum_messages(2));
        let e = error();
        assert_eq!(
            b.failed(&Failure::Error(&e, FailureKind::Extract)),
            (false, None)
        );
        assert_eq!(
            b.failed(&Failure::Error(&e, FailureKind::Handler)),
            (true, None)
        );
        // The window forgets the failure above.
        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(
            b.failed(&Failure::TimedOut(Duration::from_secs(1))),
            (true, None)
        );
        assert_eq!(b.state(), CircuitState::Closed);
        // Two of two in the window now.
        let (_, t) = b.failed(&Failure::Error(&e, FailureKind::Panic));
        assert!(matches!(
            t,
            Some(Transition::Opened {
                failures: 2,
                messages: 2,
                ..
            })
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_ends_the_wait() {
        let b = Breaker::new(CircuitBreaker::default().minimum_messages(1));
        let e = error();
        b.failed(&Failure::Error(&e, FailureKind::Handler));
        let token = CancellationToken::new();
        token.cancel();
        assert_eq!(b.admit(&token).await, Err(()));
    }

    #[test]
    fn settings_are_validated() {
        assert!(CircuitBreaker::default().validate().is_ok());
        assert!(
            CircuitBreaker::default()
                .failure_ratio(0.0)
                .validate()
                .is_err()
        );
        assert!(
            CircuitBreaker::default()
                .failure_ratio(f64::NAN)
                .validate()
                .is_err()
        );
        assert!(
            CircuitBreaker::default()
                .probe_messages(11)
                .validate()
                .is_err()
        );
        assert!(
            CircuitBreaker::default()
                .open_for(Duration::from_secs(600))
                .validate()
                .is_err()
        );
    }
}
