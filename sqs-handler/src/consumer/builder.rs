//! Building a consumer: discovering and registering handlers, checking the configuration, and
//! resolving queue URLs.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::QueueAttributeName;
use tower::util::BoxCloneSyncService;
use tower::{Layer, Service, ServiceExt as _};

use super::breaker::Breaker;
use super::status::{Counters, StatusHandle};
use super::worker::Dispatch;
use super::{Shared, SqsConsumer};
use crate::error::{BoxError, BuildError};
use crate::events::{EventKind, EventType, Hook, HookFn, Hooks, hook_fn};
use crate::extract::{HookContext, MessageContext, Requirement};
use crate::handler::{
    BatchHandler, ErasedHandler, Handler, HandlerService, batch_fn, message_service,
};
use crate::options::QueueOptions;
use crate::registry::{self, QueueRef};
use crate::routing::Router;
use crate::state::StateMap;
use crate::telemetry::Telemetry;

type LayerFn = Arc<dyn Fn(HandlerService) -> HandlerService + Send + Sync>;
type ResolveFn = Arc<dyn Fn(&str) -> String + Send + Sync>;

struct HandlerEntry {
    queue: String,
    message_type: Option<String>,
    origin: String,
    handler: ErasedHandler,
    requirements: Vec<Requirement>,
}

struct HookEntry {
    queue: String,
    kind: EventKind,
    origin: String,
    hook: HookFn,
    requirements: Vec<Requirement>,
}

/// Configures a consumer: queues and their options, state for `State<T>`, tower layers, and
/// handlers registered explicitly beside the discovered ones.
///
/// Made by [`SqsConsumer::builder`]; [`build`](Self::build) checks it all and returns the
/// consumer. Nothing is sent to SQS before `build`.
///
/// ```no_run
/// use std::time::Duration;
/// use sqs_handler::{Body, QueueOptions, RetryPolicy, SqsConsumer};
///
/// #[derive(Clone)]
/// struct Db;
///
/// async fn audit(Body(line): Body) {
///     println!("{line}");
/// }
///
/// # async fn build(config: &aws_config::SdkConfig) -> Result<(), sqs_handler::BuildError> {
/// let consumer = SqsConsumer::builder(config)
///     // options of queues whose handlers are discovered, or registered below
///     .queue("jobs", QueueOptions::default().concurrency(64))
///     .queue("audit", QueueOptions::default().retry(RetryPolicy::ReleaseImmediately))
///     // a handler without the attribute
///     .handler("audit", audit)
///     // what `State<Db>` arguments get
///     .state(Db)
///     // around every message handler
///     .layer(tower::limit::ConcurrencyLimitLayer::new(100))
///     .shutdown_timeout(Duration::from_secs(20))
///     .build()
///     .await?;
/// # Ok(())
/// # }
/// ```
///
/// # Queue names
///
/// Handlers, hooks and options *declare* a queue by name: the queue of
/// `#[sqs_message_handler(..)]` and `#[sqs_consumer_event_handler(..)]` (a name, a constant, or
/// the value of an environment variable), the first argument of [`handler`](Self::handler),
/// [`batch_handler`](Self::batch_handler), [`hook`](Self::hook), [`queue`](Self::queue) and
/// [`queue_layer`](Self::queue_layer), and [`QueueOptions::forward_non_retryable_to`].
///
/// When the consumer is built, [`queue_prefix`](Self::queue_prefix) or
/// [`resolve_queue_names`](Self::resolve_queue_names) turns every declared name into the real
/// queue, so the same handlers run on `staging-orders` in staging, or on a queue per test.
/// Without them the real queue is the declared name. [`QueueOptions::queue_url`] still wins:
/// a queue given its URL is not looked up.
///
/// Everything the running consumer reports uses the real name: the [`QueueName`](crate::QueueName)
/// extractor in handlers and hooks, the `queue` field of events, [`SqsConsumer::queues`],
/// [`StatusHandle::queue`] and [`QueueStatus::queue`](crate::QueueStatus::queue), and the logs
/// (where `build` logs the declared name beside it). Two declared names that resolve to one
/// queue are one queue: two handlers for it are a [`BuildError::DuplicateHandler`].
/// [`only_queues`](Self::only_queues) matches declared names. A resolved queue that does not
/// exist is a [`BuildError::QueueNotFound`] naming both names.
pub struct SqsConsumerBuilder {
    client: Client,
    queues: Vec<(String, QueueOptions)>,
    state: StateMap,
    layers: Vec<LayerFn>,
    queue_layers: Vec<(String, LayerFn)>,
    handlers: Vec<HandlerEntry>,
    hooks: Vec<HookEntry>,
    discover: bool,
    only: Option<Vec<String>>,
    resolver: Option<ResolveFn>,
    shutdown_timeout: Duration,
}

impl std::fmt::Debug for SqsConsumerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqsConsumerBuilder")
            .field("queues", &self.queues)
            .field("layers", &self.layers.len())
            .field(
                "handlers",
                &self
                    .handlers
                    .iter()
                    .map(|h| (&h.queue, &h.origin))
                    .collect::<Vec<_>>(),
            )
            .field(
                "hooks",
                &self
                    .hooks
                    .iter()
                    .map(|h| (&h.queue, h.kind, &h.origin))
                    .collect::<Vec<_>>(),
            )
            .field("discover", &self.discover)
            .field("only", &self.only)
            .field("resolve_queue_names", &self.resolver.is_some())
            .field("shutdown_timeout", &self.shutdown_timeout)
            .finish()
    }
}

