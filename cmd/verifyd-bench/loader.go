package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"verifyd"
	"verifyd/otp"
)

// Validating needs requests whose codes the harness knows. Creating them
// through the API and reading each code back from the inbox would cost
// more time than the run itself, so they are written beforehand, with the
// server stopped, through the same store API and the same MAC (otp.Keyring)
// that verifyd's create uses: verifyd then finds exactly the rows it would
// have written. A wrong MAC would show up as CodeNotVerified where
// CodeVerified is expected, so the run checks the loader too.

// rows are pre-created verifications: ids and codes, packed.
type rows struct {
	ids   []byte // 36 bytes each
	codes []int32
}

func (r *rows) len() int          { return len(r.codes) }
func (r *rows) id(i int) string   { return string(r.ids[36*i : 36*i+36]) }
func (r *rows) code(i int) string { return fmt.Sprintf("%06d", r.codes[i]) }

// wrongCode is a well-formed code that is not row i's.
func (r *rows) wrongCode(i int) string { return fmt.Sprintf("%06d", (r.codes[i]+1)%1_000_000) }

// loadSpec says what to pre-create.
type loadSpec struct {
	n           int
	account     string
	key         []byte // the server key verifyd will run with
	maxAttempts int    // wrong codes that lock a row
	nums        *numbers
}

// loadRows writes spec.n pending verifications into store from many
// goroutines at once, so that the store's group commit (SQLite) or
// concurrent commits (PostgreSQL) take them in big batches.
func loadRows(ctx context.Context, store verifyd.Store, spec loadSpec) (*rows, error) {
	keyring, err := otp.NewKeyring(spec.key)
	if err != nil {
		return nil, err
	}
	a, err := store.FindAccountByName(ctx, spec.account)
	if err != nil {
		return nil, fmt.Errorf("loader: account %s: %w", spec.account, err)
	}
	r := &rows{ids: make([]byte, 36*spec.n), codes: make([]int32, spec.n)}
	var seed [32]byte
	rand.Read(seed[:])
	src := mrand.NewChaCha8(seed)
	for i := range r.codes {
		var b [16]byte
		src.Read(b[:])
		b[6] = b[6]&0x0f | 0x40
		b[8] = b[8]&0x3f | 0x80
		formatUUID(r.ids[36*i:36*i+36], b)
		r.codes[i] = int32(src.Uint64() % 1_000_000)
	}

	now := time.Now().UTC()
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range 512 {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= spec.n || ctx.Err() != nil {
					return
				}
				id, number := r.id(i), spec.nums.next()
				v := &verifyd.Verification{
					ID:           id,
					AccountID:    a.ID,
					PhoneNumber:  number,
					Country:      "GB",
					NumberStatus: verifyd.NumberOn,
					State:        verifyd.StatePending,
					CodeMAC:      keyring.MAC(id, number, r.code(i)),
					MaxAttempts:  spec.maxAttempts,
					Created:      now,
					ValidUntil:   now.Add(verifyd.MaxValidity),
					Updated:      now,
				}
				// No message: these rows stand for requests whose text went
				// out long ago, and a queued message would set the delivery
				// worker going during the run.
				if err := store.CreateVerification(ctx, v, nil, nil); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("loader: row %d: %w", i, err)
					}
					mu.Unlock()
					cancel()
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	return r, nil
}

func formatUUID(dst []byte, b [16]byte) {
	var h [32]byte
	hex.Encode(h[:], b[:])
	copy(dst[0:8], h[0:8])
	dst[8] = '-'
	copy(dst[9:13], h[8:12])
	dst[13] = '-'
	copy(dst[14:18], h[12:16])
	dst[18] = '-'
	copy(dst[19:23], h[16:20])
	dst[23] = '-'
	copy(dst[24:36], h[20:32])
}
