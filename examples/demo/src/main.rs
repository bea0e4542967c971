//! The job-status demo. Run with `cargo run -p demo` (API and worker in one process), or
//! `cargo run -p demo -- api` and `cargo run -p demo -- worker` apart. With
//! `OTEL_EXPORTER_OTLP_ENDPOINT` set (for example `http://localhost:4318`) it exports its spans
//! over OTLP http/protobuf.

use std::process::ExitCode;

use demo::{Config, Role};

/// Sets up tracing outside the runtime (the OTLP exporter's blocking client must not be made
/// or shut down on a runtime thread), runs the demo, then flushes the spans.
fn main() -> ExitCode {
    let tracing = match demo::telemetry::init_tracing() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("demo: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("demo: cannot start the Tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(run());
    drop(runtime);
    if let Err(e) = tracing.shutdown() {
        eprintln!("demo: {e}");
    }
    code
}

async fn run() -> ExitCode {
    let role = match std::env::args().nth(1).as_deref() {
        None | Some("all") => Role::All,
        Some("api") => Role::Api,
        Some("worker") => Role::Worker,
        Some(other) => {
            eprintln!("demo: unknown role {other:?}: use `demo`, `demo api` or `demo worker`");
            return ExitCode::from(2);
        }
    };
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("demo: {e}");
            return ExitCode::from(2);
        }
    };
    let demo = match demo::start(config, role).await {
        Ok(d) => d,
        Err(e) => {
            eprintln!("demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(sqs) = &demo.sqs_endpoint {
        println!("SQS endpoint: {sqs}");
    }
    if let Some(addr) = demo.addr {
        println!("listening on http://{addr}");
        println!("Swagger UI: http://{addr}/docs   OpenAPI: http://{addr}/openapi.json");
        println!(
            "try: curl -s -X POST http://{addr}/jobs -H 'content-type: application/json' -d '{{\"message\":\"hello\"}}'"
        );
        println!("then: curl -s http://{addr}/jobs/<id>");
    } else {
        println!("worker running; Ctrl-C or SIGTERM stops it after the jobs in progress");
    }
    let stop = demo.stop_handle();
    tokio::spawn(async move {
        sqs_handler::shutdown_signal().await;
        tracing::info!("shutting down: the API stops accepting, the worker drains");
        let _ = stop.send(true);
    });
    demo.wait().await;
    ExitCode::SUCCESS
}
