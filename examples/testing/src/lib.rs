//! A handler in a library, so that tests can reach it: `tests/reservations.rs` runs the real
//! consumer against sqs-local, and the unit tests below call the handler as a plain function.
//!
//! Run with `cargo run -p example-testing`, test with `cargo test -p example-testing`
//!
//! The handler reserves stock for an order. Enough stock: reserved, and the message is
//! deleted. Too little: an error, and the message is left for redelivery (stock may arrive).
//! An unknown product: a [`NonRetryable`] error, and the message is deleted, since retrying
//! cannot help.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqs_handler::{
    Json, NonRetryable, QueueOptions, SqsConsumer, SqsConsumerBuilder, State, sqs_message_handler,
};

/// The queue the handler consumes.
pub const QUEUE: &str = "reservations";

/// A message: reserve `quantity` of `sku` for `order`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    /// The order.
    pub order: String,
    /// The product.
    pub sku: String,
    /// How many.
    pub quantity: u32,
}

/// Why a reservation failed.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReserveError {
    /// Fewer in stock than asked for; worth retrying later.
    #[error("only {available} of {sku} in stock, {wanted} wanted")]
    OutOfStock {
        /// The product.
        sku: String,
        /// In stock.
        available: u32,
        /// Asked for.
        wanted: u32,
    },
    /// No such product; retrying cannot help.
    #[error("unknown product {0}")]
    UnknownSku(String),
}

/// Stock by product: a database in a real service.
#[derive(Debug, Clone, Default)]
pub struct Inventory(Arc<Mutex<HashMap<String, u32>>>);

impl Inventory {
    /// An inventory with these products in stock.
    pub fn with_stock<'a>(stock: impl IntoIterator<Item = (&'a str, u32)>) -> Self {
        let stock = stock.into_iter().map(|(sku, n)| (sku.to_owned(), n));
        Self(Arc::new(Mutex::new(stock.collect())))
    }

    /// How many of `sku` are in stock, if it is a product.
    pub fn stock(&self, sku: &str) -> Option<u32> {
        self.lock().get(sku).copied()
    }

    /// Adds `quantity` of `sku` to the stock.
    pub fn restock(&self, sku: &str, quantity: u32) {
        *self.lock().entry(sku.to_owned()).or_default() += quantity;
    }

    /// Takes `quantity` of `sku` out of stock, or says why it cannot.
    pub fn reserve(&self, sku: &str, quantity: u32) -> Result<(), ReserveError> {
        let mut stock = self.lock();
        let available = stock
            .get_mut(sku)
            .ok_or_else(|| ReserveError::UnknownSku(sku.to_owned()))?;
        if *available < quantity {
            return Err(ReserveError::OutOfStock {
                sku: sku.to_owned(),
                available: *available,
                wanted: quantity,
            });
        }
        *available -= quantity;
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, u32>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Reserves the stock an order needs. `Ok` deletes the message; `OutOfStock` leaves it for
/// redelivery; `UnknownSku`, wrapped in [`NonRetryable`], deletes it.
#[sqs_message_handler("reservations")]
pub async fn reserve(
    Json(reservation): Json<Reservation>,
    State(inventory): State<Inventory>,
) -> Result<(), sqs_handler::BoxError> {
    match inventory.reserve(&reservation.sku, reservation.quantity) {
        Ok(()) => {
            tracing::info!(order = %reservation.order, sku = %reservation.sku, "reserved");
            Ok(())
        }
        Err(e @ ReserveError::UnknownSku(_)) => Err(NonRetryable::new(e).into()),
        Err(e) => Err(e.into()),
    }
}

/// The consumer of [`QUEUE`]: the handler above is discovered, `inventory` is its state.
pub fn consumer(aws_config: &aws_config::SdkConfig, inventory: Inventory) -> SqsConsumerBuilder {
    SqsConsumer::builder(aws_config)
        // Shutdown lets a long poll in flight finish: a short one stops quickly.
        .queue(
            QUEUE,
            QueueOptions::default().wait_time(Duration::from_secs(1)),
        )
        .state(inventory)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(sku: &str, quantity: u32) -> Json<Reservation> {
        Json(Reservation {
            order: "o-1".into(),
            sku: sku.into(),
            quantity,
        })
    }

    // The attribute leaves the function as written: a unit test calls it with its extractors.
    #[tokio::test]
    async fn reserves_what_is_in_stock() {
        let inventory = Inventory::with_stock([("apple", 3)]);
        reserve(order("apple", 2), State(inventory.clone()))
            .await
            .unwrap();
        assert_eq!(inventory.stock("apple"), Some(1));
    }

    #[tokio::test]
    async fn too_little_stock_is_a_retryable_error_and_takes_nothing() {
        let inventory = Inventory::with_stock([("apple", 1)]);
        let err = reserve(order("apple", 2), State(inventory.clone()))
            .await
            .unwrap_err();
        assert!(!NonRetryable::is_in(&*err));
        assert_eq!(err.to_string(), "only 1 of apple in stock, 2 wanted");
        assert_eq!(inventory.stock("apple"), Some(1));
    }

    #[tokio::test]
    async fn an_unknown_product_is_not_retried() {
        let inventory = Inventory::with_stock([("apple", 1)]);
        let err = reserve(order("pear", 1), State(inventory))
            .await
            .unwrap_err();
        assert!(NonRetryable::is_in(&*err));
    }
}
