package storetest

import (
	"crypto/rand"
	"testing"
	"time"

	"verifyd"
)

// idempotent is a reservation of key by account at created, named by a
// token of its own, as each request draws one.
func idempotent(account int64, key string, created time.Time) *verifyd.IdempotentRequest {
	return &verifyd.IdempotentRequest{AccountID: account, Key: key, BodyHash: []byte("sha256 of the body"), Created: created,
		Token: []byte(rand.Text())}
}

// release is what a request sends to free the reservation r, as the
// server does after an error: its key and token, and no answer.
func release(r *verifyd.IdempotentRequest) *verifyd.IdempotentRequest {
	return &verifyd.IdempotentRequest{AccountID: r.AccountID, Key: r.Key, Created: r.Created, Token: r.Token}
}

// begin reserves r and returns what was there.
func (f *fixture) begin(r *verifyd.IdempotentRequest) *verifyd.IdempotentRequest {
	f.t.Helper()
	got, err := f.s.BeginIdempotentRequest(f.ctx, r)
	if err != nil {
		f.t.Fatalf("BeginIdempotentRequest(%s): %v", r.Key, err)
	}
	return got
}

func normIdempotent(r *verifyd.IdempotentRequest) verifyd.IdempotentRequest {
	if r == nil {
		return verifyd.IdempotentRequest{}
	}
	out := *r
	out.BodyHash, out.Response = normBytes(r.BodyHash), normBytes(r.Response)
	out.Created = normTime(r.Created)
	out.Token = nil // another request's name for its reservation, not returned
	return out
}

