-- The customer list filtered by region and type and sorted by value (registered capital) — the
-- shape of the "filtered + sorted list" budget in docs/BENCHMARKS.md — walks this index in sort
-- order and stops after one page, instead of sorting every customer of the province.
CREATE INDEX ix_customers_province_type_capital ON customers (province, customer_type, registered_capital);
