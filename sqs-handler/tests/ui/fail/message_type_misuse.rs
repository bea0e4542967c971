#[sqs_handler::sqs_message_handler("events", message_type = "")]
async fn empty() {}

#[sqs_handler::sqs_message_handler(message_type = "OrderPlaced")]
async fn no_queue() {}

#[sqs_handler::sqs_message_handler("events", message_type = "A", message_type = "B")]
async fn twice() {}

#[sqs_handler::sqs_message_handler("events", message_type = 7)]
async fn not_a_string() {}

const NOT_STR: u32 = 7;

#[sqs_handler::sqs_message_handler("events", message_type = NOT_STR)]
async fn not_a_str_constant() {}

fn main() {}
