//! Simulated network latency, per operation: what a call costs against SQS in a region.
//!
//! sqs-local answers in microseconds; SQS answers in milliseconds. A consumer that is fast on
//! a zero-latency endpoint can be slow on SQS (one receive at a time, a delete awaited before
//! the next receive), and timeouts and visibility heartbeats only show their real behaviour
//! when calls take time. A [`Latency`] makes each call take a fixed or random time.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::store::Operation;

/// The largest delay accepted: one hour.
const MAX_DELAY: Duration = Duration::from_secs(3600);

/// The delay of one operation: fixed, or uniformly random between two bounds (jitter).
///
/// ```
/// use std::time::Duration;
/// use sqs_local::Delay;
///
/// let fixed = Delay::fixed(Duration::from_millis(15));
/// assert_eq!(fixed.sample(), Duration::from_millis(15));
///
/// let jitter = Delay::between(Duration::from_millis(10), Duration::from_millis(20));
/// let d = jitter.sample();
/// assert!(d >= Duration::from_millis(10) && d <= Duration::from_millis(20));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Delay {
    min: Duration,
    max: Duration,
}

impl Delay {
    /// No delay.
    pub const ZERO: Delay = Delay {
        min: Duration::ZERO,
        max: Duration::ZERO,
    };

    /// Always `d`.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let d = sqs_local::Delay::fixed(Duration::from_millis(8));
    /// assert_eq!((d.min(), d.max()), (Duration::from_millis(8), Duration::from_millis(8)));
    /// ```
    pub const fn fixed(d: Duration) -> Self {
        Self { min: d, max: d }
    }

    /// Uniformly random between `a` and `b` (in either order), both included.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let d = sqs_local::Delay::between(Duration::from_millis(20), Duration::from_millis(10));
    /// assert_eq!(d.min(), Duration::from_millis(10));
    /// ```
    pub fn between(a: Duration, b: Duration) -> Self {
        Self {
            min: a.min(b),
            max: a.max(b),
        }
    }

    /// The shortest delay.
    ///
    /// ```
    /// # use std::time::Duration;
    /// assert_eq!(sqs_local::Delay::ZERO.min(), Duration::ZERO);
    /// ```
    pub fn min(&self) -> Duration {
        self.min
    }

    /// The longest delay.
    ///
    /// ```
    /// # use std::time::Duration;
    /// assert_eq!(sqs_local::Delay::fixed(Duration::from_secs(1)).max(), Duration::from_secs(1));
    /// ```
    pub fn max(&self) -> Duration {
        self.max
    }

    /// Whether the delay is always zero.
    ///
    /// ```
    /// assert!(sqs_local::Delay::ZERO.is_zero());
    /// ```
    pub fn is_zero(&self) -> bool {
        self.max.is_zero()
    }

    /// One delay drawn from the range.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let d = sqs_local::Delay::fixed(Duration::from_millis(3));
    /// assert_eq!(d.sample(), Duration::from_millis(3));
    /// ```
    pub fn sample(&self) -> Duration {
        if self.min == self.max {
            return self.min;
        }
        // Nanoseconds of at most an hour fit in a u64.
        let lo = u64::try_from(self.min.as_nanos()).unwrap_or(u64::MAX);
        let hi = u64::try_from(self.max.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(fastrand::u64(lo..=hi))
    }
}

impl fmt::Display for Delay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.min == self.max {
            write!(f, "{:?}", self.min)
        } else {
            write!(f, "{:?}..{:?}", self.min, self.max)
        }
    }
}

