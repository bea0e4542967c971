#[sqs_handler::sqs_message_handler]
async fn handle() {}

fn main() {}
