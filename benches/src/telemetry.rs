//! What the `consume` child installs before it builds the consumer, for the `telemetry`
//! scenario: nothing, a subscriber and a recorder that do nothing, or the OpenTelemetry SDK and
//! the Prometheus recorder without their I/O.

use std::sync::Arc;

use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::prelude::*;

/// What observes the consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Telemetry {
    /// No tracing subscriber, no metrics recorder: every span is disabled at its callsite and
    /// every metric handle is the facade's no-op handle.
    Off,
    /// A subscriber that enables INFO spans and does nothing with them (`tracing-subscriber`'s
    /// registry, which gives each span an id and tracks entering and leaving, and no layer), and
    /// a recorder whose handles are live but do nothing: every span is built, entered and
    /// closed, and every metric call reaches a recorder through its handle.
    Noop,
    /// The same registry with the `tracing-opentelemetry` layer over an OpenTelemetry SDK
    /// tracer provider whose batch span processor hands every span to an exporter that drops
    /// it, and the Prometheus recorder (`metrics-exporter-prometheus`, rendered once at the
    /// end): everything a production setup does but the network.
    Real,
}

impl Telemetry {
    pub(crate) const ALL: [Telemetry; 3] = [Telemetry::Off, Telemetry::Noop, Telemetry::Real];

    pub(crate) fn parse(s: &str) -> Result<Self, String> {
        match s {
            "" | "off" => Ok(Telemetry::Off),
            "noop" => Ok(Telemetry::Noop),
            "real" => Ok(Telemetry::Real),
            other => Err(format!("unknown telemetry {other:?} (off, noop or real)")),
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Telemetry::Off => "off",
            Telemetry::Noop => "noop",
            Telemetry::Real => "real",
        }
    }

    pub(crate) fn label(self) -> &'static str {
        match self {
            Telemetry::Off => "off: no subscriber, no recorder",
            Telemetry::Noop => "noop: registry, no-op recorder",
            Telemetry::Real => "real: OTel SDK layer, Prometheus",
        }
    }

    /// Installs this telemetry globally (once per process, before the consumer is built).
    pub(crate) fn install(self) -> Result<Installed, String> {
        match self {
            Telemetry::Off => Ok(Installed::None),
            Telemetry::Noop => {
                tracing_subscriber::registry()
                    .with(LevelFilter::INFO)
                    .try_init()
                    .map_err(|e| e.to_string())?;
                metrics::set_global_recorder(NoopRecorder).map_err(|e| e.to_string())?;
                Ok(Installed::None)
            }
            Telemetry::Real => {
                let provider = SdkTracerProvider::builder()
                    .with_batch_exporter(DropExporter)
                    .build();
                tracing_subscriber::registry()
                    .with(LevelFilter::INFO)
                    .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("bench")))
                    .try_init()
                    .map_err(|e| e.to_string())?;
                let recorder =
                    metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
                let handle = recorder.handle();
                metrics::set_global_recorder(recorder).map_err(|e| e.to_string())?;
                Ok(Installed::Real { provider, handle })
            }
        }
    }
}

/// What an installed telemetry keeps until the run ends.
#[derive(Debug)]
pub(crate) enum Installed {
    None,
    Real {
        provider: SdkTracerProvider,
        handle: metrics_exporter_prometheus::PrometheusHandle,
    },
}

impl Installed {
    /// A scrape (which drains the histograms' samples) and the span processor's last export;
    /// returns the scrape's size in bytes.
    pub(crate) fn finish(self) -> Result<usize, String> {
        match self {
            Installed::None => Ok(0),
            Installed::Real { provider, handle } => {
                let scrape = handle.render();
                if !scrape.contains("sqs_handler_messages_processed_total") {
                    return Err(format!(
                        "the Prometheus scrape has no sqs-handler metric: {scrape}"
                    ));
                }
                provider.shutdown().map_err(|e| e.to_string())?;
                Ok(scrape.len())
            }
        }
    }
}

/// An exporter that drops every batch.
#[derive(Debug)]
struct DropExporter;

impl SpanExporter for DropExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        drop(batch);
        Ok(())
    }
}

/// A recorder whose handles are live (each call goes through the handle's `Arc<dyn ...Fn>`)
/// and do nothing. `metrics::NoopRecorder` would hand out the facade's empty handles, as no
/// recorder does.
#[derive(Debug)]
struct NoopRecorder;

#[derive(Debug)]
struct Nothing;

impl CounterFn for Nothing {
    fn increment(&self, _: u64) {}
    fn absolute(&self, _: u64) {}
}

impl GaugeFn for Nothing {
    fn increment(&self, _: f64) {}
    fn decrement(&self, _: f64) {}
    fn set(&self, _: f64) {}
}

impl HistogramFn for Nothing {
    fn record(&self, _: f64) {}
}

impl Recorder for NoopRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, _: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(Arc::new(Nothing))
    }

    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(Arc::new(Nothing))
    }

    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(Arc::new(Nothing))
    }
}