fn origin_of<T>() -> String {
    std::any::type_name::<T>().to_owned()
}

impl SqsConsumerBuilder {
    pub(crate) fn new(client: Client) -> Self {
        Self {
            client,
            queues: Vec::new(),
            state: StateMap::default(),
            layers: Vec::new(),
            queue_layers: Vec::new(),
            handlers: Vec::new(),
            hooks: Vec::new(),
            discover: true,
            only: None,
            resolver: None,
            shutdown_timeout: Duration::from_secs(30),
        }
    }

    /// Options for one queue. A queue that has a handler but no options is consumed with
    /// [`QueueOptions::default`]; a queue given options but no handler is a
    /// [`BuildError::NoHandler`]. Giving options for a queue twice keeps the last.
    ///
    /// ```
    /// use std::time::Duration;
    /// use sqs_handler::{QueueOptions, SqsConsumer};
    ///
    /// # #[allow(unused)]
    /// # fn f(config: &aws_config::SdkConfig) -> sqs_handler::SqsConsumerBuilder {
    /// SqsConsumer::builder(config)
    ///     .queue("thumbnails", QueueOptions::default().handler_timeout(Duration::from_secs(30)))
    ///     .queue("reports", QueueOptions::default().concurrency(2))
    /// # }
    /// ```
    pub fn queue(mut self, name: impl Into<String>, options: QueueOptions) -> Self {
        let name = name.into();
        self.queues.retain(|(n, _)| *n != name);
        self.queues.push((name, options));
        self
    }

