// Package storetest is the one conformance suite every verifyd.Store passes.
// Each store's own tests call Run with a constructor, so SQLite and
// PostgreSQL are held to the same sentences of store.go, tested the same way.
//
// The suite reaches the store only through verifyd.Store. Every subtest gets
// its own store and runs in parallel with the others, so newStore must return
// an isolated store (a new file, database or schema) and close it in
// t.Cleanup. Times are a fixed base plus offsets, never the wall clock, so
// every boundary is exact.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"verifyd"
)

// NewStore returns an empty, migrated store of its own for one subtest.
type NewStore func(t *testing.T) verifyd.Store

// Run checks every promise of verifyd.Store on the stores newStore returns.
func Run(t *testing.T, newStore func(t *testing.T) verifyd.Store) {
	t.Helper()
	groups := []struct {
		name string
		run  func(*testing.T, NewStore)
	}{
		{"Account", testAccounts},
		{"Verification", testVerifications},
		{"UpdateVerification", testUpdateVerification},
		{"Limit", testLimits},
		{"Failures", testFailures},
		{"ResetNumber", testResetNumber},
		{"Block", testBlocks},
		{"Tally", testTally},
		{"Watch", testWatch},
		{"ClaimMessages", testClaimMessages},
		{"FinishMessages", testFinishMessages},
		{"RecordReceipt", testReceipts},
		{"Purge", testPurge},
		{"Inbox", testInbox},
		{"Idempotency", testIdempotency},
		{"Ping", testPing},
		{"ServerKey", testServerKey},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) { g.run(t, newStore) })
	}
}

// base is the suite's "now": a fixed instant with milliseconds, the
// precision every store must keep.
func base() time.Time { return time.Date(2030, time.March, 14, 9, 26, 53, 589_000_000, time.UTC) }

// fixture is one subtest's store and the helpers that fill it.
type fixture struct {
	t   *testing.T
	s   verifyd.Store
	ctx context.Context
}

// newFixture marks the subtest parallel (its store is its own) and opens it.
func newFixture(t *testing.T, newStore NewStore) *fixture {
	t.Helper()
	t.Parallel()
	return &fixture{t: t, s: newStore(t), ctx: t.Context()}
}

// account stores an account named name with a generated-secret credential.
func (f *fixture) account(name string) *verifyd.Account {
	f.t.Helper()
	a := &verifyd.Account{
		Name:         name,
		SecretDigest: bytes.Repeat([]byte{0xa5}, 32),
		Created:      base().Add(-time.Hour),
	}
	if err := f.s.CreateAccount(f.ctx, a); err != nil {
		f.t.Fatalf("CreateAccount(%q): %v", name, err)
	}
	if a.ID == 0 {
		f.t.Fatalf("CreateAccount(%q) left the ID zero", name)
	}
	return a
}

// requestID is the n-th request id: a valid lowercase UUID v4.
func requestID(n int) string { return fmt.Sprintf("%08x-0000-4000-8000-%012x", n, n) }

// number is the n-th phone number of a UK test range.
func number(n int) string { return fmt.Sprintf("447700900%03d", n%1000) }

// pending builds (without storing) the n-th pending verification of a,
// created at created and valid for ten minutes, and its queued message.
func pending(a *verifyd.Account, n int, created time.Time) (*verifyd.Verification, *verifyd.Message) {
	v := &verifyd.Verification{
		ID:           requestID(n),
		AccountID:    a.ID,
		PhoneNumber:  number(n),
		Country:      "GB",
		NumberStatus: verifyd.NumberOn,
		State:        verifyd.StatePending,
		CodeMAC:      bytes.Repeat([]byte{byte(n)}, 32),
		MaxAttempts:  verifyd.DefaultMaxAttempts,
		Created:      created,
		ValidUntil:   created.Add(verifyd.DefaultValidity),
		Updated:      created,
	}
	m := &verifyd.Message{
		RequestID:   v.ID,
		AccountID:   a.ID,
		To:          v.PhoneNumber,
		From:        "verifyd",
		Sealed:      []byte(fmt.Sprintf("sealed text %d", n)),
		NextAttempt: created,
		Deadline:    v.ValidUntil,
		Created:     created,
	}
	return v, m
}

// create stores v and m with limits and fails the test on any error.
func (f *fixture) create(v *verifyd.Verification, m *verifyd.Message, limits ...verifyd.Limit) {
	f.t.Helper()
	if err := f.s.CreateVerification(f.ctx, v, m, limits); err != nil {
		f.t.Fatalf("CreateVerification(%s): %v", v.ID, err)
	}
}

