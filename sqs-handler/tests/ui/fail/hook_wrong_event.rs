#[sqs_handler::sqs_consumer_event_handler("jobs", timeout_error)]
async fn on_timeout(_e: sqs_handler::ProcessingError) {}

fn main() {}
