//! Observability: Prometheus metrics for `GET /metrics`, the API's request metrics and spans,
//! and OTLP span export when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
//!
//! The metrics go through the `metrics` facade: the API's (`http_requests_total`,
//! `http_request_duration_seconds`) and sqs-handler's (`sqs_handler_*`, with a `queue` label).
//! [`prometheus`] installs the process's recorder once; every demo in the process shares it.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use opentelemetry::propagation::Extractor;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Instrument as _;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

/// Counter of answered requests, labelled `method`, `route` (the route's template, such as
/// `/jobs/{id}`, or `unmatched`) and `status`.
pub const HTTP_REQUESTS_TOTAL: &str = "http_requests_total";
/// Histogram of the time to answer a request, in seconds, labelled `method` and `route`.
pub const HTTP_REQUEST_DURATION_SECONDS: &str = "http_request_duration_seconds";
/// The `route` label of a request that matched no route (a 404): its path is not a label, so
/// that arbitrary paths cannot multiply the series.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Upper bounds of the buckets of every `*_seconds` histogram (the API's and sqs-handler's):
/// 1 ms to 60 s.
pub const DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// How often [`run_upkeep`] drains the recorder's histogram buffers.
pub const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// The service name spans are exported under, unless `OTEL_SERVICE_NAME` says otherwise.
pub const SERVICE_NAME: &str = "sqs-handler-demo";

/// What could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TelemetryError {
    /// The Prometheus recorder could not be installed (another metrics recorder was installed
    /// first in this process).
    #[error("cannot install the Prometheus metrics recorder: {0}")]
    Metrics(String),
    /// The OTLP exporter could not be built from the `OTEL_EXPORTER_OTLP_*` variables.
    #[error("cannot set up OTLP span export: {0}")]
    Otlp(String),
    /// The tracing subscriber could not be installed (one was installed first).
    #[error("cannot install the tracing subscriber: {0}")]
    Subscriber(String),
}

/// The process's recorder, once installed.
static RECORDER: Mutex<Option<PrometheusHandle>> = Mutex::new(None);

/// The handle of this process's Prometheus recorder, installing it on the first call: every
/// `*_seconds` histogram gets [`DURATION_BUCKETS`] (a Prometheus histogram, not a summary).
/// Later calls, from other demos in the same process (tests run several), return the same
/// recorder, so they share its metrics.
///
/// # Errors
/// [`TelemetryError::Metrics`] when another metrics recorder was installed in this process
/// first: the `metrics` facade has one global recorder.
pub fn prometheus() -> Result<PrometheusHandle, TelemetryError> {
    let mut slot = RECORDER.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(handle) = &*slot {
        return Ok(handle.clone());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), DURATION_BUCKETS)
        .and_then(PrometheusBuilder::install_recorder)
        .map_err(|e| TelemetryError::Metrics(e.to_string()))?;
    metrics::describe_counter!(
        HTTP_REQUESTS_TOTAL,
        "HTTP requests answered, by method, route template and status"
    );
    metrics::describe_histogram!(
        HTTP_REQUEST_DURATION_SECONDS,
        metrics::Unit::Seconds,
        "Time to answer an HTTP request, by method and route template"
    );
    *slot = Some(handle.clone());
    Ok(handle)
}

/// Runs the recorder's upkeep (draining histogram buffers) every [`UPKEEP_INTERVAL`] until
/// `stop` completes.
pub async fn run_upkeep(handle: PrometheusHandle, stop: impl std::future::Future<Output = ()>) {
    let mut tick = tokio::time::interval(UPKEEP_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return,
            _ = tick.tick() => handle.run_upkeep(),
        }
    }
}

/// The `method` label: the standard methods by name, any other as `_OTHER` (a client can send
/// any token as a method).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "_OTHER",
    }
}

