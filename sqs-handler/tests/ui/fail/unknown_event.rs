#[sqs_handler::sqs_consumer_event_handler("jobs", procesing_error)]
async fn on_error(_e: sqs_handler::ProcessingError) {}

fn main() {}
