#[sqs_handler::sqs_message_handler("jobs", fifo)]
async fn handle() {}

fn main() {}
