-- Audits each customer ran in the last minute, for the per-customer limit
-- of Audit calls (Store::admit_audit): one audit scans a customer's whole
-- mirror, so a customer may not run them back to back. Rows older than a
-- minute are deleted by the next admission of the same customer.
CREATE TABLE audit_calls (
    customer_id bigint NOT NULL REFERENCES customers (id),
    called_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_calls_by_customer ON audit_calls (customer_id, called_at);
