package sqlite

import (
	"testing"
	"time"

	"verifyd"
)

// A row that changes under every optimistic try is updated on the writer,
// with fn run on the row as it is there; nothing written in between is lost.
func TestUpdateFallsBackToTheWriterWhenTheRowKeepsChanging(t *testing.T) {
	t.Parallel()
	s, _ := openTest(t)
	a := seed(t, s, 1)
	at := base().Add(time.Second)
	calls := 0
	v, err := s.UpdateVerification(t.Context(), a.ID, requestID(1), func(v *verifyd.Verification) error {
		calls++
		if calls <= optimisticTries {
			// Another caller's wrong code lands between this read and its
			// write (fn may call the store only while not on the writer).
			if _, err := s.UpdateVerification(t.Context(), a.ID, requestID(1), func(v *verifyd.Verification) error {
				v.Attempt(at, false)
				return nil
			}); err != nil {
				t.Errorf("the interleaved update: %v", err)
			}
		}
		v.Attempt(at, false)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if calls != optimisticTries+1 {
		t.Fatalf("fn ran %d times, want %d (each try, then on the writer)", calls, optimisticTries+1)
	}
	if want := optimisticTries + 1; v.Attempts != want {
		t.Fatalf("returned %d attempts, want %d", v.Attempts, want)
	}
	got, err := s.FindVerification(t.Context(), a.ID, requestID(1))
	if err != nil {
		t.Fatal(err)
	}
	if got.Attempts != optimisticTries+1 {
		t.Fatalf("%d attempts stored, want %d: an interleaved update was lost", got.Attempts, optimisticTries+1)
	}
}

// fn leaving the row as it was needs no write: the writer is not asked.
func TestUpdateThatChangesNothingSkipsTheWriter(t *testing.T) {
	t.Parallel()
	s, _ := openTest(t)
	a := seed(t, s, 1)
	before := s.WriteStats().Writes
	v, err := s.UpdateVerification(t.Context(), a.ID, requestID(1), func(*verifyd.Verification) error { return nil })
	if err != nil || v.State != verifyd.StatePending {
		t.Fatalf("UpdateVerification = %v, %v", v, err)
	}
	if n := s.WriteStats().Writes - before; n != 0 {
		t.Fatalf("%d writes for an update that changed nothing", n)
	}
}
