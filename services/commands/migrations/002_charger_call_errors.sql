-- A charger's CallError (the gateway's 422) is an attempt outcome of its own: the charger answered
-- and refused, unlike the gateway refusing ('rejected').
ALTER TABLE attempts DROP CONSTRAINT attempts_result_check;
ALTER TABLE attempts ADD CONSTRAINT attempts_result_check
    CHECK (result IN ('acked', 'rejected', 'call_error', 'unavailable', 'timeout', 'unknown'));
