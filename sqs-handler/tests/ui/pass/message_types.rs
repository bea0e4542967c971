//! `message_type = ...` as a literal or a `&'static str` constant, beside an untyped fallback.

use sqs_handler::__private::{HandlerRegistration, QueueRef, inventory};
use sqs_handler::{Body, sqs_message_handler};

const ORDER_CANCELLED: &str = "OrderCancelled";

#[sqs_message_handler("orders", message_type = "OrderPlaced")]
async fn placed(_b: Body) {}

#[sqs_message_handler("orders", message_type = ORDER_CANCELLED, crate = "::sqs_handler")]
async fn cancelled() {}

#[sqs_message_handler("orders")]
async fn other(_b: Body) {}

fn main() {
    let mut handlers: Vec<(QueueRef, Option<&str>, &str)> = inventory::iter::<HandlerRegistration>
        .into_iter()
        .map(|r| (r.queue, r.message_type, r.origin.name))
        .collect();
    handlers.sort_by_key(|(_, _, name)| *name);
    assert_eq!(
        handlers,
        [
            (QueueRef::Name("orders"), Some("OrderCancelled"), "cancelled"),
            (QueueRef::Name("orders"), None, "other"),
            (QueueRef::Name("orders"), Some("OrderPlaced"), "placed"),
        ]
    );
}