    /// A value handlers and hooks take as `State<T>` (one per type; a second replaces it).
    ///
    /// ```
    /// use sqs_handler::{Body, SqsConsumer, State};
    ///
    /// #[derive(Clone)]
    /// struct Settings {
    ///     greeting: String,
    /// }
    ///
    /// async fn greet(Body(name): Body, State(settings): State<Settings>) {
    ///     println!("{} {name}", settings.greeting);
    /// }
    ///
    /// # #[allow(unused)]
    /// # fn f(config: &aws_config::SdkConfig) -> sqs_handler::SqsConsumerBuilder {
    /// SqsConsumer::builder(config)
    ///     .handler("greetings", greet)
    ///     .state(Settings { greeting: "hello".to_owned() })
    /// # }
    /// ```
    pub fn state<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
        self.state.insert(value);
        self
    }

    /// Wraps every message handler in a tower layer. Layers added first are outermost. Batch
    /// handlers take a whole receive rather than one [`MessageContext`], so layers do not wrap
    /// them.
    /// Readiness is respected: the consumer waits for the service to be ready before it
    /// receives, so a concurrency-limit layer throttles polling. A layer's error is a handler
    /// error (`processing_error`, then the retry policy), and never stops the consumer.
    ///
    /// ```
    /// use sqs_handler::{HandlerService, MessageContext, SqsConsumer};
    ///
    /// # #[allow(unused)]
    /// # fn f(config: &aws_config::SdkConfig) -> sqs_handler::SqsConsumerBuilder {
    /// SqsConsumer::builder(config)
    ///     // Outermost: a log line per message, with its queue and id.
    ///     .layer(tower::layer::layer_fn(|inner: HandlerService| {
    ///         tower::util::MapRequest::new(inner, |ctx: MessageContext| {
    ///             println!("{} <- {}", ctx.queue(), ctx.message().message_id());
    ///             ctx
    ///         })
    ///     }))
    ///     // Then: at most 8 handlers at once across the queue.
    ///     .layer(tower::limit::ConcurrencyLimitLayer::new(8))
    /// # }
    /// ```
    ///
    /// The [`HandlerService`] page shows a layer that sees the handler's result.
    pub fn layer<L>(mut self, layer: L) -> Self
    where
        L: Layer<HandlerService> + Send + Sync + 'static,
        L::Service: Service<MessageContext, Response = ()> + Clone + Send + Sync + 'static,
        <L::Service as Service<MessageContext>>::Error: Into<BoxError>,
        <L::Service as Service<MessageContext>>::Future: Send + 'static,
    {
        self.layers.push(layer_fn(layer));
        self
    }

    /// Wraps one queue's message handler in a tower layer, inside the global layers.
    ///
    /// ```
    /// use sqs_handler::SqsConsumer;
    ///
    /// # #[allow(unused)]
    /// # fn f(config: &aws_config::SdkConfig) -> sqs_handler::SqsConsumerBuilder {
    /// // The payment provider takes 4 calls at once; other queues are not limited.
    /// SqsConsumer::builder(config).queue_layer("payments", tower::limit::ConcurrencyLimitLayer::new(4))
    /// # }
    /// ```
    pub fn queue_layer<L>(mut self, queue: impl Into<String>, layer: L) -> Self
    where
        L: Layer<HandlerService> + Send + Sync + 'static,
        L::Service: Service<MessageContext, Response = ()> + Clone + Send + Sync + 'static,
        <L::Service as Service<MessageContext>>::Error: Into<BoxError>,
        <L::Service as Service<MessageContext>>::Future: Send + 'static,
    {
        self.queue_layers.push((queue.into(), layer_fn(layer)));
        self
    }

    /// Registers a message handler explicitly (beside `#[sqs_message_handler]`): a function or
    /// closure that implements [`Handler`]. For handlers in a crate the binary does not
    /// otherwise reference, handlers chosen at run time, closures, or builds without the
    /// `macros` feature.
    ///
    /// ```
    /// use sqs_handler::{Json, SqsConsumer};
    ///
    /// #[derive(serde::Deserialize)]
    /// struct Job {
    ///     id: u64,
    /// }
    ///
    /// async fn run_job(Json(job): Json<Job>) {
    ///     println!("job {}", job.id);
    /// }
    ///
    /// # #[allow(unused)]
    /// # fn f(config: &aws_config::SdkConfig) -> sqs_handler::SqsConsumerBuilder {
    /// let region = config.region().map(|r| r.to_string()).unwrap_or_default();
    /// SqsConsumer::builder(config)
    ///     .handler("jobs", run_job)
    ///     .handler("pings", move || {
    ///         let region = region.clone();
    ///         async move { println!("ping in {region}") }
    ///     })
    /// # }
    /// ```
    pub fn handler<H: Handler<T>, T>(mut self, queue: impl Into<String>, handler: H) -> Self {
        self.handlers.push(HandlerEntry {
            queue: queue.into(),
            message_type: None,
            origin: origin_of::<H>(),
            handler: ErasedHandler::Message(message_service(handler)),
            requirements: H::requirements(),
        });
        self
    }

    /// Registers a handler for one message type of a queue explicitly (beside
    /// `#[sqs_message_handler("queue", message_type = "...")]`).
    ///
    /// A queue may have one handler per message type, and one handler without a type that takes
    /// the messages whose type has no handler (or that have no type). Each message's type is
    /// read where [`QueueOptions::message_type_key`] says: the `MessageType` string attribute by
    /// default, which [`OutgoingMessage::message_type`](crate::OutgoingMessage::message_type)
    /// sets. A message whose type has no handler, on a queue without an untyped handler, fails
    /// with [`UnknownMessageType`](crate::UnknownMessageType): `processing_error` fires, then
    /// the queue's retry policy applies (so a newer deploy that handles the type can still
    /// take it, and `maxReceiveCount` moves it to the dead-letter queue otherwise).
    ///
    /// ```
    /// use sqs_handler::{Json, SqsConsumer};
    ///
    /// #[derive(serde::Deserialize)]
    /// struct OrderPlaced {
    ///     order: u64,
    /// }
    ///
    /// #[derive(serde::Deserialize)]
    /// struct OrderCancelled {
    ///     order: u64,
    /// }
    ///
    /// async fn placed(Json(e): Json<OrderPlaced>) {
    ///     println!("placed {}", e.order);
    /// }
    ///
    /// async fn cancelled(Json(e): Json<OrderCancelled>) {
    ///     println!("cancelled {}", e.order);
    /// }
    ///
    /// # #[allow(unused)]
    /// # fn f(config: &aws_config::SdkConfig) -> sqs_handler::SqsConsumerBuilder {
    /// SqsConsumer::builder(config)
    ///     .typed_handler("orders", "OrderPlaced", placed)
    ///     .typed_handler("orders", "OrderCancelled", cancelled)
    /// # }
    /// ```
    pub fn typed_handler<H: Handler<T>, T>(
        mut self,
        queue: impl Into<String>,
        message_type: impl Into<String>,
        handler: H,
    ) -> Self {
        self.handlers.push(HandlerEntry {
            queue: queue.into(),
            message_type: Some(message_type.into()),
            origin: origin_of::<H>(),
            handler: ErasedHandler::Message(message_service(handler)),
            requirements: H::requirements(),
        });
        self
    }

    /// Registers a batch handler explicitly (beside `#[sqs_message_handler("queue", batch)]`).
    ///
    /// ```
    /// use sqs_handler::{Batch, BatchOutcome, SqsConsumer};
    ///
    /// async fn store(Batch(messages): Batch) -> BatchOutcome {
    ///     println!("{} rows", messages.len());
    ///     BatchOutcome::all_ok()
    /// }
    ///
    /// # #[allow(unused)]
    /// # fn f(config: &aws_config::SdkConfig) -> sqs_handler::SqsConsumerBuilder {
    /// SqsConsumer::builder(config).batch_handler("rows", store)
    /// # }
    /// ```
    pub fn batch_handler<H: BatchHandler<T>, T>(
        mut self,
        queue: impl Into<String>,
        handler: H,
    ) -> Self {
        self.handlers.push(HandlerEntry {
            queue: queue.into(),
            message_type: None,
            origin: origin_of::<H>(),
            handler: ErasedHandler::Batch(batch_fn(handler)),
            requirements: H::requirements(),
        });
        self
    }

    /// Registers an event hook explicitly; the event type is the hook's first argument.
    ///
    /// ```
    /// use sqs_handler::{ProcessingError, SqsConsumer, TimeoutError};
    ///
    /// async fn on_error(event: ProcessingError) {
    ///     eprintln!("{}: {}", event.message.message_id(), event.error);
    /// }
    ///
    /// # #[allow(unused)]
    /// # fn f(config: &aws_config::SdkConfig) -> sqs_handler::SqsConsumerBuilder {
    /// SqsConsumer::builder(config)
    ///     .hook("jobs", on_error)
    ///     .hook("jobs", |event: TimeoutError| async move {
    ///         eprintln!("{} ran past {:?}", event.message.message_id(), event.timeout);
    ///     })
    /// # }
    /// ```
    pub fn hook<E: EventType, T, H: Hook<E, T>>(
        mut self,
        queue: impl Into<String>,
        hook: H,
    ) -> Self {
        self.hooks.push(HookEntry {
            queue: queue.into(),
            kind: E::KIND,
            origin: origin_of::<H>(),
            hook: hook_fn::<E, T, H>(hook),
            requirements: H::requirements(),
        });
        self
    }

    /// Whether handlers declared with the attributes are discovered (default true). Off, only
    /// explicit registrations count: what a test that picks its own handlers wants.
    ///
    /// ```
    /// use sqs_handler::{Body, SqsConsumer};
    ///
    /// # #[allow(unused)]
    /// # fn f(config: &aws_config::SdkConfig) -> sqs_handler::SqsConsumerBuilder {
    /// SqsConsumer::builder(config)
    ///     .discover(false)
    ///     .handler("jobs", |Body(b): Body| async move { println!("{b}") })
    /// # }
    /// ```
    pub fn discover(mut self, on: bool) -> Self {
        self.discover = on;
        self
    }

    /// Keeps only discovered handlers and hooks of these queues (for a process that consumes
    /// some of the queues its binary has handlers for). Handlers whose queue comes from an
    /// unset environment variable are then left out rather than an error. The names are
    /// declared names, before [`queue_prefix`](Self::queue_prefix) or
    /// [`resolve_queue_names`](Self::resolve_queue_names).
    ///
    /// ```
    /// use sqs_handler::SqsConsumer;
    ///
    /// # #[allow(unused)]
    /// # fn f(config: &aws_config::SdkConfig) -> sqs_handler::SqsConsumerBuilder {
    /// // One binary, one deployment per group of queues: QUEUES=jobs,emails
    /// let queues = std::env::var("QUEUES").unwrap_or_default();
    /// SqsConsumer::builder(config).only_queues(queues.split(',').filter(|q| !q.is_empty()))
    /// # }
    /// ```
    pub fn only_queues<I, S>(mut self, queues: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.only = Some(queues.into_iter().map(Into::into).collect());
        self
    }

    /// Puts `prefix` before every declared queue name: with `.queue_prefix("staging-")`, the
    /// handlers, hooks and options declared for `orders` consume `staging-orders`. For
    /// environments that share an account, and for tests that run side by side on one
    /// endpoint.
    ///
    /// The shorthand of [`resolve_queue_names`](Self::resolve_queue_names) for a prefix: it
    /// replaces a resolver given before, and a later resolver replaces it. The section
    /// [queue names](Self#queue-names) says which name the consumer then reports (the prefixed
    /// one).
    ///
    /// ```
    /// use sqs_handler::{Body, QueueName, SqsConsumer};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let server = sqs_local::LocalSqs::builder().queue("staging-orders").start().await?;
    /// let consumer = SqsConsumer::builder(&server.sdk_config())
    ///     .discover(false)
    ///     .queue_prefix("staging-")
    ///     .handler("orders", |Body(order): Body, QueueName(queue): QueueName| async move {
    ///         println!("{queue}: {order}"); // "staging-orders: ..."
    ///     })
    ///     .build()
    ///     .await?;
    /// assert_eq!(consumer.queues(), ["staging-orders"]);
    /// assert!(consumer.status().queue("staging-orders").is_some());
    /// # Ok(())
    /// # }
    /// ```
    pub fn queue_prefix(self, prefix: impl Into<String>) -> Self {
        let prefix = prefix.into();
        self.resolve_queue_names(move |declared| format!("{prefix}{declared}"))
    }

    /// Maps every declared queue name to the real queue when the consumer is built: `resolve`
    /// gets each name declared by a handler, a hook, [`queue`](Self::queue),
    /// [`queue_layer`](Self::queue_layer) or [`QueueOptions::forward_non_retryable_to`], and
    /// returns the queue's name, or its full URL (starting with `https://` or `http://`; the
    /// queue is then not looked up with `GetQueueUrl`, and its name is the URL's last path
    /// segment). [`QueueOptions::queue_url`] still wins over what it returns.
    ///
    /// One resolver: a second call, or [`queue_prefix`](Self::queue_prefix), replaces it. The
    /// section [queue names](Self#queue-names) says which name the consumer then reports (the
    /// resolved one).
    ///
    /// ```
    /// use sqs_handler::SqsConsumer;
    ///
    /// # #[allow(unused)]
    /// # fn f(config: &aws_config::SdkConfig) -> sqs_handler::SqsConsumerBuilder {
    /// let env = std::env::var("DEPLOY_ENV").unwrap_or_else(|_| "dev".to_owned());
    /// SqsConsumer::builder(config).resolve_queue_names(move |declared| match declared {
    ///     // a queue of another account, by URL
    ///     "payments" => "https://sqs.eu-west-1.amazonaws.com/210987654321/payments".to_owned(),
    ///     // the others per environment: "dev-orders", "prod-orders"
    ///     other => format!("{env}-{other}"),
    /// })
    /// # }
    /// ```
    pub fn resolve_queue_names<F>(mut self, resolve: F) -> Self
    where
        F: Fn(&str) -> String + Send + Sync + 'static,
    {
        self.resolver = Some(Arc::new(resolve));
        self
    }

    /// How long shutdown waits for running handlers before cancelling them and releasing their
    /// messages (default 30 s). It starts when the queue's last receive has answered: a long
    /// poll in flight is let run to its end (see [`SqsConsumer::run_until`]), so shutdown takes
    /// at most the wait time ([`QueueOptions::wait_time`], 20 s by default) plus this timeout,
    /// plus the final flush of deletes and releases.
    ///
    /// ```
    /// use std::time::Duration;
    /// use sqs_handler::SqsConsumer;
    ///
    /// # #[allow(unused)]
    /// # fn f(config: &aws_config::SdkConfig) -> sqs_handler::SqsConsumerBuilder {
    /// SqsConsumer::builder(config).shutdown_timeout(Duration::from_secs(10))
    /// # }
    /// ```
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    fn keep(&self, queue: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|only| only.iter().any(|q| q == queue))
    }

    /// The real queue of a declared name.
    fn target(&self, declared: &str) -> Result<Target, BuildError> {
        Target::resolve(self.resolver.as_ref(), declared)
    }

    /// Resolves a discovered queue; `Ok(None)` when filtered out.
    fn resolve(&self, queue: &QueueRef, origin: &str) -> Result<Option<String>, BuildError> {
        match queue.resolve() {
            Ok(name) => Ok(self.keep(&name).then_some(name)),
            Err(_) if self.only.is_some() => Ok(None),
            Err(var) => Err(BuildError::EnvVarMissing {
                var: var.to_owned(),
                used_by: origin.to_owned(),
            }),
        }
    }

    /// Checks the configuration, resolves queue URLs and visibility timeouts, and returns a
    /// consumer ready to run.
    ///
    /// # Errors
    /// A [`BuildError`] naming what is wrong: a missing queue, an unset environment variable, a
    /// queue with no handler or two, no handler at all, a `State<T>` without a value, an
    /// invalid option, or an SQS call that failed.
    ///
    /// ```
    /// use sqs_handler::{BuildError, SqsConsumer, State};
    ///
    /// #[derive(Clone)]
    /// struct Db;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let server = sqs_local::LocalSqs::builder().queue("jobs").start().await?;
    /// let result = SqsConsumer::builder(&server.sdk_config())
    ///     .discover(false)
    ///     .handler("jobs", |State(_db): State<Db>| async {})
    ///     .build() // no .state(Db)
    ///     .await;
    /// let error = result.unwrap_err();
    /// assert!(matches!(error, BuildError::MissingState { .. }));
    /// println!("{error}"); // "... takes State<...Db> but no ...Db was given: call .state(value) on the builder"
    /// # Ok(())
    /// # }
    /// ```
    pub async fn build(mut self) -> Result<SqsConsumer, BuildError> {
        let planned = self.plan()?;
        let state = Arc::new(std::mem::take(&mut self.state));
        let resolutions = planned.into_iter().map(|p| {
            let client = self.client.clone();
            async move {
                let (url, visibility, max_receive_count) =
                    resolve_queue(&client, &p.target, &p.opts, &p.used_by).await?;
                let forward = match &p.forward {
                    Some(to) => {
                        let used_by =
                            format!("forward_non_retryable_to of queue {:?}", p.target.name);
                        let url = queue_url(&client, to, &used_by).await?;
                        Some((to.name.clone(), url))
                    }
                    None => None,
                };
                Ok::<_, BuildError>((p, url, visibility, max_receive_count, forward))
            }
        });
        let resolved = futures_util::future::try_join_all(resolutions).await?;

        let mut queues = Vec::new();
        let mut status = Vec::new();
        for (p, url, visibility, max_receive_count, forward) in resolved {
            let queue = p.target.name;
            let name: Arc<str> = Arc::from(queue.as_str());
            let counters = Arc::new(Counters::default());
            let breaker = p
                .opts
                .circuit_breaker
                .clone()
                .map(|config| Arc::new(Breaker::new(config)));
            if let Some(b) = &breaker {
                let _ = counters.breaker.set(b.clone());
            }
            status.push((queue.clone(), counters.clone()));
            tracing::info!(
                queue = %queue,
                declared = %p.target.declared,
                handler = %p.handlers,
                hooks = ?p.hooks,
                concurrency = p.opts.concurrency,
                visibility = ?visibility,
                "queue registered"
            );
            queues.push((
                Arc::new(Shared {
                    fifo: queue.ends_with(".fifo"),
                    queue: name.clone(),
                    telemetry: Telemetry::new(name.clone(), Some(url.clone()), max_receive_count),
                    url,
                    client: self.client.clone(),
                    options: p.opts,
                    visibility,
                    hooks: p.hooks,
                    hook_ctx: HookContext {
                        queue: name,
                        state: state.clone(),
                    },
                    state: state.clone(),
                    counters,
                    forward,
                    breaker,
                }),
                p.dispatch,
            ));
        }
        Ok(SqsConsumer {
            queues,
            status: StatusHandle {
                queues: Arc::new(status),
            },
            shutdown_timeout: self.shutdown_timeout,
        })
    }

    /// The queues as a Lambda function serves them: what `build` checks, without looking up
    /// queue URLs or visibility timeouts (the event names each message's queue; the event source
    /// mapping owns visibility). Only a `forward_non_retryable_to` queue's URL is looked up.
    #[cfg(feature = "lambda")]
    pub(crate) async fn build_invokers(
        mut self,
    ) -> Result<Vec<super::invoke::QueueInvoker>, BuildError> {
        let planned = self.plan()?;
        let state = Arc::new(std::mem::take(&mut self.state));
        let mut invokers = Vec::new();
        for p in planned {
            let queue = p.target.name.clone();
            let forward = match &p.forward {
                Some(to) => {
                    let used_by = format!("forward_non_retryable_to of queue {queue:?}");
                    Some((
                        to.name.clone(),
                        queue_url(&self.client, to, &used_by).await?,
                    ))
                }
                None => None,
            };
            let name: Arc<str> = Arc::from(queue.as_str());
            invokers.push(super::invoke::QueueInvoker {
                shared: Arc::new(Shared {
                    fifo: queue.ends_with(".fifo"),
                    queue: name.clone(),
                    telemetry: Telemetry::new(name.clone(), p.target.url.clone(), None),
                    // Nothing is sent to the queue itself from a Lambda invocation.
                    url: p.target.url.unwrap_or_default(),
                    client: self.client.clone(),
                    options: p.opts,
                    visibility: Duration::ZERO,
                    hooks: p.hooks,
                    hook_ctx: HookContext {
                        queue: name,
                        state: state.clone(),
                    },
                    state: state.clone(),
                    counters: Arc::new(Counters::default()),
                    forward,
                    breaker: None,
                }),
                dispatch: p.dispatch,
            });
        }
        Ok(invokers)
    }

    /// Registered and discovered handlers and hooks, by declared queue.
    fn collect(&mut self) -> Result<(Vec<HandlerEntry>, Vec<HookEntry>), BuildError> {
        let mut handlers = std::mem::take(&mut self.handlers);
        let mut hooks = std::mem::take(&mut self.hooks);
        if !self.discover {
            return Ok((handlers, hooks));
        }
        for reg in registry::handlers() {
            let origin = reg.origin.to_string();
            if let Some(queue) = self.resolve(&reg.queue, &origin)? {
                let (handler, requirements) = (reg.make)();
                handlers.push(HandlerEntry {
                    queue,
                    message_type: reg.message_type.map(str::to_owned),
                    origin,
                    handler,
                    requirements,
                });
            }
        }
        for reg in registry::hooks() {
            let origin = reg.origin.to_string();
            if let Some(queue) = self.resolve(&reg.queue, &origin)? {
                let (hook, requirements) = (reg.make)();
                hooks.push(HookEntry {
                    queue,
                    kind: reg.event,
                    origin,
                    hook: hook.0,
                    requirements,
                });
            }
        }
        Ok((handlers, hooks))
    }

    /// Everything `build` checks without SQS: handlers, hooks, options, state and layers, per
    /// real queue, with each queue's dispatch ready.
    fn plan(&mut self) -> Result<Vec<Planned>, BuildError> {
        let (handlers, hooks) = self.collect()?;
        // Handlers by real queue: declared names through the resolver.
        let mut by_queue: BTreeMap<String, (Target, QueueHandlers)> = BTreeMap::new();
        for h in handlers {
            if h.queue.trim().is_empty() {
                return Err(BuildError::InvalidOption {
                    queue: h.queue,
                    message: format!("{} names an empty queue", h.origin),
                });
            }
            let target = self.target(&h.queue)?;
            let (_, queue) = by_queue
                .entry(target.name.clone())
                .or_insert_with(|| (target, QueueHandlers::default()));
            queue.add(h)?;
        }
        let mut options: HashMap<String, QueueOptions> = HashMap::new();
        for (declared, opts) in std::mem::take(&mut self.queues) {
            let target = self.target(&declared)?;
            if !by_queue.contains_key(&target.name) {
                return Err(BuildError::NoHandler { queue: declared });
            }
            opts.validate()
                .map_err(|message| BuildError::InvalidOption {
                    queue: declared,
                    message,
                })?;
            options.insert(target.name, opts);
        }
        let mut hooks_by_queue: HashMap<String, Vec<HookEntry>> = HashMap::new();
        for h in hooks {
            let target = self.target(&h.queue)?;
            if !by_queue.contains_key(&target.name) {
                tracing::warn!(queue = %target.name, declared = %h.queue, hook = %h.origin, "event hook for a queue with no message handler: it will never fire");
                continue;
            }
            hooks_by_queue.entry(target.name).or_default().push(h);
        }
        let needs = by_queue
            .values()
            .flat_map(|(_, q)| q.entries())
            .map(|h| (&h.origin, &h.requirements))
            .chain(
                hooks_by_queue
                    .values()
                    .flatten()
                    .map(|h| (&h.origin, &h.requirements)),
            );
        for (origin, reqs) in needs {
            if let Some(r) = reqs.iter().find(|r| !self.state.contains(r.type_id)) {
                return Err(BuildError::MissingState {
                    handler: origin.clone(),
                    type_name: r.type_name,
                });
            }
        }
        let mut queue_layers = Vec::new();
        for (declared, layer) in std::mem::take(&mut self.queue_layers) {
            queue_layers.push((self.target(&declared)?.name, layer));
        }
        if by_queue.is_empty() {
            return Err(BuildError::NoHandlers);
        }
        let mut planned = Vec::new();
        for (queue, (target, handlers)) in by_queue {
            let opts = options.remove(&queue).unwrap_or_default();
            let forward = match &opts.forward_non_retryable_to {
                Some(declared) => Some(self.target(declared)?),
                None => None,
            };
            let queue_hooks = hooks_by_queue.remove(&queue).unwrap_or_default();
            let used_by = handlers
                .entries()
                .map(|h| format!("handler {}", h.origin))
                .chain(queue_hooks.iter().map(|h| format!("hook {}", h.origin)))
                .collect::<Vec<_>>()
                .join(", ");
            let mut hooks = Hooks::default();
            for h in queue_hooks {
                hooks.push(h.kind, h.origin, h.hook);
            }
            let wrap = |mut svc: HandlerService| {
                for (q, layer) in queue_layers.iter().rev() {
                    if *q == queue {
                        svc = layer(svc);
                    }
                }
                for layer in self.layers.iter().rev() {
                    svc = layer(svc);
                }
                svc
            };
            let origins = handlers.origins();
            let dispatch = handlers.into_dispatch(&queue, &opts, wrap)?;
            planned.push(Planned {
                target,
                opts,
                forward,
                dispatch,
                hooks,
                handlers: origins,
                used_by,
            });
        }
        Ok(planned)
    }
}

