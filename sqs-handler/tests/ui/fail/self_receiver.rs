struct Service;

impl Service {
    #[sqs_handler::sqs_message_handler("jobs")]
    async fn handle(&self) {}
}

fn main() {}