/// Reads W3C trace context from request headers.
struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// Middleware for the API's router: runs each request in a server span named
/// `<method> <route>` (continuing the caller's trace when it sends a W3C `traceparent`), and
/// counts it in [`HTTP_REQUESTS_TOTAL`] and [`HTTP_REQUEST_DURATION_SECONDS`]. The route is
/// the matched template, never the path, so job ids do not become label values.
pub async fn observe(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(req.method());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED_ROUTE, MatchedPath::as_str)
        .to_owned();
    let span = tracing::info_span!(
        "request",
        otel.name = format!("{method} {route}"),
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = method,
        http.route = route.as_str(),
        http.response.status_code = Empty,
    );
    let parent = opentelemetry::global::get_text_map_propagator(|p| {
        p.extract(&HeaderExtractor(req.headers()))
    });
    // Without the OpenTelemetry layer (no OTLP endpoint) there is nothing to continue.
    let _ = span.set_parent(parent);
    let response = next.run(req).instrument(span.clone()).await;
    let status = response.status();
    // As i64: tracing-opentelemetry exports an unsigned field as a string.
    span.record("http.response.status_code", i64::from(status.as_u16()));
    if status.is_server_error() {
        span.record("otel.status_code", "error");
    }
    metrics::counter!(
        HTTP_REQUESTS_TOTAL,
        "method" => method,
        "route" => route.clone(),
        "status" => status.as_str().to_owned()
    )
    .increment(1);
    metrics::histogram!(
        HTTP_REQUEST_DURATION_SECONDS,
        "method" => method,
        "route" => route
    )
    .record(started.elapsed());
    response
}

/// The process's tracing: log lines on stdout filtered by `RUST_LOG` (default `info`), and
/// OTLP span export when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
/// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set. Call [`Tracing::shutdown`] at exit to flush.
#[derive(Debug)]
pub struct Tracing {
    provider: Option<SdkTracerProvider>,
}

impl Tracing {
    /// True when spans are exported.
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Exports the spans still buffered and stops the exporter (nothing to do when not
    /// exporting).
    ///
    /// # Errors
    /// [`TelemetryError::Otlp`] when the last export failed or timed out.
    pub fn shutdown(self) -> Result<(), TelemetryError> {
        match self.provider {
            None => Ok(()),
            Some(p) => p
                .shutdown()
                .map_err(|e| TelemetryError::Otlp(e.to_string())),
        }
    }
}

fn env_set(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.trim().is_empty())
}

/// Installs the process's tracing subscriber (see [`Tracing`]). With an OTLP endpoint it also
/// sets the W3C trace-context propagator as the global one, and exports every `info` span or
/// above over OTLP http/protobuf through a batch processor on its own thread (the
/// `OTEL_EXPORTER_OTLP_*` and `OTEL_BSP_*` variables apply). Call it outside a Tokio runtime
/// or before the first span.
///
/// # Errors
/// A [`TelemetryError`] when the exporter cannot be built from the variables, or a subscriber
/// is already installed.
pub fn init_tracing() -> Result<Tracing, TelemetryError> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt::layer().with_filter(filter);
    let provider = if env_set("OTEL_EXPORTER_OTLP_ENDPOINT")
        || env_set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .build()
            .map_err(|e| TelemetryError::Otlp(e.to_string()))?;
        let mut resource = opentelemetry_sdk::Resource::builder();
        if !env_set("OTEL_SERVICE_NAME") {
            resource = resource.with_service_name(SERVICE_NAME);
        }
        Some(
            SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(resource.build())
                .build(),
        )
    } else {
        None
    };
    let otel = provider.as_ref().map(|p| {
        opentelemetry::global::set_text_map_propagator(
            opentelemetry_sdk::propagation::TraceContextPropagator::new(),
        );
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("demo"))
            .with_filter(tracing_subscriber::filter::LevelFilter::INFO)
    });
    tracing_subscriber::registry()
        .with(fmt)
        .with(otel)
        .try_init()
        .map_err(|e| TelemetryError::Subscriber(e.to_string()))?;
    Ok(Tracing { provider })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recorder_is_installed_once_and_shared() {
        let a = prometheus().unwrap();
        let b = prometheus().unwrap();
        metrics::counter!("demo_unit_test_total", "k" => "v").increment(2);
        let text = b.render();
        assert!(
            text.lines().any(|l| l == "demo_unit_test_total{k=\"v\"} 2"),
            "{text}"
        );
        assert!(a.render().contains("demo_unit_test_total{k=\"v\"} 2"));
    }

    #[test]
    fn methods_outside_the_standard_ones_share_a_label() {
        assert_eq!(method_label(&Method::POST), "POST");
        assert_eq!(
            method_label(&Method::from_bytes(b"BREW").unwrap()),
            "_OTHER"
        );
    }
}