/// A queue as `build` knows it before asking SQS.
struct Planned {
    target: Target,
    opts: QueueOptions,
    /// Where `forward_non_retryable_to` leads.
    forward: Option<Target>,
    dispatch: Dispatch,
    hooks: Hooks,
    /// The handlers' names, for logs.
    handlers: String,
    /// The handlers and hooks that name the queue, for errors.
    used_by: String,
}

/// The handlers of one queue: at most one without a message type, and one per type.
#[derive(Default)]
struct QueueHandlers {
    untyped: Option<HandlerEntry>,
    typed: BTreeMap<String, HandlerEntry>,
}

impl QueueHandlers {
    /// Adds a handler; two for the same type (or both untyped) are an error.
    fn add(&mut self, h: HandlerEntry) -> Result<(), BuildError> {
        let Some(message_type) = h.message_type.clone() else {
            if let Some(first) = &self.untyped {
                return Err(BuildError::DuplicateHandler {
                    queue: first.queue.clone(),
                    first: first.origin.clone(),
                    second: h.origin,
                });
            }
            self.untyped = Some(h);
            return Ok(());
        };
        if let Some(first) = self.typed.get(&message_type) {
            return Err(BuildError::DuplicateTypeHandler {
                queue: first.queue.clone(),
                message_type,
                first: first.origin.clone(),
                second: h.origin,
            });
        }
        self.typed.insert(message_type, h);
        Ok(())
    }

