//! The queue as a `&'static str` constant or static, by path, for both attributes.

use sqs_handler::__private::{HandlerRegistration, HookRegistration, QueueRef, inventory};
use sqs_handler::{Batch, BatchOutcome, Body, ProcessingError, Stopped, sqs_consumer_event_handler, sqs_message_handler};

const ORDERS_QUEUE: &str = "orders";
static AUDIT_QUEUE: &str = "audit";

mod queues {
    pub const ROWS: &str = "rows";

    pub mod inner {
        pub static PINGS: &'static str = "pings";
    }
}

#[sqs_message_handler(ORDERS_QUEUE)]
async fn orders(_b: Body) {}

#[sqs_message_handler(AUDIT_QUEUE)]
async fn audit() {}

#[sqs_message_handler(crate::queues::ROWS, batch)]
async fn rows(Batch(_m): Batch) -> BatchOutcome {
    BatchOutcome::all_ok()
}

#[sqs_message_handler(self::queues::inner::PINGS,)]
async fn pings() {}

#[sqs_consumer_event_handler(ORDERS_QUEUE, processing_error)]
async fn on_orders_error(_e: ProcessingError) {}

#[sqs_consumer_event_handler(crate::queues::ROWS, stopped)]
async fn on_rows_stopped(_e: Stopped) {}

mod nested {
    // `super::` from a module of its own.
    #[sqs_handler::sqs_message_handler(super::queues::ROWS)]
    async fn rows_again() {}
}

fn main() {
    let mut handlers: Vec<(QueueRef, &str)> = inventory::iter::<HandlerRegistration>
        .into_iter()
        .map(|r| (r.queue, r.origin.name))
        .collect();
    handlers.sort_by_key(|(_, name)| *name);
    assert_eq!(
        handlers,
        [
            (QueueRef::Name("audit"), "audit"),
            (QueueRef::Name("orders"), "orders"),
            (QueueRef::Name("pings"), "pings"),
            (QueueRef::Name("rows"), "rows"),
            (QueueRef::Name("rows"), "rows_again"),
        ]
    );
    let mut hooks: Vec<(QueueRef, &str)> = inventory::iter::<HookRegistration>
        .into_iter()
        .map(|r| (r.queue, r.origin.name))
        .collect();
    hooks.sort_by_key(|(_, name)| *name);
    assert_eq!(
        hooks,
        [
            (QueueRef::Name("orders"), "on_orders_error"),
            (QueueRef::Name("rows"), "on_rows_stopped"),
        ]
    );
}
