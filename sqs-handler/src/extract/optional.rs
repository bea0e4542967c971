//! `Option<T>` and `Result<T, ExtractError>`: extractors whose failure the handler handles.

use std::future::Future;

use super::{FromMessage, MessageContext, OptionalFromMessage, Requirement};
use crate::error::ExtractError;

// Without `do_not_recommend`, `Option<u32>` as an argument would be answered with "Option<T>
// implements FromMessage" instead of the note on `OptionalFromMessage`.
#[diagnostic::do_not_recommend]
impl<T: OptionalFromMessage> FromMessage for Option<T> {
    fn from_message(
        ctx: &MessageContext,
    ) -> impl Future<Output = Result<Self, ExtractError>> + Send {
        T::from_message_optional(ctx)
    }

    fn requirement() -> Option<Requirement> {
        <T as OptionalFromMessage>::requirement()
    }
}

/// The handler gets the failure; the state `T` needs is still checked at build.
impl<T: FromMessage> FromMessage for Result<T, ExtractError> {
    async fn from_message(ctx: &MessageContext) -> Result<Self, ExtractError> {
        Ok(T::from_message(ctx).await)
    }

    fn requirement() -> Option<Requirement> {
        <T as FromMessage>::requirement()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use aws_sdk_sqs::types::Message;

    use super::*;
    use crate::extract::{Json, SentTimestamp, State};
    use crate::message::SqsMessage;
    use crate::state::StateMap;

    fn ctx(body: &str, state: StateMap) -> MessageContext {
        MessageContext {
            message: SqsMessage::new(Message::builder().message_id("m-1").body(body).build()),
            queue: Arc::from("q"),
            state: Arc::new(state),
            ack: None,
        }
    }

    #[derive(Debug, PartialEq, serde::Deserialize)]
    struct Job {
        n: u32,
    }

    #[derive(Clone, Debug, PartialEq)]
    struct Db;

    #[tokio::test]
    async fn option_of_json_is_none_for_a_body_that_does_not_decode() {
        let got = Option::<Json<Job>>::from_message(&ctx(r#"{"n":7}"#, StateMap::default())).await;
        assert_eq!(got.unwrap(), Some(Json(Job { n: 7 })));
        for body in ["not json", r#"{"m":7}"#, ""] {
            let got = Option::<Json<Job>>::from_message(&ctx(body, StateMap::default())).await;
            assert_eq!(got.unwrap(), None, "{body:?}");
        }
    }

    #[tokio::test]
    async fn result_of_json_gives_the_error_to_the_handler() {
        let got = Result::<Json<Job>, ExtractError>::from_message(&ctx(
            r#"{"n":"x"}"#,
            StateMap::default(),
        ))
        .await
        .expect("the Result extractor itself never fails");
        let error = got.unwrap_err();
        assert!(error.extractor.contains("Json<"), "{}", error.extractor);
        assert!(
            error
                .to_string()
                .contains("invalid type: string \"x\", expected u32"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn option_of_state_is_none_without_it_and_not_required() {
        let got = Option::<State<Db>>::from_message(&ctx("", StateMap::default())).await;
        assert!(got.unwrap().is_none());
        let mut state = StateMap::default();
        state.insert(Db);
        let got = Option::<State<Db>>::from_message(&ctx("", state)).await;
        assert_eq!(got.unwrap().map(|State(db)| db), Some(Db));
        assert_eq!(<Option<State<Db>> as FromMessage>::requirement(), None);
        assert_eq!(
            <Result<State<Db>, ExtractError> as FromMessage>::requirement(),
            Some(Requirement::state::<Db>()),
            "a Result still needs the state at build"
        );
    }

    #[tokio::test]
    async fn option_of_sent_timestamp_is_none_when_absent() {
        let got = Option::<SentTimestamp>::from_message(&ctx("", StateMap::default())).await;
        assert_eq!(got.unwrap(), None);
    }
}
