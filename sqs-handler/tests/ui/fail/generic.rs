#[sqs_handler::sqs_message_handler("jobs")]
async fn handle<T: Send>(_t: T) {}

fn main() {}
