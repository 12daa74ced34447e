package smpp

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"verifyd"
)

func TestParseReceipt(t *testing.T) {
	t.Parallel()
	withTLVs := func(text, id string, state byte) *PDU {
		p := &PDU{ID: DeliverSM, ESMClass: 4, ShortMessage: []byte(text)}
		if id != "" {
			p.TLVs.SetCString(TagReceiptedMessageID, id)
		}
		if state != 0 {
			p.TLVs.SetUint8(TagMessageState, state)
		}
		return p
	}
	cases := map[string]struct {
		p        *PDU
		id, stat string
		state    MessageState
		hasState bool
		err      string
	}{
		"Recommended": {
			p:  withTLVs("id:0221067780 sub:001 dlvrd:001 submit date:2503141030 done date:2503141031 stat:DELIVRD err:000 text:Your code is 1", "", 0),
			id: "0221067780", stat: "DELIVRD", state: StateDelivered, hasState: true, err: "000",
		},
		"TLVsWinOverText": {
			p:  withTLVs("id:111 stat:DELIVRD", "AB12", byte(StateUndeliverable)),
			id: "AB12", stat: "DELIVRD", state: StateUndeliverable, hasState: true,
		},
		"CaseInsensitiveAnyOrder": {
			p:  withTLVs("Stat:UNDELIV ERR:954 Done Date:250314103159 ID:77 Text:", "", 0),
			id: "77", stat: "UNDELIV", state: StateUndeliverable, hasState: true, err: "954",
		},
		"MissingFields": {
			p:  withTLVs("id:5 stat:EXPIRED", "", 0),
			id: "5", stat: "EXPIRED", state: StateExpired, hasState: true,
		},
		"CommaSeparated": {
			p:  withTLVs("id:9,stat:REJECTD,err:001", "", 0),
			id: "9", stat: "REJECTD", state: StateRejected, hasState: true, err: "001",
		},
		"TextIsNeverParsedForKeys": {
			p:  withTLVs("id:42 stat:DELIVRD text:id:99 stat:UNDELIV", "", 0),
			id: "42", stat: "DELIVRD", state: StateDelivered, hasState: true,
		},
		"UnknownStatWord": {
			p:  withTLVs("id:1 stat:DELIVERED TO CARRIER err:0", "", 0),
			id: "1", stat: "DELIVERED TO CARRIER", err: "0",
		},
		"NoText": {
			p:  withTLVs("", "X1", byte(StateDeleted)),
			id: "X1", state: StateDeleted, hasState: true,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := ParseReceipt(tc.p)
			if r.ID != tc.id || r.Stat != tc.stat || r.State != tc.state || r.HasState != tc.hasState || r.Err != tc.err {
				t.Fatalf("got %+v", r)
			}
		})
	}
}

func TestParseReceiptFromMessagePayload(t *testing.T) {
	t.Parallel()
	p := &PDU{ID: DeliverSM, ESMClass: 4}
	p.TLVs.Set(TagMessagePayload, []byte("id:7 stat:DELIVRD"))
	if r := ParseReceipt(p); r.ID != "7" || r.State != StateDelivered {
		t.Fatalf("got %+v", r)
	}
}

func TestIsReceipt(t *testing.T) {
	t.Parallel()
	for esm, want := range map[byte]bool{0x04: true, 0x44: true, 0x00: false, 0x20: false, 0x24: false, 0x08: false} {
		if got := IsReceipt(&PDU{ESMClass: esm}); got != want {
			t.Errorf("esm_class %#x: %v, want %v", esm, got, want)
		}
	}
}

