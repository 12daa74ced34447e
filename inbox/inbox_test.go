package inbox_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"verifyd"
	"verifyd/inbox"
)

// store keeps added messages and numbers them from 1.
type store struct {
	verifyd.InboxStore
	added []*verifyd.InboxMessage
	err   error
}

func (s *store) AddInboxMessages(_ context.Context, ms []*verifyd.InboxMessage) error {
	if s.err != nil {
		return s.err
	}
	for _, m := range ms {
		s.added = append(s.added, m)
		m.ID = int64(len(s.added))
	}
	return nil
}

// sealer marks a text as sealed for its request.
type sealer struct{}

func (sealer) Seal(requestID string, p []byte) []byte {
	return fmt.Appendf(nil, "sealed(%s,%s)", requestID, p)
}

func TestSend(t *testing.T) {
	if _, ok := any(&inbox.Sender{}).(verifyd.FinalSender); !ok {
		t.Fatal("the inbox is not a FinalSender: its messages would wait for receipts that never come")
	}
	t.Parallel()
	now := time.Date(2030, 3, 14, 9, 26, 53, 0, time.UTC)

	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		st := &store{}
		s := inbox.New(st, sealer{}, func() time.Time { return now })
		ids, err := s.Send(t.Context(), &verifyd.SMS{RequestID: "r1", To: "447700900123", From: "Shop", Text: "Your code is 123456"})
		if err != nil {
			t.Fatal(err)
		}
		if len(ids) != 1 || ids[0] != "inbox-1" {
			t.Fatalf("carrier ids %v, want [inbox-1]", ids)
		}
		m := st.added[0]
		if m.RequestID != "r1" || m.To != "447700900123" || m.From != "Shop" || !m.Created.Equal(now) ||
			string(m.Sealed) != "sealed(r1,Your code is 123456)" {
			t.Fatalf("kept %+v, want the message with its text sealed", m)
		}
	})

	t.Run("ErrTemporaryWhenTheStoreFails", func(t *testing.T) {
		t.Parallel()
		st := &store{err: errors.New("disk full")}
		s := inbox.New(st, sealer{}, func() time.Time { return now })
		_, err := s.Send(t.Context(), &verifyd.SMS{RequestID: "r1", Text: "x"})
		if se := verifyd.SendErrorOf(err); err == nil || se.Kind != verifyd.SendTemporary {
			t.Fatalf("Send = %v, want a temporary failure", err)
		}
	})
}
