package smpp

// SetNextSeq makes every bound session of c number its next request seq, so
// a test can watch sequence numbers wrap without sending two billion PDUs.
func SetNextSeq(c *Client, seq uint32) {
	for _, s := range *c.tx.Load() {
		s.mu.Lock()
		s.seq = seq - 1
		s.mu.Unlock()
	}
}

// SetRoundRobin sets the counter pick spreads submits with, so a test can
// watch it pass 2^31 without sending two billion PDUs.
func SetRoundRobin(c *Client, v uint32) { c.rr.Store(v) }
