package sqlite

import (
	"testing"
	"time"

	"verifyd"
)

// A database made before provisional receipts (migration 0005) keeps its
// messages, parts and kept receipts through the migration, all definitive,
// and they settle as before; a provisional receipt then works on them.
func TestProvisionalReceiptsOnADatabaseFromBefore(t *testing.T) {
	t.Parallel()
	old, path := openTest(t)
	a := seed(t, old, 2)
	ctx := t.Context()
	at := func(sec int) time.Time { return base().Add(time.Duration(sec) * time.Second) }
	if ms, err := old.ClaimMessages(ctx, base(), time.Minute, 10); err != nil || len(ms) != 2 {
		t.Fatalf("ClaimMessages = %d, %v; want 2", len(ms), err)
	}
	if err := old.FinishMessages(ctx, []verifyd.MessageResult{{RequestID: requestID(1), State: verifyd.DeliverySubmitted,
		CarrierIDs: []string{"p1", "p2", "p3"}, At: at(1)}}); err != nil {
		t.Fatal(err)
	}
	for _, r := range []verifyd.Receipt{
		{CarrierID: "p1", State: verifyd.DeliveryDelivered, At: at(2)},
		{CarrierID: "early", State: verifyd.DeliveryUndeliverable, Error: "UNDELIV", At: at(2)},
	} {
		if err := old.RecordReceipt(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	old.Close()

	// The schema as it was before the step, the rows as they were.
	db := rawDB(t, path)
	if _, err := db.ExecContext(ctx, `ALTER TABLE message_parts DROP COLUMN provisional;
		ALTER TABLE orphan_receipts DROP COLUMN provisional;
		ALTER TABLE messages DROP COLUMN provisional;
		DELETE FROM schema_migrations WHERE version = 5`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}

	delivery := func(id string) verifyd.Delivery {
		t.Helper()
		v, err := s.FindVerification(ctx, a.ID, id)
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
		if err := s.RecordReceipt(ctx, step.r); err != nil {
			t.Fatal(err)
		}
		if d := delivery(requestID(1)); d.State != step.want {
			t.Fatalf("after %s %s: delivery %+v, want %s", step.r.CarrierID, step.r.Error, d, step.want)
		}
	}
	// The receipt kept before the migration is definitive: the submit that
	// finds it fails for good, and a later receipt changes nothing.
	if err := s.FinishMessages(ctx, []verifyd.MessageResult{{RequestID: requestID(2), State: verifyd.DeliverySubmitted,
		CarrierIDs: []string{"early"}, At: at(7)}}); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordReceipt(ctx, verifyd.Receipt{CarrierID: "early", State: verifyd.DeliveryDelivered, At: at(8)}); err != nil {
		t.Fatal(err)
	}
	if d := delivery(requestID(2)); d.State != verifyd.DeliveryUndeliverable || d.Error != "UNDELIV" {
		t.Fatalf("delivery %+v, want Undeliverable UNDELIV", d)
	}
}
