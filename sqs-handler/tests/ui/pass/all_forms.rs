use sqs_handler::{
    Batch, BatchOutcome, Body, CircuitClosed, CircuitOpened, ConsumerError, Empty, Json, MessageAttributes, MessageGroupId,
    MessageId, MessageProcessed, MessageReceived, ProcessingError, QueueName, ReceiveCount,
    ResponseProcessed, SentTimestamp, SqsMessage, State, Stopped, TimeoutError,
    sqs_consumer_event_handler, sqs_message_handler,
};

#[derive(serde::Deserialize)]
struct Job {
    id: u32,
}

#[derive(Clone)]
struct Store;

#[derive(Debug)]
struct JobError;
impl std::fmt::Display for JobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("job error")
    }
}
impl std::error::Error for JobError {}

#[sqs_message_handler("jobs")]
async fn run_job(Json(job): Json<Job>, State(_store): State<Store>) -> Result<(), JobError> {
    if job.id == 0 { Err(JobError) } else { Ok(()) }
}

#[sqs_message_handler(env = "OTHER_QUEUE")]
async fn everything(
    _b: Body,
    _m: SqsMessage,
    _a: MessageAttributes,
    _c: ReceiveCount,
    _s: SentTimestamp,
    _g: MessageGroupId,
    _i: MessageId,
    _q: QueueName,
) {
}

#[sqs_message_handler("batches", batch)]
async fn batch(Batch(messages): Batch, _q: QueueName) -> BatchOutcome {
    let _ = messages;
    BatchOutcome::all_ok()
}

#[sqs_consumer_event_handler("jobs", processing_error)]
async fn on_error(_e: ProcessingError, State(_s): State<Store>) {}
#[sqs_consumer_event_handler("jobs", timeout_error)]
async fn on_timeout(_e: TimeoutError) {}
#[sqs_consumer_event_handler("jobs", error)]
async fn on_consumer_error(_e: ConsumerError, _q: QueueName) -> Result<(), JobError> {
    Ok(())
}
#[sqs_consumer_event_handler("jobs", message_received)]
async fn on_received(_e: MessageReceived) {}
#[sqs_consumer_event_handler("jobs", message_processed)]
async fn on_processed(_e: MessageProcessed) {}
#[sqs_consumer_event_handler("jobs", response_processed)]
async fn on_response(_e: ResponseProcessed) {}
#[sqs_consumer_event_handler("jobs", empty)]
async fn on_empty(_e: Empty) {}
#[sqs_consumer_event_handler(env = "OTHER_QUEUE", stopped)]
async fn on_stopped(_e: Stopped) {}
#[sqs_consumer_event_handler("jobs", started)]
async fn on_started(_e: sqs_handler::Started) {}
#[sqs_consumer_event_handler("jobs", circuit_opened)]
async fn on_opened(_e: CircuitOpened) {}
#[sqs_consumer_event_handler("jobs", circuit_closed)]
async fn on_closed(_e: CircuitClosed, State(_s): State<Store>) {}

fn main() {
    // The functions are left as written: still callable directly.
    let _ = run_job(Json(Job { id: 1 }), State(Store));
}
