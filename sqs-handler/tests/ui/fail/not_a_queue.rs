#[sqs_handler::sqs_message_handler(42)]
async fn handle() {}

#[sqs_handler::sqs_consumer_event_handler(processing_error)]
async fn on_error(_e: sqs_handler::ProcessingError) {}

fn main() {}
