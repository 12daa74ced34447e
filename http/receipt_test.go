package http

import (
	"context"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"testing"

	"verifyd"
	"verifyd/kannel"
)

// failingRecorder is a store whose receipts fail to commit.
type failingRecorder struct{ err error }

func (f failingRecorder) RecordReceipt(context.Context, verifyd.Receipt) error { return f.err }

// withKannel serves the Kannel report route, its tokens under the env's key.
func withKannel(t *testing.T, recorder verifyd.ReceiptRecorder) envOption {
	return func(cfg *Config, _ *verifyd.Account) {
		k, err := kannel.ParseURL("http://u:p@127.0.0.1:13013/cgi-bin/sendsms?receipts=https://verifyd.example.com")
		if err != nil {
			t.Fatal(err)
		}
		s, err := kannel.New(k, kannel.Options{Signer: cfg.Keyring, Now: cfg.Now})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Receipts, cfg.Recorder = s, recorder
	}
}

// submitted creates a verification and records its message Submitted
// under carrier id ref, as the delivery worker does after a Send.
func (e *testEnv) submitted(to, ref string) string {
	e.t.Helper()
	id := e.create(`{"to":"` + to + `","from":"Test"}`).RequestID
	e.text(id) // claims it
	if err := e.store.FinishMessages(context.Background(), []verifyd.MessageResult{{
		RequestID: id, State: verifyd.DeliverySubmitted, CarrierIDs: []string{ref}, At: e.clock(),
	}}); err != nil {
		e.t.Fatal(err)
	}
	return id
}

// deliveryState reads the request's delivery through the API.
func (e *testEnv) deliveryState(id string) (state, errText string) {
	e.t.Helper()
	w := e.do("GET", "/webapi/verify/"+id, "")
	var rec struct {
		Delivery struct{ State, Error string }
	}
	decodeInto(e.t, w, &rec)
	return rec.Delivery.State, rec.Delivery.Error
}

func (e *testEnv) token(ref string) string { return hex.EncodeToString(e.keyring.ReceiptToken(ref)) }

// report sends Kannel's GET, without credentials.
func (e *testEnv) report(query string) (int, string) {
	e.t.Helper()
	w := e.doWith("GET", "/sms/receipts/kannel?"+query, "", nil)
	return w.Code, w.Body.String()
}

