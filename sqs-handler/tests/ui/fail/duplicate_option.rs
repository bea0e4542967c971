#[sqs_handler::sqs_message_handler("jobs", batch, batch)]
async fn handle(_b: sqs_handler::Batch) {}

fn main() {}