/// Latency per operation, added to every request a server answers (not to
/// `GET /_sqs-local/stats`).
///
/// Each request draws one delay from its operation's [`Delay`]: half of it passes before the
/// operation takes effect (the request's way to SQS) and the rest before the response is sent
/// (the way back). So a received message's visibility timeout starts before the client has it,
/// and a long poll's wait comes on top of the latency, as on SQS. Server shutdown cuts delays
/// short.
///
/// Build one in code, or parse a spec (what the `--latency` flag of the `sqs-local` binary
/// takes): comma-separated items, each `KEY=DELAY` or the name of a profile.
///
/// - `KEY` is an operation's name (`ReceiveMessage`, any case), or a group: `receive`
///   (ReceiveMessage), `send` (SendMessage, SendMessageBatch), `delete` (DeleteMessage,
///   DeleteMessageBatch), `visibility` (ChangeMessageVisibility and its batch), `*` (every
///   operation).
/// - `DELAY` is a duration with a unit (`15ms`, `1.5s`, `800us`; `0` alone is zero), a range
///   `10ms..20ms` (uniform jitter) or `15ms+-5ms` (the same range).
/// - A profile: `aws` ([`Latency::aws`]) or `none`.
///
/// Items apply in order, so a later one overrides: `aws,receive=40ms` is the AWS profile with
/// slower receives.
///
/// ```
/// use std::time::Duration;
/// use sqs_local::{Delay, Latency, Operation};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let latency: Latency = "receive=15ms,send=8ms,delete=8ms".parse()?;
/// assert_eq!(latency.delay(Operation::ReceiveMessage), Delay::fixed(Duration::from_millis(15)));
/// assert_eq!(latency.delay(Operation::DeleteMessageBatch), Delay::fixed(Duration::from_millis(8)));
/// assert_eq!(latency.delay(Operation::GetQueueUrl), Delay::ZERO);
///
/// // In process: a server whose calls take as long as SQS's.
/// let server = sqs_local::LocalSqs::builder()
///     .latency(Latency::aws())
///     .queue("jobs")
///     .start()
///     .await?;
/// let client = server.client();
/// let url = client.get_queue_url().queue_name("jobs").send().await?.queue_url.unwrap_or_default();
/// let start = std::time::Instant::now();
/// client.receive_message().queue_url(&url).send().await?; // no wait time: returns at once...
/// assert!(start.elapsed() >= Duration::from_millis(10)); // ...after the receive's latency
/// server.shutdown().await;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Latency {
    delays: [Delay; Operation::ALL.len()],
}

impl Default for Latency {
    fn default() -> Self {
        Self::none()
    }
}

impl Latency {
    /// No latency (the default of a server).
    ///
    /// ```
    /// assert!(sqs_local::Latency::none().is_zero());
    /// ```
    pub fn none() -> Self {
        Self {
            delays: [Delay::ZERO; Operation::ALL.len()],
        }
    }

    /// A profile close to SQS called from the same region: ReceiveMessage 10–20 ms (when
    /// messages are there; a long poll's wait comes on top), the send, delete and visibility
    /// calls 6–10 ms, every other operation (queue management) 10–30 ms, each uniformly random
    /// in its range.
    ///
    /// These are typical figures of SQS seen from EC2 in the same region, in line with the
    /// 10–30 ms a call that this project's performance goals assume; they are not a measurement
    /// of any one region. Set your own with [`Latency::with`] or a spec.
    ///
    /// ```
    /// use std::time::Duration;
    /// use sqs_local::{Latency, Operation};
    ///
    /// let receive = Latency::aws().delay(Operation::ReceiveMessage);
    /// assert_eq!((receive.min(), receive.max()), (Duration::from_millis(10), Duration::from_millis(20)));
    /// ```
    pub fn aws() -> Self {
        let ms = Duration::from_millis;
        let mut latency = Self::none().with_all(Delay::between(ms(10), ms(30)));
        for op in group("send")
            .into_iter()
            .chain(group("delete"))
            .chain(group("visibility"))
            .flatten()
        {
            latency = latency.with(*op, Delay::between(ms(6), ms(10)));
        }
        latency.with(Operation::ReceiveMessage, Delay::between(ms(10), ms(20)))
    }

    /// Sets one operation's delay.
    ///
    /// ```
    /// use std::time::Duration;
    /// use sqs_local::{Delay, Latency, Operation};
    ///
    /// let latency = Latency::none()
    ///     .with(Operation::ReceiveMessage, Delay::fixed(Duration::from_millis(15)));
    /// assert!(!latency.is_zero());
    /// ```
    pub fn with(mut self, op: Operation, delay: Delay) -> Self {
        self.delays[op as usize] = delay;
        self
    }

