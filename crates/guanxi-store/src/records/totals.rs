//! Remembered answers of count-like statements, kept for a few seconds instead of being asked
//! again on every page request. A capped total counts up to `DEFAULT_TOTAL_CAP + 1` matching
//! rows; once a list has more than the cap its total shows as "10,000+", a figure that small
//! changes do not alter (the count is most of a list request's cost on a large table). Totals
//! below the cap are always counted afresh, so creating or deleting a record shows at once where
//! the number is exact. The public-pool probe of scoped lists keeps its "the pool has records"
//! answer here too (a stale yes costs one walk of an empty pool; a no is never kept).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::sql::Sql;

/// How long a remembered answer is reused.
const FRESH_FOR: Duration = Duration::from_secs(10);
/// Distinct count statements remembered at most (filters and scopes multiply them); the map is
/// emptied when full, which costs one recount per list.
const MAX_ENTRIES: usize = 10_000;

#[derive(Debug, Clone, Default)]
pub(super) struct RememberedAnswers {
    seen: Arc<Mutex<HashMap<String, Instant>>>,
}

impl RememberedAnswers {
    fn key(count: &Sql) -> String {
        format!("{}\u{0}{:?}", count.text(), count.binds())
    }

    /// Whether this statement recently gave the remembered answer (a total over the cap, a
    /// non-empty pool).
    pub(super) fn is_fresh(&self, count: &Sql) -> bool {
        let key = Self::key(count);
        let Ok(seen) = self.seen.lock() else { return false };
        seen.get(&key).is_some_and(|at| at.elapsed() < FRESH_FOR)
    }

    /// Remembers that this statement gave that answer now.
    pub(super) fn remember(&self, count: &Sql) {
        let key = Self::key(count);
        if let Ok(mut seen) = self.seen.lock() {
            if seen.len() >= MAX_ENTRIES {
                seen.clear();
            }
            seen.insert(key, Instant::now());
        }
    }
}