func TestKannelReceipt(t *testing.T) {
	t.Parallel()
	const ref = "kannel-00112233445566778899aabbccddeeff"

	t.Run("DeliveredRecorded", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, withKannel(t, nil))
		id := e.submitted("447979080215", ref)
		if st, _ := e.deliveryState(id); st != "Submitted" {
			t.Fatalf("before the report: %s", st)
		}
		if code, body := e.report("ref=" + ref + "&token=" + e.token(ref) + "&type=1"); code != 200 {
			t.Fatalf("report: %d %s", code, body)
		}
		if st, _ := e.deliveryState(id); st != "Delivered" {
			t.Fatalf("after a type 1 report: %s, want Delivered", st)
		}
		// Kannel sending it again changes nothing and is answered alike.
		if code, _ := e.report("ref=" + ref + "&token=" + e.token(ref) + "&type=2"); code != 200 {
			t.Fatalf("a second report: %d", code)
		}
		if st, _ := e.deliveryState(id); st != "Delivered" {
			t.Fatalf("after a later type 2 report: %s, the first final one stands", st)
		}
		if logs := e.logText(); strings.Contains(logs, e.token(ref)) {
			t.Fatalf("the token reached the log:\n%s", logs)
		}
	})

	t.Run("FailuresRecorded", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, withKannel(t, nil))
		for i, tc := range []struct{ typ, state string }{{"2", "Undeliverable"}, {"16", "Failed"}} {
			r := strings.Replace(ref, "00", "0"+tc.typ[:1], 1)
			id := e.submitted("44797908021"+string(rune('6'+i)), r)
			if code, body := e.report("ref=" + r + "&token=" + e.token(r) + "&type=" + tc.typ); code != 200 {
				t.Fatalf("report: %d %s", code, body)
			}
			if st, msg := e.deliveryState(id); st != tc.state || msg == "" {
				t.Fatalf("after a type %s report: %s %q, want %s with a reason", tc.typ, st, msg, tc.state)
			}
		}
	})

	t.Run("BeforeTheSubmitIsRecorded", func(t *testing.T) {
		t.Parallel()
		// Kannel may report before the worker records the carrier id.
		e := newEnv(t, withKannel(t, nil))
		if code, body := e.report("ref=" + ref + "&token=" + e.token(ref) + "&type=1"); code != 200 {
			t.Fatalf("report: %d %s", code, body)
		}
		id := e.submitted("447979080215", ref)
		if st, _ := e.deliveryState(id); st != "Delivered" {
			t.Fatalf("a report before the submit was recorded: %s, want Delivered", st)
		}
	})

	t.Run("ErrRefused", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, withKannel(t, nil))
		id := e.submitted("447979080215", ref)
		other := "kannel-ffeeddccbbaa99887766554433221100"
		for _, tc := range []struct {
			name, query string
			want        int
		}{
			{"OtherRefsToken", "ref=" + ref + "&token=" + e.token(other) + "&type=1", 403},
			{"Forged", "ref=" + ref + "&token=" + strings.Repeat("ab", 32) + "&type=1", 403},
			{"NoToken", "ref=" + ref + "&type=1", 403},
			{"RefOfAnotherForm", "ref=" + id + "&token=" + e.token(id) + "&type=1", 404},
			{"NoRef", "token=" + e.token(ref) + "&type=1", 404},
			{"NoType", "ref=" + ref + "&token=" + e.token(ref), 400},
			{"GarbageType", "ref=" + ref + "&token=" + e.token(ref) + "&type=delivered", 400},
			{"UnknownType", "ref=" + ref + "&token=" + e.token(ref) + "&type=3", 400},
		} {
			code, body := e.report(tc.query)
			if code != tc.want || !strings.HasPrefix(body, `{"code":`) {
				t.Errorf("%s: %d %s, want %d with a JSON error", tc.name, code, body, tc.want)
			}
		}
		if st, _ := e.deliveryState(id); st != "Submitted" {
			t.Fatalf("refused reports changed the delivery: %s", st)
		}
	})

	t.Run("IntermediateChangesNothing", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, withKannel(t, failingRecorder{errors.New("must not be called")}))
		for _, typ := range []string{"4", "8"} {
			if code, body := e.report("ref=" + ref + "&token=" + e.token(ref) + "&type=" + typ); code != 200 {
				t.Fatalf("type %s: %d %s", typ, code, body)
			}
		}
		e2 := newEnv(t, withKannel(t, nil))
		id := e2.submitted("447979080215", ref)
		e2.report("ref=" + ref + "&token=" + e2.token(ref) + "&type=8")
		if st, _ := e2.deliveryState(id); st != "Submitted" {
			t.Fatalf("after a type 8 report: %s, want Submitted", st)
		}
	})

	t.Run("ErrStoreFails", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			err  error
			want int
		}{
			{errors.New("disk on fire"), 503},
			{verifyd.Errorf(verifyd.EUNAVAILABLE, "the database does not answer"), 503},
		} {
			e := newEnv(t, withKannel(t, failingRecorder{tc.err}))
			if code, body := e.report("ref=" + ref + "&token=" + e.token(ref) + "&type=1"); code != tc.want {
				t.Fatalf("store fails with %v: %d %s, want %d so that Kannel tries again", tc.err, code, body, tc.want)
			}
		}
	})

	t.Run("NotServedWithoutTheSender", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		if code, _ := e.report("ref=" + ref + "&token=" + e.token(ref) + "&type=1"); code != http.StatusNotFound {
			t.Fatalf("the report route answered %d without the Kannel sender", code)
		}
	})
}

// logText is what the server logged so far.
func (e *testEnv) logText() string {
	e.logMu.Lock()
	defer e.logMu.Unlock()
	return e.logs.String()
}