func testIdempotency(t *testing.T, newStore NewStore) {
	t.Run("FreeKeyIsReservedThenSeenRunning", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		r := idempotent(a.ID, "k1", base())
		if got := f.begin(r); got != nil {
			t.Fatalf("first Begin = %+v, want nil", got)
		}
		got := f.begin(idempotent(a.ID, "k1", base().Add(time.Second)))
		wantEqual(t, "running record", normIdempotent(got), normIdempotent(r))
	})

	t.Run("FinishedAnswerIsReturned", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		r := idempotent(a.ID, "k1", base())
		f.begin(r)
		r.Done, r.Status, r.Response = true, 202, []byte(`{"requestId":"x"}`)
		if err := f.s.FinishIdempotentRequest(f.ctx, r); err != nil {
			t.Fatalf("FinishIdempotentRequest: %v", err)
		}
		got := f.begin(idempotent(a.ID, "k1", base().Add(time.Minute)))
		wantEqual(t, "finished record", normIdempotent(got), normIdempotent(r))
	})

	t.Run("ReleasedKeyRunsAnew", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		r := idempotent(a.ID, "k1", base())
		f.begin(r)
		r.Status = 0
		if err := f.s.FinishIdempotentRequest(f.ctx, r); err != nil {
			t.Fatalf("FinishIdempotentRequest: %v", err)
		}
		if got := f.begin(idempotent(a.ID, "k1", base().Add(time.Second))); got != nil {
			t.Fatalf("Begin after release = %+v, want nil", got)
		}
	})

	t.Run("KeysBelongToTheirAccount", func(t *testing.T) {
		f := newFixture(t, newStore)
		a, b := f.account("a"), f.account("b")
		f.begin(idempotent(a.ID, "k1", base()))
		if got := f.begin(idempotent(b.ID, "k1", base())); got != nil {
			t.Fatalf("another account's key was taken: %+v", got)
		}
		if got := f.begin(idempotent(a.ID, "k2", base())); got != nil {
			t.Fatalf("another key was taken: %+v", got)
		}
	})

	t.Run("RecordsOlderThan24HoursAreFree", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		r := idempotent(a.ID, "k1", base())
		f.begin(r)
		r.Done, r.Status, r.Response = true, 202, []byte(`{}`)
		if err := f.s.FinishIdempotentRequest(f.ctx, r); err != nil {
			t.Fatalf("FinishIdempotentRequest: %v", err)
		}
		day := 24 * time.Hour
		if got := f.begin(idempotent(a.ID, "k1", base().Add(day-time.Second))); got == nil || !got.Done {
			t.Fatalf("Begin a second before 24h = %+v, want the finished record", got)
		}
		fresh := idempotent(a.ID, "k1", base().Add(day+time.Second))
		if got := f.begin(fresh); got != nil {
			t.Fatalf("Begin a second after 24h = %+v, want nil", got)
		}
		got := f.begin(idempotent(a.ID, "k1", base().Add(day+2*time.Second)))
		wantEqual(t, "the new reservation", normIdempotent(got), normIdempotent(fresh))
	})

	// A key's record is Done exactly when its create committed: the answer
	// goes in with the create, and nothing of it with a refused one.
	t.Run("AnswerIsRecordedWithItsCreate", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		for _, tc := range []struct {
			key     string
			limited bool // refused by a limit
		}{{"k1", false}, {"k2", true}} {
			r := idempotent(a.ID, tc.key, base())
			f.begin(r)
			answer := *r
			answer.Done, answer.Status, answer.Response = true, 202, []byte(`{"requestId":"`+tc.key+`"}`)
			n := 1
			var limits []verifyd.Limit
			if tc.limited {
				n = 2
				limits = []verifyd.Limit{{Name: "number", Key: "1:number:x", Rate: verifyd.Rate{Count: 1, Per: time.Hour}, Property: "to"}}
				v, m := pending(a, 3, base())
				if err := f.s.CreateVerification(f.ctx, v, m, limits); err != nil {
					t.Fatal(err) // the limit's one send
				}
			}
			v, m := pending(a, n, base())
			err := f.s.CreateVerificationWithAnswer(f.ctx, v, m, limits, &answer)
			got := f.begin(idempotent(a.ID, tc.key, base().Add(time.Second)))
			switch {
			case !tc.limited && err != nil:
				t.Fatalf("%s: %v", tc.key, err)
			case !tc.limited:
				wantEqual(t, "record of a committed create", normIdempotent(got), normIdempotent(&answer))
				// Released, as after a 5xx answered for it: the create
				// committed, so its answer stays.
				if err := f.s.FinishIdempotentRequest(f.ctx, idempotent(a.ID, tc.key, base())); err != nil {
					t.Fatal(err)
				}
				got = f.begin(idempotent(a.ID, tc.key, base().Add(2*time.Second)))
				wantEqual(t, "record of a committed create, released", normIdempotent(got), normIdempotent(&answer))
			case err == nil:
				t.Fatalf("%s: the limit let the create through", tc.key)
			default:
				wantEqual(t, "record of a refused create", normIdempotent(got), normIdempotent(r))
			}
		}
	})

	// A record still running after the lease belongs to a request that
	// died before its create committed: the key is free again.
	t.Run("RunningRecordsAreFreeAfterTheLease", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		r := idempotent(a.ID, "k1", base())
		f.begin(r)
		if got := f.begin(idempotent(a.ID, "k1", base().Add(verifyd.IdempotencyLease-time.Second))); got == nil || got.Done {
			t.Fatalf("Begin a second before the lease = %+v, want the running record", got)
		}
		fresh := idempotent(a.ID, "k1", base().Add(verifyd.IdempotencyLease+time.Second))
		if got := f.begin(fresh); got != nil {
			t.Fatalf("Begin a second after the lease = %+v, want nil", got)
		}
		got := f.begin(idempotent(a.ID, "k1", base().Add(verifyd.IdempotencyLease+2*time.Second)))
		wantEqual(t, "the new reservation", normIdempotent(got), normIdempotent(fresh))
	})

	// A key taken over after the lease belongs to its new request alone.
	// Its first request, if it was only slow (a clock minutes off between
	// instances, a stalled lookup), must neither commit its create nor
	// free the key when it ends: both once happened, and two codes went
	// out under one key.
	t.Run("KeyTakenOverIsTheNewRequestsAlone", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		slow := idempotent(a.ID, "k1", base())
		f.begin(slow)
		retry := idempotent(a.ID, "k1", base().Add(verifyd.IdempotencyLease+time.Second))
		if got := f.begin(retry); got != nil {
			t.Fatalf("Begin after the lease = %+v, want nil", got)
		}
		// The slow request fails and releases its reservation.
		if err := f.s.FinishIdempotentRequest(f.ctx, release(slow)); err != nil {
			t.Fatal(err)
		}
		got := f.begin(idempotent(a.ID, "k1", base().Add(verifyd.IdempotencyLease+2*time.Second)))
		wantEqual(t, "the retry's reservation, after the slow request released", normIdempotent(got), normIdempotent(retry))

		// Or the slow request's create reaches the store after all. It
		// charges nothing either: the retry's create passes a limit of one.
		l := limit("1:number:"+number(1), 1, time.Hour)
		v1, m1 := pending(a, 1, base())
		answer := *slow
		answer.Done, answer.Status, answer.Response = true, 202, []byte(`{"requestId":"slow"}`)
		err := f.s.CreateVerificationWithAnswer(f.ctx, v1, m1, []verifyd.Limit{l}, &answer)
		wantCode(t, err, verifyd.ECONFLICT)
		_, err = f.s.FindVerification(f.ctx, a.ID, v1.ID)
		wantCode(t, err, verifyd.ENOTFOUND)

		v2, m2 := pending(a, 1001, retry.Created) // number(1) again
		answer = *retry
		answer.Done, answer.Status, answer.Response = true, 202, []byte(`{"requestId":"retry"}`)
		if err := f.s.CreateVerificationWithAnswer(f.ctx, v2, m2, []verifyd.Limit{l}, &answer); err != nil {
			t.Fatalf("the retry's create: %v", err)
		}
		got = f.begin(idempotent(a.ID, "k1", base().Add(verifyd.IdempotencyLease+3*time.Second)))
		wantEqual(t, "the retry's answer", normIdempotent(got), normIdempotent(&answer))
	})

	// A reservation whose answer was lost (the connection dropped after
	// it committed) is released by its request, which answered 503, so
	// that the client's retry runs at once rather than meet 409 "still
	// running" until the lease ends. The release names the reservation
	// by its token: a double-submit in the same millisecond whose answer
	// was lost frees nothing of the request that holds the key, nor can
	// it commit a create on it. By time alone it did both.
	t.Run("LostReservationIsReleasedByItsOwnRequestAlone", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		lost := idempotent(a.ID, "k1", base())
		f.begin(lost) // committed; its request saw an error
		if err := f.s.FinishIdempotentRequest(f.ctx, release(lost)); err != nil {
			t.Fatal(err)
		}
		retry := idempotent(a.ID, "k1", base().Add(time.Second))
		if got := f.begin(retry); got != nil {
			t.Fatalf("the retry's Begin = %+v, want nil: the key is free", got)
		}

		// A double-submit of the retry, in its millisecond: it finds the
		// key running, but its answer is lost and it releases its own.
		twin := idempotent(a.ID, "k1", retry.Created)
		f.begin(twin)
		if err := f.s.FinishIdempotentRequest(f.ctx, release(twin)); err != nil {
			t.Fatal(err)
		}
		got := f.begin(idempotent(a.ID, "k1", base().Add(2*time.Second)))
		wantEqual(t, "the retry's reservation, after its twin released", normIdempotent(got), normIdempotent(retry))

		v1, m1 := pending(a, 1, twin.Created)
		answer := *twin
		answer.Done, answer.Status, answer.Response = true, 202, []byte(`{"requestId":"twin"}`)
		err := f.s.CreateVerificationWithAnswer(f.ctx, v1, m1, nil, &answer)
		wantCode(t, err, verifyd.ECONFLICT)
		_, err = f.s.FindVerification(f.ctx, a.ID, v1.ID)
		wantCode(t, err, verifyd.ENOTFOUND)

		v2, m2 := pending(a, 2, retry.Created)
		answer = *retry
		answer.Done, answer.Status, answer.Response = true, 202, []byte(`{"requestId":"retry"}`)
		if err := f.s.CreateVerificationWithAnswer(f.ctx, v2, m2, nil, &answer); err != nil {
			t.Fatalf("the retry's create: %v", err)
		}
		got = f.begin(idempotent(a.ID, "k1", base().Add(3*time.Second)))
		wantEqual(t, "the retry's answer", normIdempotent(got), normIdempotent(&answer))
	})
}