    /// Sets every operation's delay.
    ///
    /// ```
    /// use std::time::Duration;
    /// use sqs_local::{Delay, Latency, Operation};
    ///
    /// let latency = Latency::none().with_all(Delay::fixed(Duration::from_millis(5)));
    /// assert_eq!(latency.delay(Operation::TagQueue), Delay::fixed(Duration::from_millis(5)));
    /// ```
    pub fn with_all(mut self, delay: Delay) -> Self {
        self.delays = [delay; Operation::ALL.len()];
        self
    }

    /// The delay of an operation.
    ///
    /// ```
    /// use sqs_local::{Delay, Latency, Operation};
    ///
    /// assert_eq!(Latency::none().delay(Operation::SendMessage), Delay::ZERO);
    /// ```
    pub fn delay(&self, op: Operation) -> Delay {
        self.delays[op as usize]
    }

    /// Whether no operation is delayed.
    ///
    /// ```
    /// assert!(!sqs_local::Latency::aws().is_zero());
    /// ```
    pub fn is_zero(&self) -> bool {
        self.delays.iter().all(Delay::is_zero)
    }

    /// Parses a spec (see [`Latency`]); the same as `spec.parse()`.
    ///
    /// # Errors
    /// A [`LatencyError`] naming the item that is not understood: an unknown operation or
    /// profile, or a value that is not a duration.
    ///
    /// ```
    /// let error = sqs_local::Latency::parse("recieve=15ms").unwrap_err();
    /// assert!(error.to_string().contains("\"recieve\""));
    /// ```
    pub fn parse(spec: &str) -> Result<Self, LatencyError> {
        let mut latency = Self::none();
        let spec = spec.trim();
        if spec.is_empty() {
            return Err(LatencyError::new(
                "the spec is empty: give OPERATION=DELAY items (for example receive=15ms,send=8ms) or a profile (aws, none)",
            ));
        }
        for item in spec.split(',').map(str::trim) {
            let Some((key, value)) = item.split_once('=') else {
                latency = match item.to_ascii_lowercase().as_str() {
                    "aws" => Self::aws(),
                    "none" => Self::none(),
                    _ => {
                        return Err(LatencyError::new(format!(
                            "{item:?} is neither OPERATION=DELAY nor a profile (aws, none)"
                        )));
                    }
                };
                continue;
            };
            let key = key.trim();
            let ops = operations(key).ok_or_else(|| {
                LatencyError::new(format!(
                    "{key:?} is not an operation: use receive, send, delete, visibility, * or an SQS operation name such as ReceiveMessage"
                ))
            })?;
            let delay = parse_delay(value.trim())
                .map_err(|why| LatencyError::new(format!("{key}={:?}: {why}", value.trim())))?;
            for op in ops {
                latency = latency.with(op, delay);
            }
        }
        Ok(latency)
    }
}

impl FromStr for Latency {
    type Err = LatencyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Latency {
    /// The operations with a delay, as a spec that parses back to the same latency.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for op in Operation::ALL {
            let d = self.delay(*op);
            if d.is_zero() {
                continue;
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            let nanos = |d: Duration| format!("{}ns", d.as_nanos());
            if d.min == d.max {
                write!(f, "{}={}", op.name(), nanos(d.min))?;
            } else {
                write!(f, "{}={}..{}", op.name(), nanos(d.min), nanos(d.max))?;
            }
        }
        if first {
            f.write_str("none")?;
        }
        Ok(())
    }
}

/// A latency spec that could not be parsed; its message names the item and why.
///
/// ```
/// let error = "receive=15".parse::<sqs_local::Latency>().unwrap_err();
/// assert_eq!(
///     error.to_string(),
///     "receive=\"15\": a duration needs a unit: ms, s or us (for example 15ms)",
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatencyError {
    message: String,
}

impl LatencyError {
    fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

impl fmt::Display for LatencyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for LatencyError {}

/// The operations of a group name.
fn group(name: &str) -> Option<&'static [Operation]> {
    use Operation as O;
    Some(match name {
        "receive" => &[O::ReceiveMessage],
        "send" => &[O::SendMessage, O::SendMessageBatch],
        "delete" => &[O::DeleteMessage, O::DeleteMessageBatch],
        "visibility" => &[O::ChangeMessageVisibility, O::ChangeMessageVisibilityBatch],
        "*" => Operation::ALL,
        _ => return None,
    })
}