    fn entries(&self) -> impl Iterator<Item = &HandlerEntry> {
        self.untyped.iter().chain(self.typed.values())
    }

    fn origins(&self) -> String {
        self.entries()
            .map(|h| match &h.message_type {
                Some(t) => format!("{} ({t})", h.origin),
                None => h.origin.clone(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The queue's dispatch: its handler, or a router over its typed handlers, wrapped in the
    /// layers by `wrap`.
    fn into_dispatch(
        self,
        queue: &str,
        opts: &QueueOptions,
        wrap: impl Fn(HandlerService) -> HandlerService,
    ) -> Result<Dispatch, BuildError> {
        let fallback = match self.untyped.map(|h| h.handler) {
            Some(ErasedHandler::Batch(f)) if self.typed.is_empty() => {
                return Ok(Dispatch::Batch(f));
            }
            Some(ErasedHandler::Batch(_)) => {
                return Err(BuildError::InvalidOption {
                    queue: queue.to_owned(),
                    message: "it has a batch handler and handlers with a message_type: a batch \
                              handler takes every message of its queue, so remove one or the other"
                        .to_owned(),
                });
            }
            Some(ErasedHandler::Message(svc)) if self.typed.is_empty() => {
                return Ok(Dispatch::Message(wrap(svc)));
            }
            Some(ErasedHandler::Message(svc)) => Some(svc),
            None => None,
        };
        let mut typed = BTreeMap::new();
        for (message_type, h) in self.typed {
            match h.handler {
                ErasedHandler::Message(svc) => typed.insert(message_type, svc),
                ErasedHandler::Batch(_) => {
                    return Err(BuildError::InvalidOption {
                        queue: queue.to_owned(),
                        message: format!(
                            "{} is a batch handler with a message_type: a batch handler takes \
                             every message of its queue",
                            h.origin
                        ),
                    });
                }
            };
        }
        let router = Router {
            key: opts.message_type_key.clone(),
            typed,
            fallback,
        };
        Ok(Dispatch::Message(wrap(router.into_service())))
    }
}

/// Where a declared queue name leads.
#[derive(Debug, Clone)]
struct Target {
    /// The name a handler, hook or option declared.
    declared: String,
    /// The real queue's name: what the resolver returned, or the last segment of its URL.
    name: String,
    /// The URL the resolver returned, if it returned one.
    url: Option<String>,
}

impl Target {
    /// Where `resolver` (or none: the name itself) leads `declared`.
    fn resolve(resolver: Option<&ResolveFn>, declared: &str) -> Result<Self, BuildError> {
        let resolved = match resolver {
            Some(resolve) => resolve(declared).trim().to_owned(),
            None => declared.to_owned(),
        };
        let invalid = |what: &str| BuildError::InvalidOption {
            queue: declared.to_owned(),
            message: format!(
                "the queue-name resolver turned it into {resolved:?}, {what}: return a queue name or a queue URL"
            ),
        };
        if resolved.starts_with("https://") || resolved.starts_with("http://") {
            let path = resolved
                .split_once("://")
                .and_then(|(_, rest)| rest.split_once('/'))
                .map_or("", |(_, path)| path);
            let name = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
            if name.is_empty() {
                return Err(invalid("a URL with no queue in its path"));
            }
            Ok(Self {
                declared: declared.to_owned(),
                name: name.to_owned(),
                url: Some(resolved),
            })
        } else if resolved.is_empty() {
            Err(invalid("an empty name"))
        } else {
            Ok(Self {
                declared: declared.to_owned(),
                name: resolved,
                url: None,
            })
        }
    }

    /// The declared name, when the resolver changed it (for errors).
    fn renamed_from(&self) -> Option<String> {
        (self.declared != self.name).then(|| self.declared.clone())
    }
}

fn layer_fn<L>(layer: L) -> LayerFn
where
    L: Layer<HandlerService> + Send + Sync + 'static,
    L::Service: Service<MessageContext, Response = ()> + Clone + Send + Sync + 'static,
    <L::Service as Service<MessageContext>>::Error: Into<BoxError>,
    <L::Service as Service<MessageContext>>::Future: Send + 'static,
{
    Arc::new(move |svc| BoxCloneSyncService::new(layer.layer(svc).map_err(Into::into)))
}

fn not_found(queue: &Target, used_by: &str) -> BuildError {
    BuildError::QueueNotFound {
        queue: queue.name.clone(),
        declared: queue.renamed_from(),
        used_by: used_by.to_owned(),
    }
}

/// The queue's URL: the one the resolver returned, or `GetQueueUrl`.
async fn queue_url(client: &Client, queue: &Target, used_by: &str) -> Result<String, BuildError> {
    if let Some(url) = &queue.url {
        return Ok(url.clone());
    }
    let name = &queue.name;
    match client.get_queue_url().queue_name(name).send().await {
        Ok(out) => out.queue_url.ok_or_else(|| BuildError::Sqs {
            operation: "GetQueueUrl",
            queue: name.clone(),
            source: "the response had no QueueUrl".into(),
        }),
        Err(e) => {
            let service = e.as_service_error();
            if service.is_some_and(|s| s.is_queue_does_not_exist()) {
                Err(not_found(queue, used_by))
            } else {
                Err(BuildError::Sqs {
                    operation: "GetQueueUrl",
                    queue: name.clone(),
                    source: e.into(),
                })
            }
        }
    }
}

/// The queue's URL and the visibility timeout the heartbeat maintains.
async fn resolve_queue(
    client: &Client,
    queue: &Target,
    opts: &QueueOptions,
    used_by: &str,
) -> Result<(String, Duration, Option<u32>), BuildError> {
    let url = match &opts.queue_url {
        Some(u) => u.clone(),
        None => queue_url(client, queue, used_by).await?,
    };
    let (visibility, max_receive_count) = match opts.visibility_timeout {
        Some(v) => (v, None),
        None => {
            let out = client
                .get_queue_attributes()
                .queue_url(&url)
                .attribute_names(QueueAttributeName::VisibilityTimeout)
                .attribute_names(QueueAttributeName::RedrivePolicy)
                .send()
                .await
                .map_err(|e| {
                    let not_found_error = e
                        .as_service_error()
                        .is_some_and(|s| s.is_queue_does_not_exist());
                    if not_found_error {
                        not_found(queue, used_by)
                    } else {
                        BuildError::Sqs {
                            operation: "GetQueueAttributes",
                            queue: queue.name.clone(),
                            source: e.into(),
                        }
                    }
                })?;
            let attrs = out.attributes();
            let secs = attrs
                .and_then(|a| a.get(&QueueAttributeName::VisibilityTimeout))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(30);
            let max_receive_count = attrs
                .and_then(|a| a.get(&QueueAttributeName::RedrivePolicy))
                .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok())
                .and_then(|p| match &p["maxReceiveCount"] {
                    serde_json::Value::Number(n) => n.as_u64(),
                    serde_json::Value::String(s) => s.parse().ok(),
                    _ => None,
                })
                .and_then(|n| u32::try_from(n).ok());
            (Duration::from_secs(secs), max_receive_count)
        }
    };
    Ok((url, visibility, max_receive_count))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix(p: &'static str) -> ResolveFn {
        Arc::new(move |q| format!("{p}{q}"))
    }

    fn to(r: &'static str) -> ResolveFn {
        Arc::new(move |_| r.to_owned())
    }

    #[test]
    fn without_a_resolver_the_declared_name_is_the_queue() {
        let t = Target::resolve(None, "jobs").unwrap();
        assert_eq!(
            (t.name.as_str(), t.url.as_deref(), t.renamed_from()),
            ("jobs", None, None)
        );
    }

    #[test]
    fn a_prefix_renames_and_keeps_fifo_at_the_end() {
        let t = Target::resolve(Some(&prefix("staging-")), "orders.fifo").unwrap();
        assert_eq!(t.name, "staging-orders.fifo");
        assert_eq!(t.url, None);
        assert_eq!(t.renamed_from().as_deref(), Some("orders.fifo"));
    }

    #[test]
    fn a_url_is_used_as_is_and_names_the_queue_by_its_last_segment() {
        for url in [
            "https://sqs.eu-west-1.amazonaws.com/123456789012/orders-v2",
            "http://localhost:9324/000000000000/orders-v2/",
        ] {
            let t = Target::resolve(Some(&to(url)), "orders").unwrap();
            assert_eq!(t.name, "orders-v2");
            assert_eq!(t.url.as_deref(), Some(url));
        }
    }

    #[test]
    fn an_empty_name_or_a_url_without_a_queue_is_an_invalid_option() {
        for bad in [
            "",
            "  ",
            "https://sqs.eu-west-1.amazonaws.com",
            "http://host/",
        ] {
            let err = Target::resolve(Some(&to(bad)), "orders").unwrap_err();
            match &err {
                BuildError::InvalidOption { queue, message } => {
                    assert_eq!(queue, "orders");
                    assert!(message.contains("queue-name resolver"), "{message}");
                }
                other => panic!("{bad:?}: expected InvalidOption, got {other}"),
            }
        }
    }

    #[test]
    fn queue_not_found_names_the_declared_name_when_renamed() {
        let renamed = Target::resolve(Some(&prefix("a-")), "jobs").unwrap();
        assert_eq!(
            not_found(&renamed, "handler app::run").to_string(),
            "queue \"a-jobs\" does not exist (declared as \"jobs\" and renamed by the builder's \
             queue-name resolver; used by handler app::run): create it, or fix the name"
        );
        let plain = Target::resolve(None, "jobs").unwrap();
        assert_eq!(
            not_found(&plain, "handler app::run").to_string(),
            "queue \"jobs\" does not exist (used by handler app::run): create it, or fix the name"
        );
    }
}
