package storetest

import (
	"fmt"
	"testing"
	"time"

	"verifyd"
)

// inboxMessage is the n-th dev inbox message, to the number to, at created.
func inboxMessage(n int, to string, created time.Time) *verifyd.InboxMessage {
	return &verifyd.InboxMessage{
		RequestID: requestID(n),
		To:        to,
		From:      "verifyd",
		Sealed:    []byte(fmt.Sprintf("sealed %d", n)),
		Created:   created,
	}
}

func normInbox(ms []*verifyd.InboxMessage) []verifyd.InboxMessage {
	out := make([]verifyd.InboxMessage, len(ms))
	for i, m := range ms {
		out[i] = *m
		out[i].Sealed = normBytes(m.Sealed)
		out[i].Created = normTime(m.Created)
		out[i].CodeMAC = normBytes(m.CodeMAC)
	}
	return out
}

func testInbox(t *testing.T, newStore NewStore) {
	t.Run("PurgeDropsMessagesPastInboxRetention", func(t *testing.T) {
		f := newFixture(t, newStore)
		old := inboxMessage(1, number(1), base())
		fresh := inboxMessage(2, number(1), base().Add(time.Hour))
		if err := f.s.AddInboxMessages(f.ctx, []*verifyd.InboxMessage{old, fresh}); err != nil {
			t.Fatalf("AddInboxMessages: %v", err)
		}
		f.purge(base().Add(verifyd.InboxRetention), 0)
		if got := f.inbox(number(1)); len(got) != 2 {
			t.Fatalf("%d messages after a purge at the oldest one's retention, want both", len(got))
		}
		f.purge(base().Add(verifyd.InboxRetention+time.Minute), 0)
		wantEqual(t, "inbox after the purge", normInbox(f.inbox(number(1))), normInbox([]*verifyd.InboxMessage{fresh}))
	})

	t.Run("AddSetsDistinctIDs", func(t *testing.T) {
		f := newFixture(t, newStore)
		ms := []*verifyd.InboxMessage{inboxMessage(1, number(1), base()), inboxMessage(2, number(1), base())}
		if err := f.s.AddInboxMessages(f.ctx, ms); err != nil {
			t.Fatalf("AddInboxMessages: %v", err)
		}
		more := []*verifyd.InboxMessage{inboxMessage(3, number(2), base())}
		if err := f.s.AddInboxMessages(f.ctx, more); err != nil {
			t.Fatalf("AddInboxMessages: %v", err)
		}
		seen := map[int64]bool{}
		for _, m := range append(ms, more...) {
			if m.ID == 0 || seen[m.ID] {
				t.Fatalf("ID %d is zero or repeated", m.ID)
			}
			seen[m.ID] = true
		}
	})

	// The inbox page and its event stream know a message by its id, and a
	// stream resumes after the last id it sent: an id given again after
	// the purge took its message would be taken for one the page has.
	t.Run("IDsNeverReusedAfterThePurge", func(t *testing.T) {
		f := newFixture(t, newStore)
		old := inboxMessage(1, number(1), base())
		if err := f.s.AddInboxMessages(f.ctx, []*verifyd.InboxMessage{old}); err != nil {
			t.Fatalf("AddInboxMessages: %v", err)
		}
		f.purge(base().Add(verifyd.InboxRetention+time.Minute), 0)
		if got := f.inbox(""); len(got) != 0 {
			t.Fatalf("%d messages after the purge, want none", len(got))
		}
		next := inboxMessage(2, number(1), base().Add(verifyd.InboxRetention+time.Hour))
		if err := f.s.AddInboxMessages(f.ctx, []*verifyd.InboxMessage{next}); err != nil {
			t.Fatalf("AddInboxMessages: %v", err)
		}
		if next.ID <= old.ID {
			t.Fatalf("the message after the purge got id %d, the purged one had %d", next.ID, old.ID)
		}
	})

	t.Run("ListNewestFirstFilteredAndLimited", func(t *testing.T) {
		f := newFixture(t, newStore)
		x, y := number(1), number(2)
		first := []*verifyd.InboxMessage{inboxMessage(1, x, base()), inboxMessage(2, y, base().Add(time.Second))}
		second := []*verifyd.InboxMessage{inboxMessage(3, x, base().Add(2*time.Second))}
		third := []*verifyd.InboxMessage{inboxMessage(4, x, base().Add(3*time.Second))}
		for _, ms := range [][]*verifyd.InboxMessage{first, second, third} {
			if err := f.s.AddInboxMessages(f.ctx, ms); err != nil {
				t.Fatalf("AddInboxMessages: %v", err)
			}
		}
		for _, tc := range []struct {
			to    string
			limit int
			want  []*verifyd.InboxMessage
		}{
			{"", 10, []*verifyd.InboxMessage{third[0], second[0], first[1], first[0]}},
			{"", 2, []*verifyd.InboxMessage{third[0], second[0]}},
			{x, 10, []*verifyd.InboxMessage{third[0], second[0], first[0]}},
			{x, 1, []*verifyd.InboxMessage{third[0]}},
			{y, 10, []*verifyd.InboxMessage{first[1]}},
			{number(3), 10, nil},
		} {
			got, err := f.s.ListInboxMessages(f.ctx, tc.to, tc.limit)
			if err != nil {
				t.Fatalf("ListInboxMessages(%q, %d): %v", tc.to, tc.limit, err)
			}
			wantEqual(t, fmt.Sprintf("ListInboxMessages(%q, %d)", tc.to, tc.limit), normInbox(got), normInbox(tc.want))
		}
	})

	// The inbox shows which digits of a text are its code by checking them
	// against the verification's code MAC, made over its request id and
	// number: the listing carries both, in the one query, and neither once
	// the verification is purged (its message stays the inbox's 7 days).
	t.Run("ListCarriesTheVerificationsCodeMAC", func(t *testing.T) {
		f := newFixture(t, newStore)
		short := &verifyd.Account{Name: "short", Settings: verifyd.Settings{RetentionDays: 1}, Created: base()}
		if err := f.s.CreateAccount(f.ctx, short); err != nil {
			t.Fatalf("CreateAccount: %v", err)
		}
		kept, _ := f.queue(f.account("long"), 1, base())
		gone, _ := f.queue(short, 2, base())
		ms := []*verifyd.InboxMessage{
			inboxMessage(1, kept.PhoneNumber, base()),
			inboxMessage(2, gone.PhoneNumber, base().Add(time.Second)),
			inboxMessage(3, number(3), base().Add(2*time.Second)), // no verification at all
		}
		if err := f.s.AddInboxMessages(f.ctx, ms); err != nil {
			t.Fatalf("AddInboxMessages: %v", err)
		}
		// Newest first, as listed.
		want := func(purged bool) []*verifyd.InboxMessage {
			var out []*verifyd.InboxMessage
			for _, m := range []*verifyd.InboxMessage{ms[2], ms[1], ms[0]} {
				c := *m
				out = append(out, &c)
			}
			out[2].CodeMAC, out[2].PhoneNumber = kept.CodeMAC, kept.PhoneNumber
			if !purged {
				out[1].CodeMAC, out[1].PhoneNumber = gone.CodeMAC, gone.PhoneNumber
			}
			return out
		}
		wantEqual(t, "ListInboxMessages", normInbox(f.inbox("")), normInbox(want(false)))
		f.purge(base().Add(24*time.Hour+time.Second), 1)
		wantEqual(t, "ListInboxMessages after the purge", normInbox(f.inbox("")), normInbox(want(true)))
		wantEqual(t, "ListInboxMessages to one number", normInbox(f.inbox(kept.PhoneNumber)), normInbox(want(true)[2:]))
	})
}

// inbox lists every message to the number to, newest first.
func (f *fixture) inbox(to string) []*verifyd.InboxMessage {
	f.t.Helper()
	ms, err := f.s.ListInboxMessages(f.ctx, to, 0)
	if err != nil {
		f.t.Fatalf("ListInboxMessages: %v", err)
	}
	return ms
}
