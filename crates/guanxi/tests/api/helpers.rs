//! Builders shared by the API tests.

use serde_json::{Value as Json, json};

/// A valid customer body with the given name.
pub fn customer(name: &str) -> Json {
    json!({"name": name, "customer_type": "enterprise"})
}

/// The string at `key` of a record.
pub fn s<'a>(record: &'a Json, key: &str) -> &'a str {
    record[key].as_str().unwrap_or_default()
}
