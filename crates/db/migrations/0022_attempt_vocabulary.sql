-- One vocabulary from the database to the API: the attempt log's outcome and error class hold
-- only the codes of `synap_db::attempts::{Outcome, ErrorClass}` (a unit test keeps the lists
-- equal). Added NOT VALID, then validated: the check of existing rows does not block writers.
ALTER TABLE delivery_attempts
    ADD CONSTRAINT delivery_attempts_outcome_check
        CHECK (outcome IN ('delivered', 'retrying', 'failed')) NOT VALID,
    ADD CONSTRAINT delivery_attempts_error_class_check
        CHECK (error_class IN ('timeout', 'connect', 'dns', 'tls', 'http_status', 'refused', 'circuit_open', 'disabled', 'secret_unreadable', 'other')) NOT VALID;
ALTER TABLE delivery_attempts VALIDATE CONSTRAINT delivery_attempts_outcome_check;
ALTER TABLE delivery_attempts VALIDATE CONSTRAINT delivery_attempts_error_class_check;

COMMENT ON COLUMN delivery_attempts.outcome IS
    'delivered; retrying (failed, another attempt is scheduled); failed (final: schedule exhausted, '
    'subscription gone or disabled, a secret that cannot be opened, or a failed test send)';
COMMENT ON COLUMN delivery_attempts.error_class IS
    'NULL when delivered; timeout, connect, dns, tls, http_status, refused (outbound address policy), '
    'disabled, secret_unreadable, other; circuit_open only on rows written before migration 22';
