-- A rate limit is a sliding window: no more than N sends in any PERIOD
-- (verifyd.Limit.Take), so a bucket keeps its recent sends
-- (verifyd.Bucket.Encode), not only the one timestamp the earlier rate
-- algorithm needed. tat is now when the last of them leaves the window,
-- which the purge goes by as before. A row from before this step has no
-- sends; its tat is read as the sends it stood for (verifyd.DecodeBucket).
ALTER TABLE limit_buckets ADD COLUMN sends BLOB;
