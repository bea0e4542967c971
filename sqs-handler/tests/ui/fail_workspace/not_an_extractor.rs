#[sqs_handler::sqs_message_handler("jobs")]
async fn handle(_count: u32) {}

fn main() {}
