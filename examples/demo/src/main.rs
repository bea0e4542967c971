//! The job-status demo (issue 4). Run with `cargo run -p demo`.
//!
//! Until the demo lands, this starts the embedded sqs-local endpoint the demo will use and
//! stops on Ctrl-C.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match sqs_local::LocalSqs::builder().queue("jobs").start().await {
        Ok(server) => {
            println!(
                "demo: embedded sqs-local at {} with queue \"jobs\"; the job API is not built yet. Ctrl-C stops.",
                server.endpoint_url()
            );
            let _ = tokio::signal::ctrl_c().await;
            server.shutdown().await;
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("demo: cannot start the embedded sqs-local: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
