#[sqs_handler::sqs_message_handler("jobs", crate = "::sqs_handler", crate = "::sqs_handler")]
async fn handle() {}

fn main() {}
