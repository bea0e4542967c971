//! The job-status demo. Run with `cargo run -p demo` (API and worker in one process), or
//! `cargo run -p demo -- api` and `cargo run -p demo -- worker` apart.

use std::process::ExitCode;

use demo::{Config, Role};

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
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
