//! What extractors read from: the message (or batch, or hook) with its queue and the
//! consumer's state.

use std::sync::Arc;

use crate::message::SqsMessage;
use crate::state::StateMap;

/// What a message handler runs with: the message, its queue and the consumer's state. It is
/// the request type of the handler's
/// [`tower::Service`](https://docs.rs/tower/0.5/tower/trait.Service.html), so a layer reads the
/// message from it, and a custom extractor builds its value from it.
///
/// ```
/// use sqs_handler::{HandlerService, MessageContext};
///
/// // A layer that logs each message before the handler runs.
/// let log = tower::layer::layer_fn(|inner: HandlerService| {
///     tower::util::MapRequest::new(inner, |ctx: MessageContext| {
///         println!("{}: message {}", ctx.queue(), ctx.message().message_id());
///         ctx
///     })
/// });
/// ```
#[derive(Debug, Clone)]
pub struct MessageContext {
    pub(crate) message: SqsMessage,
    pub(crate) queue: Arc<str>,
    pub(crate) state: Arc<StateMap>,
    /// Set by the consumer, for [`Acknowledgement`](crate::Acknowledgement).
    pub(crate) ack: Option<super::AckHandle>,
}

impl MessageContext {
    /// The message.
    pub fn message(&self) -> &SqsMessage {
        &self.message
    }

    /// The queue it came from.
    pub fn queue(&self) -> &str {
        &self.queue
    }

    /// The value of type `T` given to the consumer with `.state(value)`, if one was; for
    /// [custom extractors](crate::extract::FromMessage#reading-the-state) and layers.
    pub fn state<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.state.get_ref::<T>()
    }
}

/// What a batch handler runs with: the messages of one receive, their queue and the state.
#[derive(Debug, Clone)]
pub struct BatchContext {
    pub(crate) messages: Vec<SqsMessage>,
    pub(crate) queue: Arc<str>,
    pub(crate) state: Arc<StateMap>,
}

impl BatchContext {
    /// The messages.
    pub fn messages(&self) -> &[SqsMessage] {
        &self.messages
    }

    /// The queue they came from.
    pub fn queue(&self) -> &str {
        &self.queue
    }

    /// The value of type `T` given to the consumer with `.state(value)`, if one was.
    pub fn state<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.state.get_ref::<T>()
    }
}

/// What a hook runs with: its queue and the consumer's state.
#[derive(Debug, Clone)]
pub struct HookContext {
    pub(crate) queue: Arc<str>,
    pub(crate) state: Arc<StateMap>,
}

#[cfg(test)]
mod tests {
    use aws_sdk_sqs::types::Message;

    use super::*;

    #[derive(Clone, Debug, PartialEq)]
    struct Db(&'static str);

    #[test]
    fn state_is_found_by_type_and_borrowed() {
        let mut state = StateMap::default();
        state.insert(Db("primary"));
        let ctx = MessageContext {
            message: SqsMessage::new(Message::builder().build()),
            queue: Arc::from("q"),
            state: Arc::new(state),
            ack: None,
        };
        assert_eq!(ctx.state::<Db>(), Some(&Db("primary")));
        assert_eq!(ctx.state::<String>(), None);
    }
}