/// The operations a spec key names: a group, or one operation's name in any case.
fn operations(key: &str) -> Option<Vec<Operation>> {
    let lower = key.to_ascii_lowercase();
    if let Some(ops) = group(&lower) {
        return Some(ops.to_vec());
    }
    Operation::ALL
        .iter()
        .find(|op| op.name().eq_ignore_ascii_case(key))
        .map(|op| vec![*op])
}

/// `15ms`, `10ms..20ms` or `15ms+-5ms` (also `15ms±5ms`).
fn parse_delay(value: &str) -> Result<Delay, String> {
    if let Some((a, b)) = value.split_once("..") {
        let (a, b) = (parse_duration(a.trim())?, parse_duration(b.trim())?);
        if a > b {
            return Err(format!("the range's start {a:?} is after its end {b:?}"));
        }
        return Ok(Delay::between(a, b));
    }
    if let Some((center, jitter)) = value.split_once("+-").or_else(|| value.split_once('±')) {
        let (c, j) = (
            parse_duration(center.trim())?,
            parse_duration(jitter.trim())?,
        );
        let max = c.saturating_add(j);
        if max > MAX_DELAY {
            return Err(format!("{max:?} is more than the largest delay, 1 h"));
        }
        return Ok(Delay::between(c.saturating_sub(j), max));
    }
    parse_duration(value).map(Delay::fixed)
}

/// A non-negative duration with a unit, at most an hour, read exactly (no floating point).
fn parse_duration(text: &str) -> Result<Duration, String> {
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    if number.is_empty() {
        return Err(format!("{text:?} is not a duration (for example 15ms)"));
    }
    let unit_nanos: u128 = match unit.trim() {
        "" => return Err("a duration needs a unit: ms, s or us (for example 15ms)".to_owned()),
        "s" => 1_000_000_000,
        "ms" => 1_000_000,
        "us" | "µs" => 1_000,
        "ns" => 1,
        other => return Err(format!("unknown unit {other:?}: use ms, s or us")),
    };
    let not_a_number = || format!("{number:?} is not a number");
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
        return Err(not_a_number());
    }
    let too_long = || format!("{text} is more than the largest delay, 1 h");
    let whole: u128 = match whole {
        "" => 0,
        w => w.parse().map_err(|_| too_long())?,
    };
    let mut nanos = whole.checked_mul(unit_nanos).ok_or_else(too_long)?;
    // Fractional digits below a nanosecond are dropped.
    let mut scale = unit_nanos;
    for digit in fraction.bytes() {
        scale /= 10;
        nanos += u128::from(digit - b'0') * scale;
    }
    if nanos > MAX_DELAY.as_nanos() {
        return Err(too_long());
    }
    // At most an hour of nanoseconds: fits in a u64.
    Ok(Duration::from_nanos(
        u64::try_from(nanos).map_err(|_| too_long())?,
    ))
}

