//! The handlers of a queue served as an AWS Lambda function: `#[sqs_message_handler]` as in a
//! worker, `sqs_handler::lambda::run` instead of `SqsConsumer::run`. Messages whose handler
//! fails are reported in `batchItemFailures`, so only they come back. Deployment: README.md.

use sqs_handler::{
    BoxError, Json, NonRetryable, ProcessingError, QueueOptions, SqsConsumer,
    sqs_consumer_event_handler, sqs_message_handler,
};

#[derive(serde::Deserialize)]
struct Thumbnail {
    image: String,
    width: u32,
}

/// Resizes an image. An error reports the message (it comes back after the visibility
/// timeout); a `NonRetryable` error does not (it is forwarded to `thumbnails-dlq`).
#[sqs_message_handler("thumbnails")]
async fn resize(Json(job): Json<Thumbnail>) -> Result<(), BoxError> {
    if job.width == 0 || job.width > 4096 {
        return Err(NonRetryable::new(format!("width {} is out of range", job.width)).into());
    }
    tracing::info!(image = %job.image, width = job.width, "resized");
    Ok(())
}

#[sqs_consumer_event_handler("thumbnails", processing_error)]
async fn on_error(e: ProcessingError) {
    tracing::warn!(message = %e.message.message_id(), error = %e.error, action = ?e.action, "thumbnail failed");
}

#[tokio::main]
async fn main() -> Result<(), sqs_handler::lambda_runtime::Error> {
    tracing_subscriber::fmt()
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .without_time() // CloudWatch stamps each line
        .init();
    let config = aws_config::load_from_env().await;
    let builder = SqsConsumer::builder(&config).queue(
        "thumbnails",
        QueueOptions::default()
            .concurrency(10)
            .forward_non_retryable_to("thumbnails-dlq"),
    );
    sqs_handler::lambda::run(builder).await
}
