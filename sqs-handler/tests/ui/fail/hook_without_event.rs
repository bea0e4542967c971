#[sqs_handler::sqs_consumer_event_handler("jobs", stopped)]
async fn on_stopped() {}

fn main() {}
