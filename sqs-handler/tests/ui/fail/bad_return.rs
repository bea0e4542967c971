#[sqs_handler::sqs_message_handler("jobs")]
async fn handle() -> u32 {
    7
}

fn main() {}
