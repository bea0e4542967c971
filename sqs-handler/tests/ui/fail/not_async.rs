#[sqs_handler::sqs_message_handler("jobs")]
fn handle() {}

fn main() {}
