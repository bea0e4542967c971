const RETRIES: u32 = 3;

mod queues {
    pub static WEIGHT: f64 = 1.5;
}

#[sqs_handler::sqs_message_handler(RETRIES)]
async fn handle() {}

#[sqs_handler::sqs_consumer_event_handler(crate::queues::WEIGHT, stopped)]
async fn on_stopped(_e: sqs_handler::Stopped) {}

fn main() {}