func TestNormalizeID(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"0221067780": "221067780",
		"0a1f":       "A1F",
		" A1F ":      "A1F",
		"000":        "0",
		"":           "",
		"abc-def":    "ABC-DEF",
	} {
		if got := NormalizeID(in); got != want {
			t.Errorf("NormalizeID(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestConvertID(t *testing.T) {
	t.Parallel()
	cases := []struct {
		id   string
		base IDBase
		want string
	}{
		{"1A2B", IDHexToDec, "6699"},
		{"00ff", IDHexToDec, "255"},
		{"6699", IDDecToHex, "1A2B"},
		{"123456789012345678901234567890", IDDecToHex, "18EE90FF6C373E0EE4E3F0AD2"},
		{"xyz", IDHexToDec, "xyz"},
		{"1A2B", IDSame, "1A2B"},
	}
	for _, tc := range cases {
		if got := convertID(tc.id, tc.base); got != tc.want {
			t.Errorf("convertID(%q, %q) = %q, want %q", tc.id, tc.base, got, tc.want)
		}
	}
}

func TestReceiptStateMapping(t *testing.T) {
	t.Parallel()
	cases := map[MessageState]verifyd.DeliveryState{
		StateDelivered:     verifyd.DeliveryDelivered,
		StateUndeliverable: verifyd.DeliveryUndeliverable,
		StateRejected:      verifyd.DeliveryUndeliverable,
		StateExpired:       verifyd.DeliveryExpired,
		StateDeleted:       verifyd.DeliveryFailed,
		StateUnknown:       verifyd.DeliveryFailed,
	}
	for st, want := range cases {
		if got, final := receiptState(st); !final || got != want {
			t.Errorf("%s: %q %v, want %q", st, got, final, want)
		}
	}
	for _, st := range []MessageState{StateEnroute, StateAccepted, StateScheduled} {
		if _, final := receiptState(st); final {
			t.Errorf("%s is intermediate, mapped as final", st)
		}
	}
}

// recordFunc is a verifyd.ReceiptRecorder made of a function.
type recordFunc func(context.Context, verifyd.Receipt) error

func (f recordFunc) RecordReceipt(ctx context.Context, r verifyd.Receipt) error { return f(ctx, r) }

// TestUnknownReceiptIsProvisional checks what reaches the recorder: SMPP.md
// §6 has UNKNOWN count as failed until a later receipt says otherwise, so
// it alone is marked provisional, and every other final state is not.
func TestUnknownReceiptIsProvisional(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		stat        string
		state       verifyd.DeliveryState
		provisional bool
	}{
		{"UNKNOWN", verifyd.DeliveryFailed, true},
		{"DELIVRD", verifyd.DeliveryDelivered, false},
		{"UNDELIV", verifyd.DeliveryUndeliverable, false},
		{"DELETED", verifyd.DeliveryFailed, false},
	} {
		t.Run(tc.stat, func(t *testing.T) {
			t.Parallel()
			var got []verifyd.Receipt
			c := NewClient(Config{}, recordFunc(func(_ context.Context, r verifyd.Receipt) error {
				got = append(got, r)
				return nil
			}), nil)
			p := &PDU{ID: DeliverSM, ESMClass: 4, ShortMessage: []byte("id:0A1 stat:" + tc.stat + " err:000")}
			if st := c.handleDeliver(p); st != StatusOK {
				t.Fatalf("deliver_sm answered %v, want OK", st)
			}
			if len(got) != 1 || got[0].CarrierID != "A1" || got[0].State != tc.state || got[0].Provisional != tc.provisional {
				t.Fatalf("recorded %+v, want one receipt for A1, %s, provisional %v", got, tc.state, tc.provisional)
			}
		})
	}
}

func TestTimeFormats(t *testing.T) {
	t.Parallel()
	at := time.Date(2025, 3, 14, 12, 30, 0, 0, time.FixedZone("UTC+2", 7200))
	if got := AbsoluteTime(at); got != "250314103000000+" {
		t.Errorf("AbsoluteTime = %q", got)
	}
	for d, want := range map[time.Duration]string{
		10 * time.Minute:                      "000000001000000R",
		24 * time.Hour:                        "000001000000000R",
		90*time.Second + 999*time.Millisecond: "000000000130000R",
		200 * 24 * time.Hour:                  "000099235959000R",
	} {
		if got := RelativeTime(d); got != want {
			t.Errorf("RelativeTime(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestNextSeqWraps(t *testing.T) {
	t.Parallel()
	for in, want := range map[uint32]uint32{1: 2, MaxSeq - 1: MaxSeq, MaxSeq: 1, 0: 1} {
		if got := nextSeq(in); got != want {
			t.Errorf("nextSeq(%#x) = %#x, want %#x", in, got, want)
		}
	}
}

func TestJitterStaysWithinHalfAndFull(t *testing.T) {
	t.Parallel()
	for _, r := range []float64{0, 0.5, 0.999999} {
		got := jitter(time.Second, func() float64 { return r })
		if got < 500*time.Millisecond || got >= time.Second {
			t.Errorf("jitter(1s, %v) = %v", r, got)
		}
	}
}

func TestBackoffDoublesToTheCapAndResets(t *testing.T) {
	t.Parallel()
	b := backoff{min: 100 * time.Millisecond, max: 500 * time.Millisecond, rnd: func() float64 { return 0 }}
	var got []time.Duration
	for range 5 {
		got = append(got, b.next())
	}
	// Jitter 0 takes the lower half: d/2.
	want := []time.Duration{50, 100, 200, 250, 250}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("waits %v, want %v ms", got, want)
		}
	}
	b.reset()
	if d := b.next(); d != 50*time.Millisecond {
		t.Fatalf("after reset: %v, want 50ms", d)
	}
}

func TestReceiptFieldsCannotCarryTheText(t *testing.T) {
	t.Parallel()
	// No text: key, the message glued after err: and stat:.
	p := &PDU{ID: DeliverSM, ESMClass: 4, ShortMessage: []byte("id:12 stat:NOROUTE code 918273 err:001 code 918273")}
	r := ParseReceipt(p)
	if r.ID != "12" || r.Err != "001" {
		t.Fatalf("got %+v", r)
	}
	if got := safeStat(r.Stat); got != "NOROUTE code " {
		t.Fatalf("safeStat(%q) = %q", r.Stat, got)
	}
}

// TestReceiptWithBytesThatAreNotUTF8 holds the receipt text's parser to the
// bytes it was given: a carrier may send any octets, and offsets found in a
// lowercased copy that re-encoded them cut the text out of its bounds (a
// panic that killed the process) or into the message text.
func TestReceiptWithBytesThatAreNotUTF8(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		text         string
		id, stat, er string
	}{
		{"id:\xad\xad\xad1 sub:001 dlvrd:001 submit date:2503141030 done date:2503141031 stat:DELIVRD err:000 text:918273645",
			"\xad\xad\xad1", "DELIVRD", "000"},
		{"\xff\xfe ID:77 STAT:UNDELIV ERR:\xc0 TEXT:918273645", "77", "UNDELIV", "\xc0"},
		{"id:1 stat:\x80\x80\x80\x80\x80\x80 err:5 text:918273645 stat:DELIVRD", "1", "\x80\x80\x80\x80\x80\x80", "5"},
	} {
		r := ParseReceipt(&PDU{ID: DeliverSM, ESMClass: 4, ShortMessage: []byte(tc.text)})
		if r.ID != tc.id || r.Stat != tc.stat || r.Err != tc.er {
			t.Errorf("%q: id %q stat %q err %q; want %q %q %q", tc.text, r.ID, r.Stat, r.Err, tc.id, tc.stat, tc.er)
		}
	}
}

// A receipt's text is whatever octets the SMSC sent: some end it with a NUL,
// as a C string, and a few put bytes that are not UTF-8 in a field. What
// reaches the recorder must still be storable, since a database that refuses
// it (PostgreSQL takes no NUL and no invalid UTF-8 in text) has the receipt
// answered ESME_RX_T_APPN and sent again for as long as the SMSC retries; and
// a NUL glued to the stat: word must not make a known state unknown.
func TestReceiptTextWithNULOrBadBytesIsRecorded(t *testing.T) {
	t.Parallel()
	storable := func(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) }
	for _, tc := range []struct {
		name, text string
		id         string
		state      verifyd.DeliveryState
		errPrefix  string
	}{
		{"ErrEndsInNUL", "id:77 sub:001 dlvrd:000 submit date:2503141030 done date:2503141031 stat:UNDELIV err:001\x00",
			"77", verifyd.DeliveryUndeliverable, "UNDELIV err:001"},
		{"StatEndsInNUL", "id:77 err:001 stat:EXPIRED\x00", "77", verifyd.DeliveryExpired, "EXPIRED err:001"},
		{"IDEndsInNUL", "stat:UNDELIV err:002 id:77\x00", "77", verifyd.DeliveryUndeliverable, "UNDELIV err:002"},
		{"NULInsideTheID", "id:77\x00\x01 stat:DELIVRD err:000", "77", verifyd.DeliveryDelivered, ""},
		{"ErrNotUTF8", "id:77 stat:REJECTD err:0\xc01 text:", "77", verifyd.DeliveryUndeliverable, "REJECTD err:"},
		{"IDNotUTF8", "id:\xad77 stat:UNDELIV err:003 text:", "", verifyd.DeliveryUndeliverable, "UNDELIV err:003"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got []verifyd.Receipt
			c := NewClient(Config{}, recordFunc(func(_ context.Context, r verifyd.Receipt) error {
				if !storable(r.CarrierID) || !storable(r.Error) {
					return fmt.Errorf("cannot store %q / %q", r.CarrierID, r.Error)
				}
				got = append(got, r)
				return nil
			}), nil)
			p := &PDU{ID: DeliverSM, ESMClass: 4, ShortMessage: []byte(tc.text)}
			if st := c.handleDeliver(p); st != StatusOK {
				t.Fatalf("deliver_sm answered %v, want OK", st)
			}
			if len(got) != 1 || got[0].State != tc.state || !strings.HasPrefix(got[0].Error, tc.errPrefix) ||
				(tc.id != "" && got[0].CarrierID != tc.id) {
				t.Fatalf("recorded %+v, want one %s receipt for %q with error %q", got, tc.state, tc.id, tc.errPrefix)
			}
		})
	}
}
