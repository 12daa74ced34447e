package postgres_test

import (
	"testing"
	"time"

	"verifyd"
)

// A database made before provisional receipts (migration 0007) keeps its
// messages, parts and kept receipts through the migration, all definitive
// and counted as before, and they settle as before; a provisional receipt
// then works on them.
func TestProvisionalReceiptsOnADatabaseFromBefore(t *testing.T) {
	t.Parallel()
	dsn := newDatabase(t)
	old := open(t, dsn)
	a := createAccount(t, old)
	var reqs []string
	for n := range 2 {
		v, m := pending(a, n)
		if err := old.CreateVerification(t.Context(), v, m, nil); err != nil {
			t.Fatal(err)
		}
		reqs = append(reqs, v.ID)
	}
	at := func(s int) time.Time { return now().Add(time.Duration(s) * time.Second) }
	if ms, err := old.ClaimMessages(t.Context(), now(), time.Minute, 10); err != nil || len(ms) != 2 {
		t.Fatalf("ClaimMessages = %d messages, %v; want 2", len(ms), err)
	}
	if err := old.FinishMessages(t.Context(), []verifyd.MessageResult{{RequestID: reqs[0], State: verifyd.DeliverySubmitted,
		CarrierIDs: []string{"p1", "p2", "p3"}, At: at(1)}}); err != nil {
		t.Fatal(err)
	}
	for _, r := range []verifyd.Receipt{
		{CarrierID: "p1", State: verifyd.DeliveryDelivered, At: at(2)},
		{CarrierID: "early", State: verifyd.DeliveryUndeliverable, Error: "UNDELIV", At: at(2)},
	} {
		if err := old.RecordReceipt(t.Context(), r); err != nil {
			t.Fatal(err)
		}
	}
	old.Close()

	// The schema as it was before the step, the rows as they were.
	if _, err := connect(t, dsn).Exec(t.Context(), `ALTER TABLE message_parts DROP COLUMN provisional;
		ALTER TABLE messages DROP COLUMN parts_unsure;
		DELETE FROM schema_migrations WHERE version = 7`); err != nil {
		t.Fatal(err)
	}
	s := open(t, dsn)
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}

	delivery := func(id string) verifyd.Delivery {
		t.Helper()
		v, err := s.FindVerification(t.Context(), a.ID, id)
		if err != nil || v.Delivery == nil {
			t.Fatalf("FindVerification(%s) = %+v, %v", id, v, err)
		}
		return *v.Delivery
	}
	for _, step := range []struct {
		r    verifyd.Receipt
		want verifyd.DeliveryState
	}{
		{verifyd.Receipt{CarrierID: "p2", State: verifyd.DeliveryFailed, Error: "UNKNOWN", At: at(3), Provisional: true}, verifyd.DeliveryFailed},
		{verifyd.Receipt{CarrierID: "p2", State: verifyd.DeliveryDelivered, At: at(4)}, verifyd.DeliverySubmitted},
		{verifyd.Receipt{CarrierID: "p1", State: verifyd.DeliveryFailed, Error: "UNKNOWN", At: at(5), Provisional: true}, verifyd.DeliverySubmitted},
		{verifyd.Receipt{CarrierID: "p3", State: verifyd.DeliveryDelivered, At: at(6)}, verifyd.DeliveryDelivered},
	} {
		if err := s.RecordReceipt(t.Context(), step.r); err != nil {
			t.Fatal(err)
		}
		if d := delivery(reqs[0]); d.State != step.want {
			t.Fatalf("after %s %s: delivery %+v, want %s", step.r.CarrierID, step.r.Error, d, step.want)
		}
	}
	// The receipt kept before the migration is definitive: the submit that
	// finds it fails for good, and a later receipt changes nothing.
	if err := s.FinishMessages(t.Context(), []verifyd.MessageResult{{RequestID: reqs[1], State: verifyd.DeliverySubmitted,
		CarrierIDs: []string{"early"}, At: at(7)}}); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordReceipt(t.Context(), verifyd.Receipt{CarrierID: "early", State: verifyd.DeliveryDelivered, At: at(8)}); err != nil {
		t.Fatal(err)
	}
	if d := delivery(reqs[1]); d.State != verifyd.DeliveryUndeliverable || d.Error != "UNDELIV" {
		t.Fatalf("delivery %+v, want Undeliverable UNDELIV", d)
	}
	checkPartCounts(t, dsn, map[string]bool{reqs[1]: true})
}
