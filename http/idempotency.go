package http

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"net/http"

	"verifyd"
)

// maxIdempotencyKey bounds the Idempotency-Key header (the IETF draft's keys
// are UUIDs; 255 leaves room for any client's scheme).
const maxIdempotencyKey = 255

// idempotent runs fn at most once per (account, key): a repeat with the
// same body gets the first answer again, one with another body 422, one
// while the first is still running 409. Only a 202 is kept. A refusal (a
// malformed or refused create, Throttled included) changes nothing, as
// every bad input must not, so the corrected request, or the later one a
// Throttled invites, runs under the same key; a 5xx's retry runs anew too.
func (s *Server) idempotent(w http.ResponseWriter, r *http.Request, a *verifyd.Account, key string, body []byte, fn func(w http.ResponseWriter, reserved *verifyd.IdempotentRequest) error) error {
	if len(key) > maxIdempotencyKey || !printable(key) {
		return verifyd.Invalid(verifyd.Failure{Property: "Idempotency-Key", Code: verifyd.FailInvalidJSON,
			Details: "The Idempotency-Key header must be 1 to 255 printable ASCII characters."})
	}
	sum := sha256.Sum256(body)
	now := s.now().UTC()
	ctx := context.WithoutCancel(r.Context())
	// The token names this request's reservation: its create records its
	// answer on it and its release frees it, and neither touches a
	// reservation another request made, even in the same millisecond.
	token := make([]byte, 16)
	if err := s.draw(func(r io.Reader) error { _, err := io.ReadFull(r, token); return err }); err != nil {
		return err
	}
	reserved := &verifyd.IdempotentRequest{AccountID: a.ID, Key: key, BodyHash: sum[:], Created: now, Token: token}
	release := &verifyd.IdempotentRequest{AccountID: a.ID, Key: key, Created: now, Token: token}
	prev, err := s.cfg.Store.BeginIdempotentRequest(ctx, reserved)
	if err != nil {
		// The reservation may have committed with its answer lost (the
		// database's connection dropped): then the key would answer
		// 409 "still running" until the lease ended, for a request that
		// never ran. Freeing it lets the client's retry run at once; a
		// reservation that was never made, or that is another's, is left
		// as it is.
		if rerr := s.cfg.Store.FinishIdempotentRequest(ctx, release); rerr != nil {
			s.log.Error("releasing an idempotency key", "request", requestID(r.Context()), "err", rerr)
		}
		return err
	}
	if prev != nil {
		switch {
		case !bytes.Equal(prev.BodyHash, sum[:]):
			return verifyd.Errorf(verifyd.EMISMATCH, "This Idempotency-Key was used with a different request body.")
		case !prev.Done:
			return verifyd.ErrIdempotencyKeyRunning
		}
		w.Header().Set("Idempotent-Replayed", "true")
		writeJSONBytes(w, prev.Status, prev.Response)
		return nil
	}

	rec := &recorder{header: http.Header{}}
	done := false
	defer func() {
		if !done {
			// A panic: free the key so the client's retry can run, and let
			// the panic go on to the recovery in ServeHTTP.
			s.cfg.Store.FinishIdempotentRequest(ctx, release)
		}
	}()
	// fn records its 202 on the key in the create's own transaction, so
	// the record says what the create did even if this process dies now;
	// any other answer releases the key, so that a retry runs anew.
	if err := fn(rec, reserved); err != nil {
		s.renderError(rec, r, err)
	}
	done = true
	if rec.status != http.StatusAccepted {
		if err := s.cfg.Store.FinishIdempotentRequest(ctx, release); err != nil {
			// The answer is still the truth and is sent; only a retry with
			// this key now waits out the lease (IdempotencyLease). That is
			// worth an operator's attention.
			s.log.Error("releasing an idempotency key", "request", requestID(r.Context()), "err", err)
		}
	}
	for k, v := range rec.header {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.status)
	w.Write(rec.body.Bytes())
	return nil
}

// printable reports whether s is non-empty visible ASCII (spaces allowed).
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return s != ""
}

// recorder keeps an answer so it can be both stored and sent.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}
