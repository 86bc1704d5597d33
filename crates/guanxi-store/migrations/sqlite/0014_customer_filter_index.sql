-- The customer list filtered by region and type (and a creation-time range) and sorted by value
-- (registered capital) — the shape of the "filtered + sorted list" budget in docs/BENCHMARKS.md:
-- the page walks this index in sort order and stops after one page instead of sorting every
-- customer of the province, and the list's total is counted from the index alone (it holds
-- every column the count reads).
CREATE INDEX ix_customers_province_type_capital
    ON customers (province, customer_type, registered_capital, created_at, deleted_at);
