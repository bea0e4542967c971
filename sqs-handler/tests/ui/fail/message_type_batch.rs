use sqs_handler::Batch;

#[sqs_handler::sqs_message_handler("events", batch, message_type = "OrderPlaced")]
async fn handle(Batch(_messages): Batch) {}

fn main() {}
