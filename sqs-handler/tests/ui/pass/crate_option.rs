//! `crate = "..."`: the generated code reaches sqs_handler through the given path.

use sqs_handler::__private::{HandlerRegistration, HookRegistration, QueueRef, inventory};

/// A crate of the user's that re-exports sqs_handler (here a module, to stay in one file).
mod facade {
    pub use ::sqs_handler;
}

mod queues {
    pub const JOBS: &str = "jobs";
}

#[facade::sqs_handler::sqs_message_handler("jobs", crate = "facade::sqs_handler")]
async fn through_facade(_b: facade::sqs_handler::Body) {}

#[facade::sqs_handler::sqs_message_handler(crate = "crate::facade::sqs_handler", "rows", batch)]
async fn batch_through_facade(_b: facade::sqs_handler::Batch) {}

#[sqs_handler::sqs_message_handler(env = "SOME_QUEUE", default = "other", crate = "::sqs_handler")]
async fn absolute() {}

#[facade::sqs_handler::sqs_consumer_event_handler(queues::JOBS, processing_error, crate = "facade::sqs_handler")]
async fn hook_through_facade(_e: facade::sqs_handler::ProcessingError, _q: facade::sqs_handler::QueueName) {}

fn main() {
    let mut handlers: Vec<(QueueRef, &str)> = inventory::iter::<HandlerRegistration>
        .into_iter()
        .map(|r| (r.queue, r.origin.name))
        .collect();
    handlers.sort_by_key(|(_, name)| *name);
    assert_eq!(
        handlers,
        [
            (QueueRef::EnvOr("SOME_QUEUE", "other"), "absolute"),
            (QueueRef::Name("rows"), "batch_through_facade"),
            (QueueRef::Name("jobs"), "through_facade"),
        ]
    );
    let hooks: Vec<&str> = inventory::iter::<HookRegistration>
        .into_iter()
        .map(|r| r.origin.name)
        .collect();
    assert_eq!(hooks, ["hook_through_facade"]);
}
