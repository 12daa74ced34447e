package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"
)

// numbers hands out phone numbers, each once per harness run, so that no
// two requests share a number (and no per-number state of the server, limit
// or inbox, is ever hit twice). They are UK mobiles, 4477 1x xxx xxx, which
// libphonenumber takes as valid.
type numbers struct{ n atomic.Int64 }

const firstNumber = 447710000000

func (ns *numbers) next() string { return strconv.FormatInt(firstNumber+ns.n.Add(1), 10) }

// expect checks an answer's status and that its body holds want.
func expect(status int, body []byte, wantStatus int, want string) error {
	if status != wantStatus {
		return fmt.Errorf("status %d, want %d: %s", status, wantStatus, clip(body))
	}
	if want != "" && !bytes.Contains(body, []byte(want)) {
		return fmt.Errorf("status %d without %s: %s", status, want, clip(body))
	}
	return nil
}

// hasRequestID reports whether a create's answer names its request: a
// requestId of 36 characters (a UUID), not only the right status.
func hasRequestID(body []byte) bool {
	const key = `"requestId":"`
	i := bytes.Index(body, []byte(key))
	if i < 0 {
		return false
	}
	rest := body[i+len(key):]
	return len(rest) > 36 && rest[36] == '"' && bytes.Count(rest[:36], []byte("-")) == 4
}

func clip(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "..."
	}
	return string(b)
}

const (
	wantNotVerified = `"status":"CodeNotVerified"`
	wantVerified    = `"status":"CodeVerified"`
)

// createBodyFor is the create request the harness sends: a number and a
// sender id, the common shape of a real client's request.
func createBodyFor(number string) []byte {
	return []byte(`{"to":"` + number + `","from":"Bench"}`)
}

// createOp is one create, answered 202 CodeNotVerified with a request id.
// created, when set, is told the number of each create answered so.
func createOp(nums *numbers, created func(number string)) op {
	return func(w *worker) error {
		number := nums.next()
		status, body, err := w.c.do("POST", "/webapi/verify", createBodyFor(number))
		if err != nil {
			return err
		}
		if err := expect(status, body, 202, wantNotVerified); err != nil {
			return err
		}
		if !hasRequestID(body) {
			return fmt.Errorf("status 202 without a requestId: %s", clip(body))
		}
		if created != nil {
			created(number)
		}
		return nil
	}
}

// validateState is a worker's place in the validate workload: the row it
// is on and how many wrong codes it still sends to it before the right one.
type validateState struct {
	row, wrong int
}

// validateOp is one validate of a pre-created request. Each request gets
// 0 to 3 wrong codes (CodeNotVerified), then its right code (CodeVerified),
// so the mix is that of users who mistype now and then, and no request
// locks.
func validateOp(rs *rows, next *atomic.Int64) op {
	return func(w *worker) error {
		st, _ := w.state.(*validateState)
		if st == nil {
			st = &validateState{row: -1}
			w.state = st
		}
		if st.row < 0 {
			i := int(next.Add(1) - 1)
			if i >= rs.len() {
				return errExhausted
			}
			st.row, st.wrong = i, i%4
		}
		code, want := rs.code(st.row), wantVerified
		if st.wrong > 0 {
			code, want = rs.wrongCode(st.row), wantNotVerified
		}
		status, body, err := w.c.do("PUT", "/webapi/verify/"+rs.id(st.row)+"/validate", []byte(`{"code":"`+code+`"}`))
		if st.wrong > 0 {
			st.wrong--
		} else {
			st.row = -1
		}
		if err != nil {
			return err
		}
		return expect(status, body, 200, want)
	}
}

// wrongCodeOp validates a row picked at random with a wrong code: the
// growth workload, whose rows take any number of wrong codes, so that 1,000
// rows serve a whole run just as 1,000,000 do, and the two runs differ only
// in how many rows the table holds.
func wrongCodeOp(rs *rows) op {
	return func(w *worker) error {
		rnd, _ := w.state.(*mrand.Rand)
		if rnd == nil {
			rnd = mrand.New(mrand.NewPCG(uint64(w.id), uint64(time.Now().UnixNano())))
			w.state = rnd
		}
		i := rnd.IntN(rs.len())
		status, body, err := w.c.do("PUT", "/webapi/verify/"+rs.id(i)+"/validate", []byte(`{"code":"`+rs.wrongCode(i)+`"}`))
		if err != nil {
			return err
		}
		return expect(status, body, 200, wantNotVerified)
	}
}

// flowStats counts what the full flow waited for.
type flowStats struct {
	polls atomic.Int64 // inbox reads
	flows atomic.Int64 // flows that got as far as reading the inbox
}

// inboxEntry is what the flow reads of GET /inbox/messages.
type inboxEntry struct {
	RequestID string `json:"requestId"`
	Body      string `json:"body"`
}

// flowOp is one whole verification as a user goes through it: create, read
// the code from the inbox (the "phone") once delivery has put it there, and
// validate it (CodeVerified). The inbox is read every 2 ms until the
// message shows; a message that takes more than 10 s is an error.
func flowOp(nums *numbers, stats *flowStats) op {
	return func(w *worker) error {
		number := nums.next()
		status, body, err := w.c.do("POST", "/webapi/verify", createBodyFor(number))
		if err != nil {
			return err
		}
		if err := expect(status, body, 202, wantNotVerified); err != nil {
			return err
		}
		var created struct {
			RequestID string `json:"requestId"`
		}
		if err := json.Unmarshal(body, &created); err != nil || len(created.RequestID) != 36 {
			return fmt.Errorf("create answer without a request id: %s", clip(body))
		}

		code := ""
		stats.flows.Add(1)
		deadline := time.Now().Add(10 * time.Second)
		for code == "" {
			stats.polls.Add(1)
			status, body, err := w.c.do("GET", "/inbox/messages?to="+number, nil)
			if err != nil {
				return err
			}
			if err := expect(status, body, 200, ""); err != nil {
				return fmt.Errorf("inbox: %w", err)
			}
			var msgs []inboxEntry
			if err := json.Unmarshal(body, &msgs); err != nil {
				return fmt.Errorf("inbox answer is not a list of messages: %s", clip(body))
			}
			for _, m := range msgs {
				if m.RequestID == created.RequestID {
					if code = lastDigits(m.Body, 6); code == "" {
						return fmt.Errorf("inbox message without a code: %q", m.Body)
					}
				}
			}
			if code == "" {
				if time.Now().After(deadline) {
					return fmt.Errorf("request %s not in the inbox after 10 s", created.RequestID)
				}
				time.Sleep(2 * time.Millisecond)
			}
		}

		status, body, err = w.c.do("PUT", "/webapi/verify/"+created.RequestID+"/validate", []byte(`{"code":"`+code+`"}`))
		if err != nil {
			return err
		}
		return expect(status, body, 200, wantVerified)
	}
}

// lastDigits is the last run of exactly n digits in s, "" if none.
func lastDigits(s string, n int) string {
	end := -1
	for i := len(s) - 1; i >= 0; i-- {
		isDigit := s[i] >= '0' && s[i] <= '9'
		switch {
		case isDigit && end < 0:
			end = i + 1
		case !isDigit && end >= 0:
			if end-(i+1) == n {
				return s[i+1 : end]
			}
			end = -1
		}
	}
	if end == n {
		return s[:end]
	}
	return ""
}