/// Waits until `deadline`, or until the server closes.
pub(crate) async fn wait_until(deadline: tokio::time::Instant, closing: &CancellationToken) {
    if deadline <= tokio::time::Instant::now() {
        return;
    }
    tokio::select! {
        () = tokio::time::sleep_until(deadline) => {}
        () = closing.cancelled() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn specs_parse_to_their_delays() {
        let l = Latency::parse("receive=15ms, send=8ms,delete=1.5s").unwrap();
        assert_eq!(l.delay(Operation::ReceiveMessage), Delay::fixed(MS(15)));
        assert_eq!(l.delay(Operation::SendMessage), Delay::fixed(MS(8)));
        assert_eq!(l.delay(Operation::SendMessageBatch), Delay::fixed(MS(8)));
        assert_eq!(
            l.delay(Operation::DeleteMessageBatch),
            Delay::fixed(MS(1500))
        );
        assert_eq!(l.delay(Operation::CreateQueue), Delay::ZERO);

        let l = Latency::parse(
            "*=5ms,changemessagevisibilitybatch=10ms..20ms,receive=15ms+-5ms,visibility=0",
        )
        .unwrap();
        assert_eq!(l.delay(Operation::TagQueue), Delay::fixed(MS(5)));
        assert_eq!(
            l.delay(Operation::ChangeMessageVisibilityBatch),
            Delay::ZERO
        );
        assert_eq!(
            l.delay(Operation::ReceiveMessage),
            Delay::between(MS(10), MS(20))
        );
        assert_eq!(
            Latency::parse("delete=800us")
                .unwrap()
                .delay(Operation::DeleteMessage),
            Delay::fixed(Duration::from_micros(800))
        );

        assert_eq!(Latency::parse("aws").unwrap(), Latency::aws());
        let l = Latency::parse("AWS, receive=40ms").unwrap();
        assert_eq!(l.delay(Operation::ReceiveMessage), Delay::fixed(MS(40)));
        assert_eq!(
            l.delay(Operation::SendMessage),
            Latency::aws().delay(Operation::SendMessage)
        );
        assert!(Latency::parse("none").unwrap().is_zero());
    }

    #[test]
    fn a_spec_prints_as_one_that_parses_back() {
        for l in [
            Latency::aws(),
            Latency::none(),
            Latency::parse("receive=15ms").unwrap(),
        ] {
            assert_eq!(Latency::parse(&l.to_string()).unwrap(), l, "{l}");
        }
    }

    #[test]
    fn bad_specs_name_the_operation_or_value() {
        let cases = [
            (
                "",
                "the spec is empty: give OPERATION=DELAY items (for example receive=15ms,send=8ms) or a profile (aws, none)",
            ),
            (
                "recieve=15ms",
                "\"recieve\" is not an operation: use receive, send, delete, visibility, * or an SQS operation name such as ReceiveMessage",
            ),
            (
                "receive=15",
                "receive=\"15\": a duration needs a unit: ms, s or us (for example 15ms)",
            ),
            (
                "send=8 minutes",
                "send=\"8 minutes\": unknown unit \"minutes\": use ms, s or us",
            ),
            (
                "delete=-8ms",
                "delete=\"-8ms\": \"-8ms\" is not a duration (for example 15ms)",
            ),
            (
                "delete=1.2.3ms",
                "delete=\"1.2.3ms\": \"1.2.3\" is not a number",
            ),
            (
                "receive=20ms..10ms",
                "receive=\"20ms..10ms\": the range's start 20ms is after its end 10ms",
            ),
            (
                "receive=2h",
                "receive=\"2h\": unknown unit \"h\": use ms, s or us",
            ),
            (
                "receive=3601s",
                "receive=\"3601s\": 3601s is more than the largest delay, 1 h",
            ),
            (
                "receive=1e400s",
                "receive=\"1e400s\": unknown unit \"e400s\": use ms, s or us",
            ),
            (
                "receive=",
                "receive=\"\": \"\" is not a duration (for example 15ms)",
            ),
            (
                "fast",
                "\"fast\" is neither OPERATION=DELAY nor a profile (aws, none)",
            ),
            (
                "receive=15ms,",
                "\"\" is neither OPERATION=DELAY nor a profile (aws, none)",
            ),
        ];
        for (spec, message) in cases {
            assert_eq!(
                Latency::parse(spec).map_err(|e| e.to_string()),
                Err(message.to_owned()),
                "{spec}"
            );
        }
    }

    #[test]
    fn samples_stay_in_their_range() {
        let d = Delay::between(MS(10), MS(20));
        for _ in 0..1000 {
            let s = d.sample();
            assert!((MS(10)..=MS(20)).contains(&s), "{s:?}");
        }
        assert_eq!(Delay::fixed(MS(7)).sample(), MS(7));
        assert_eq!(Delay::ZERO.sample(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_lasts_its_delay_unless_the_server_closes() {
        let token = CancellationToken::new();
        let start = tokio::time::Instant::now();
        wait_until(start + MS(15), &token).await;
        assert_eq!(start.elapsed(), MS(15));
        // A deadline already past: no wait.
        wait_until(start, &token).await;
        assert_eq!(start.elapsed(), MS(15));

        token.cancel();
        let start = tokio::time::Instant::now();
        wait_until(start + Duration::from_secs(3600), &token).await;
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
