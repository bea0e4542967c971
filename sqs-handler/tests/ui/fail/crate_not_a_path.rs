#[sqs_handler::sqs_message_handler("jobs", crate = "sqs handler")]
async fn handle() {}

#[sqs_handler::sqs_consumer_event_handler("jobs", stopped, crate = "")]
async fn on_stopped(_e: sqs_handler::Stopped) {}

fn main() {}
