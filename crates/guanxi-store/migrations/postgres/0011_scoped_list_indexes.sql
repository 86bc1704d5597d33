-- Lists limited to an owner or a department (data scopes "self", "subordinates", "department",
-- "department tree") page newest first: with (owner_id, id) and (department_id, id) the database
-- walks the scoped rows in id order and stops after one page instead of sorting the whole
-- department's records (docs/BENCHMARKS.md, "list as a salesperson").
DROP INDEX ix_customers_owner;
DROP INDEX ix_customers_department;
CREATE INDEX ix_customers_owner ON customers (owner_id, id);
CREATE INDEX ix_customers_department ON customers (department_id, id);
DROP INDEX ix_leads_owner;
DROP INDEX ix_leads_department;
CREATE INDEX ix_leads_owner ON leads (owner_id, id);
CREATE INDEX ix_leads_department ON leads (department_id, id);
CREATE INDEX ix_contacts_owner ON contacts (owner_id, id);
CREATE INDEX ix_contacts_department ON contacts (department_id, id);
CREATE INDEX ix_follow_ups_owner ON follow_ups (owner_id, id);
CREATE INDEX ix_follow_ups_department ON follow_ups (department_id, id);