// queue stores the n-th pending verification of a with its message.
func (f *fixture) queue(a *verifyd.Account, n int, created time.Time) (*verifyd.Verification, *verifyd.Message) {
	f.t.Helper()
	v, m := pending(a, n, created)
	f.create(v, m)
	return v, m
}

// find reads a verification that must exist.
func (f *fixture) find(accountID int64, id string) *verifyd.Verification {
	f.t.Helper()
	v, err := f.s.FindVerification(f.ctx, accountID, id)
	if err != nil {
		f.t.Fatalf("FindVerification(%s): %v", id, err)
	}
	return v
}

// delivery reads the Delivery of a verification that must have one.
func (f *fixture) delivery(accountID int64, id string) verifyd.Delivery {
	f.t.Helper()
	v := f.find(accountID, id)
	if v.Delivery == nil {
		f.t.Fatalf("FindVerification(%s).Delivery = nil, want one", id)
	}
	return normDelivery(*v.Delivery)
}

// claim claims at now with a ten-second lease and fails on error.
func (f *fixture) claim(now time.Time, max int) []*verifyd.Message {
	f.t.Helper()
	ms, err := f.s.ClaimMessages(f.ctx, now, lease, max)
	if err != nil {
		f.t.Fatalf("ClaimMessages(%v): %v", now, err)
	}
	return ms
}

// claimOne claims at now and wants exactly the message id.
func (f *fixture) claimOne(now time.Time, id string) *verifyd.Message {
	f.t.Helper()
	ms := f.claim(now, 10)
	if len(ms) != 1 || ms[0].RequestID != id {
		f.t.Fatalf("ClaimMessages at %v = %v, want only %s", now.Sub(base()), ids(ms), id)
	}
	return ms[0]
}

// finish records results and fails on error.
func (f *fixture) finish(results ...verifyd.MessageResult) {
	f.t.Helper()
	if err := f.s.FinishMessages(f.ctx, results); err != nil {
		f.t.Fatalf("FinishMessages: %v", err)
	}
}

// submit claims the message id at now and finishes it Submitted with the
// carrier ids.
func (f *fixture) submit(now time.Time, id string, carrierIDs ...string) {
	f.t.Helper()
	f.claimOne(now, id)
	f.finish(verifyd.MessageResult{RequestID: id, State: verifyd.DeliverySubmitted, CarrierIDs: carrierIDs, At: now})
}

// receipt records r and fails on error.
func (f *fixture) receipt(r verifyd.Receipt) {
	f.t.Helper()
	if err := f.s.RecordReceipt(f.ctx, r); err != nil {
		f.t.Fatalf("RecordReceipt(%s): %v", r.CarrierID, err)
	}
}

// lease is the suite's claim lease.
const lease = 10 * time.Second

// ids lists the request ids of ms, for failure messages.
func ids(ms []*verifyd.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.RequestID
	}
	return out
}

// wantCode fails unless err is an *verifyd.Error with the code.
func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	var e *verifyd.Error
	if !errors.As(err, &e) || e.Code != code {
		t.Fatalf("error = %v, want a *verifyd.Error with code %q", err, code)
	}
}

// normTime makes times comparable with ==: UTC, no monotonic reading.
func normTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Round(0)
}

// normBytes treats an empty slice as nil, which no store can tell apart.
func normBytes(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

func normVerification(v verifyd.Verification) verifyd.Verification {
	v.CodeMAC = normBytes(v.CodeMAC)
	v.Created, v.ValidUntil = normTime(v.Created), normTime(v.ValidUntil)
	v.Verified, v.Updated = normTime(v.Verified), normTime(v.Updated)
	if v.Delivery != nil {
		d := normDelivery(*v.Delivery)
		v.Delivery = &d
	}
	return v
}

func normDelivery(d verifyd.Delivery) verifyd.Delivery {
	d.Updated = normTime(d.Updated)
	return d
}

func normMessage(m verifyd.Message) verifyd.Message {
	m.Sealed = normBytes(m.Sealed)
	m.NextAttempt, m.Deadline, m.Created = normTime(m.NextAttempt), normTime(m.Deadline), normTime(m.Created)
	return m
}

func normAccount(a verifyd.Account) verifyd.Account {
	a.SecretDigest = normBytes(a.SecretDigest)
	a.Created = normTime(a.Created)
	return a
}

// wantEqual fails unless got and want are deeply equal once normalised.
func wantEqual[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}
