//! HTTP routes, one module per area. Each module exposes `router()`; `app::router` merges them.

pub mod audit;
pub mod health;
pub mod jobs;
pub mod meta;
pub mod records;

use serde::Serialize;

/// The success envelope: `{"data": …, "meta": …}`.
#[derive(Serialize)]
pub struct Envelope<T: Serialize, M: Serialize = ()> {
    pub data: T,
    #[serde(skip_serializing_if = "is_unit")]
    pub meta: M,
}

fn is_unit<M: Serialize>(m: &M) -> bool {
    serde_json::to_value(m).is_ok_and(|v| v.is_null())
}

/// Wraps data without meta.
pub fn data<T: Serialize>(data: T) -> axum::Json<Envelope<T>> {
    axum::Json(Envelope { data, meta: () })
}
