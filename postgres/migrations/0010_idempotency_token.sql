-- An Idempotency-Key's reservation is named by a random token its request
-- draws (verifyd.IdempotentRequest.Token): only that request records its
-- create's answer on it or releases it, which its time could not promise,
-- as two double-submits may land in one millisecond. A request whose
-- reservation's answer was lost releases it by this token. A row from
-- before this step has none (NULL), which no request names: it is replaced
-- after the lease, or replayed once done, as before.
ALTER TABLE idempotent_requests ADD COLUMN token bytea;
