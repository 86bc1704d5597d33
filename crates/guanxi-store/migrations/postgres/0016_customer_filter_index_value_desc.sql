-- The filtered list's index of migration 0014, in the order the list asks for: highest value
-- first with empty values last (`sort=-registered_capital` is `DESC NULLS LAST` on both
-- backends). PostgreSQL cannot read an ascending index backwards for that order (a backward
-- scan gives NULLS FIRST), so at a million customers it sorted every match of the province and
-- type for each page: 4 requests/s, p50 1.6 s (docs/BENCHMARKS.md). Ascending sorts by value
-- are rarer and sort their matches.
DROP INDEX IF EXISTS ix_customers_province_type_capital;
CREATE INDEX ix_customers_province_type_capital_desc
    ON customers (province, customer_type, registered_capital DESC NULLS LAST, created_at, deleted_at);
