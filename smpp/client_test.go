package smpp_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"verifyd"
	"verifyd/smpp"
	"verifyd/smpp/smpptest"
)

func TestSendSingleGSMPart(t *testing.T) {
	t.Parallel()
	srv, c, _ := newPair(t, "", func(cfg *smpp.Config) { cfg.Now = func() time.Time { return t0 } })
	m := sms("Your code is 123456 @£$")
	m.ValidUntil = t0.Add(10*time.Minute + 900*time.Millisecond)
	ids, err := c.Send(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	subs := srv.Submits()
	if len(subs) != 1 || len(ids) != 1 || ids[0] != subs[0].MessageID {
		t.Fatalf("ids %v, submits %+v", ids, subs)
	}
	s := subs[0]
	if s.Text != m.Text || s.TextErr != nil {
		t.Errorf("text %q (%v), want %q", s.Text, s.TextErr, m.Text)
	}
	if s.DataCoding != 0 || s.ESMClass != 0 || s.RegisteredDelivery != 1 {
		t.Errorf("data_coding %d esm_class %#x registered_delivery %d", s.DataCoding, s.ESMClass, s.RegisteredDelivery)
	}
	if s.ShortMessage[len("Your code is 123456 ")] != 0x00 {
		t.Errorf("'@' not sent as the octet 0x00: %x", s.ShortMessage)
	}
	if s.Source != (smpp.Address{TON: 5, NPI: 0, Addr: "verifyd"}) || s.Dest != (smpp.Address{TON: 1, NPI: 1, Addr: "447700900123"}) {
		t.Errorf("source %+v dest %+v", s.Source, s.Dest)
	}
	// Rounded down to the second, never past ValidUntil.
	if s.ValidityPeriod != "250314104000000+" {
		t.Errorf("validity_period %q, want 250314104000000+", s.ValidityPeriod)
	}
}

func TestSendLongTextsInConcatenatedParts(t *testing.T) {
	t.Parallel()
	srv, c, _ := newPair(t, "", nil)
	cases := map[string]struct {
		text   string
		coding byte
		parts  int
	}{
		"GSM7":         {strings.Repeat("0123456789", 30) + "{€}", 0, 2},
		"UCS2":         {strings.Repeat("Код подтверждения ", 8) + "🙂", 8, 3},
		"GSM7Exact160": {strings.Repeat("x", 160), 0, 1},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			m := sms(tc.text)
			m.RequestID = name
			before := len(srv.Submits())
			ids, err := c.Send(context.Background(), m)
			if err != nil {
				t.Fatal(err)
			}
			subs := srv.Submits()[before:]
			if len(subs) != tc.parts || len(ids) != tc.parts {
				t.Fatalf("%d submits, %d ids, want %d", len(subs), len(ids), tc.parts)
			}
			for i, s := range subs {
				if s.MessageID != ids[i] {
					t.Errorf("part %d: id %q, Send returned %q", i+1, s.MessageID, ids[i])
				}
				if s.DataCoding != tc.coding || s.TextErr != nil {
					t.Errorf("part %d: data_coding %d (%v)", i+1, s.DataCoding, s.TextErr)
				}
				if tc.parts == 1 {
					if s.ESMClass != 0 || s.Total != 0 {
						t.Errorf("single part carries a UDH: esm_class %#x", s.ESMClass)
					}
					continue
				}
				if s.ESMClass != 0x40 || s.Total != tc.parts || s.Part != i+1 || s.Ref != subs[0].Ref {
					t.Errorf("part %d: esm_class %#x ref %d total %d part %d", i+1, s.ESMClass, s.Ref, s.Total, s.Part)
				}
				if !slices.Equal(s.ShortMessage[:3], []byte{5, 0, 3}) {
					t.Errorf("part %d: UDH %x", i+1, s.ShortMessage[:6])
				}
				if len(s.ShortMessage) > 140+6 && tc.coding == 8 {
					t.Errorf("part %d: %d octets", i+1, len(s.ShortMessage))
				}
			}
			if got := smpptest.Reassemble(subs); len(got) != 1 || got[0] != tc.text {
				t.Fatalf("reassembled %q, want %q", got, tc.text)
			}
		})
	}
}

func TestConcatRefIsStableAcrossRetries(t *testing.T) {
	t.Parallel()
	srv, c, _ := newPair(t, "", nil)
	m := sms(strings.Repeat("a", 200))
	for range 2 {
		if _, err := c.Send(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	subs := srv.Submits()
	if len(subs) != 4 || subs[0].Ref != subs[2].Ref {
		t.Fatalf("refs differ between attempts of one request: %+v", subs)
	}
}

func TestSourceAndDestinationAddresses(t *testing.T) {
	t.Parallel()
	ton3 := uint8(3)
	cases := []struct {
		name, from string
		ton, npi   byte
		fix        *uint8
		wantAddr   string
	}{
		{name: "International", from: "447700900999", ton: 1, npi: 1, wantAddr: "447700900999"},
		{name: "PlusStripped", from: "+447700900999", ton: 1, npi: 1, wantAddr: "447700900999"},
		{name: "ShortCode", from: "12345", ton: 0, npi: 1, wantAddr: "12345"},
		{name: "SixDigitShortCode", from: "123456", ton: 0, npi: 1, wantAddr: "123456"},
		{name: "Alphanumeric", from: "Brand-1", ton: 5, npi: 0, wantAddr: "Brand-1"},
		{name: "ConfiguredTON", from: "12345", ton: 3, npi: 1, fix: &ton3, wantAddr: "12345"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, c, _ := newPair(t, "", func(cfg *smpp.Config) { cfg.SourceTON = tc.fix })
			m := sms("hi")
			m.From = tc.from
			m.To = "+33612345678"
			if _, err := c.Send(context.Background(), m); err != nil {
				t.Fatal(err)
			}
			s := srv.Submits()[0]
			if s.Source != (smpp.Address{TON: tc.ton, NPI: tc.npi, Addr: tc.wantAddr}) {
				t.Errorf("source %+v", s.Source)
			}
			if s.Dest != (smpp.Address{TON: 1, NPI: 1, Addr: "33612345678"}) {
				t.Errorf("dest %+v", s.Dest)
			}
		})
	}
}

func TestSendRefusesBadAddressesPermanently(t *testing.T) {
	t.Parallel()
	srv, c, _ := newPair(t, "", nil)
	for name, m := range map[string]*verifyd.SMS{
		"ErrLettersInTo":    {To: "44abc", From: "x", Text: "t"},
		"ErrEmptyTo":        {To: "", From: "x", Text: "t"},
		"ErrLongSender":     {To: "4477", From: strings.Repeat("x", 21), Text: "t"},
		"ErrSenderNonASCII": {To: "4477", From: "Brändi", Text: "t"},
	} {
		_, err := c.Send(context.Background(), m)
		if se := sendErr(t, err); se.Kind != verifyd.SendPermanent {
			t.Errorf("%s: kind %v", name, se.Kind)
		}
	}
	if n := srv.Count(); n != 0 {
		t.Fatalf("%d submits reached the SMSC", n)
	}
}

func TestValidityPeriod(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		query string
		left  time.Duration
		want  string
	}{
		"Absolute":              {"", 5*time.Minute + 999*time.Millisecond, "250314103500000+"},
		"RelativeRoundsDown":    {"validity=relative", 10*time.Minute + 999*time.Millisecond, "000000001000000R"},
		"RelativeOverOneDay":    {"validity=relative", 26*time.Hour + 3*time.Second, "000001020003000R"},
		"AbsoluteFromLocalTime": {"", time.Hour, "250314113000000+"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv, c, _ := newPair(t, tc.query, func(cfg *smpp.Config) { cfg.Now = func() time.Time { return t0 } })
			m := sms("x")
			m.ValidUntil = t0.Add(tc.left).In(time.FixedZone("UTC+2", 7200))
			if _, err := c.Send(context.Background(), m); err != nil {
				t.Fatal(err)
			}
			if got := srv.Submits()[0].ValidityPeriod; got != tc.want {
				t.Fatalf("validity_period %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSendPastValidUntilIsTemporaryAndNotSent(t *testing.T) {
	t.Parallel()
	srv, c, _ := newPair(t, "", func(cfg *smpp.Config) { cfg.Now = func() time.Time { return t0 } })
	m := sms("x")
	m.ValidUntil = t0.Add(500 * time.Millisecond)
	_, err := c.Send(context.Background(), m)
	if se := sendErr(t, err); se.Kind != verifyd.SendTemporary {
		t.Fatalf("kind %v", se.Kind)
	}
	if srv.Count() != 0 {
		t.Fatal("an expired message was submitted")
	}
}

func TestWindowIsNeverExceeded(t *testing.T) {
	t.Parallel()
	const window, total = 5, 23
	srv, c, _ := newPair(t, fmt.Sprintf("window=%d", window), nil)
	srv.OnSubmit(func(smpptest.Submit) smpptest.Reply { return smpptest.Reply{Withhold: true} })
	var wg sync.WaitGroup
	errs := make(chan error, total)
	for i := range total {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := sms(fmt.Sprintf("message %d", i))
			_, err := c.Send(context.Background(), m)
			errs <- err
		}()
	}
	// Let the window fill, answer everything in it (last first), and
	// repeat: the fake counts a submit in flight until its answer leaves.
	for sent := 0; sent < total; {
		sent = min(sent+window, total)
		if !srv.Wait(5*time.Second, func() bool { return srv.Count() >= uint64(sent) }) {
			t.Fatalf("%d submits, want %d", srv.Count(), sent)
		}
		// A full window: the client agrees every slot is taken. (In the last,
		// partial round, answered senders may not have run yet to give
		// their slots back, so the count is not exact there.)
		if got := c.Stats().InFlight; sent%window == 0 && got != window {
			t.Fatalf("client counts %d in flight at %d submits, want %d", got, sent, window)
		}
		srv.Release()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := srv.MaxInFlight(); got != window {
		t.Fatalf("SMSC saw %d in flight, want exactly the window %d", got, window)
	}
}

func TestResponsesMatchedBySequenceInAnyOrder(t *testing.T) {
	t.Parallel()
	srv, c, _ := newPair(t, "window=4", nil)
	srv.OnSubmit(func(smpptest.Submit) smpptest.Reply { return smpptest.Reply{Withhold: true} })
	type out struct {
		text string
		ids  []string
	}
	res := make(chan out, 4)
	for i := range 4 {
		go func() {
			text := fmt.Sprintf("text %d", i)
			ids, err := c.Send(context.Background(), sms(text))
			if err != nil {
				t.Error(err)
			}
			res <- out{text, ids}
		}()
	}
	srv.WaitSubmits(t, 4, 5*time.Second)
	srv.Release() // answers the last submit first
	byText := map[string]string{}
	for _, s := range srv.Submits() {
		byText[s.Text] = s.MessageID
	}
	for range 4 {
		o := <-res
		if len(o.ids) != 1 || o.ids[0] != byText[o.text] {
			t.Errorf("%q got ids %v, want [%s]", o.text, o.ids, byText[o.text])
		}
	}
}

func TestSequenceNumbersWrapToOne(t *testing.T) {
	t.Parallel()
	srv, c, _ := newPair(t, "", nil)
	smpp.SetNextSeq(c, smpp.MaxSeq-1)
	for range 3 {
		if _, err := c.Send(context.Background(), sms("x")); err != nil {
			t.Fatal(err)
		}
	}
	var seqs []uint32
	for _, s := range srv.Submits() {
		seqs = append(seqs, s.Seq)
	}
	if want := []uint32{smpp.MaxSeq - 1, smpp.MaxSeq, 1}; !slices.Equal(seqs, want) {
		t.Fatalf("sequence numbers %v, want %v", seqs, want)
	}
}

func TestThrottlePausesTheBindAndResendsTheSameMessage(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	n := 0
	srv, c, _ := newPair(t, "", func(cfg *smpp.Config) { cfg.ThrottleMin = 60 * time.Millisecond })
	srv.OnSubmit(func(smpptest.Submit) smpptest.Reply {
		mu.Lock()
		defer mu.Unlock()
		n++
		if n == 1 {
			return smpptest.Reply{Status: smpp.StatusThrottled}
		}
		return smpptest.Reply{}
	})
	ids, err := c.Send(context.Background(), sms("code 1"))
	if err != nil {
		t.Fatal(err)
	}
	subs := srv.Submits()
	if len(subs) != 2 || subs[0].Text != "code 1" || subs[1].Text != "code 1" {
		t.Fatalf("submits %+v, want the same message twice", subs)
	}
	if len(ids) != 1 || ids[0] != subs[1].MessageID {
		t.Fatalf("ids %v, want the resend's id %s", ids, subs[1].MessageID)
	}
	if gap := subs[1].At.Sub(subs[0].At); gap < 60*time.Millisecond {
		t.Fatalf("resent after %v, before the 60ms pause ended", gap)
	}
	if st := c.Stats(); st.Throttles != 1 {
		t.Fatalf("stats %+v, want 1 throttle", st)
	}
}

func TestThrottledMessageStaysFirstInLine(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	n := 0
	srv, c, _ := newPair(t, "", func(cfg *smpp.Config) { cfg.ThrottleMin = 50 * time.Millisecond })
	srv.OnSubmit(func(smpptest.Submit) smpptest.Reply {
		mu.Lock()
		defer mu.Unlock()
		n++
		if n == 1 {
			return smpptest.Reply{Status: smpp.StatusThrottled}
		}
		return smpptest.Reply{}
	})
	first := make(chan error, 1)
	go func() { _, err := c.Send(context.Background(), sms("first")); first <- err }()
	waitFor(t, "the throttle", func() bool { return c.Stats().Throttles == 1 })
	// Sent during the pause: it must wait for "first" to go again.
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Send(context.Background(), sms(fmt.Sprint("later ", i))); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	subs := srv.Submits()
	if len(subs) != 5 || subs[0].Text != "first" || subs[1].Text != "first" {
		var texts []string
		for _, s := range subs {
			texts = append(texts, s.Text)
		}
		t.Fatalf("order %q, want the throttled message resent before the others", texts)
	}
}

// Parts already waiting for a window slot when a throttle comes must wait
// out the pause too, behind the throttled part: the slot its answer frees
// must not let them straight through to an SMSC that has just said it is
// taking no more.
func TestThrottlePausesPartsWaitingForTheWindow(t *testing.T) {
	t.Parallel()
	const pause = 150 * time.Millisecond
	var (
		mu       sync.Mutex
		n        int
		answered time.Time // when the throttled answer went back
	)
	entered, release := make(chan struct{}), make(chan struct{})
	srv, c, _ := newPair(t, "window=1", func(cfg *smpp.Config) { cfg.ThrottleMin = pause })
	srv.OnSubmit(func(smpptest.Submit) smpptest.Reply {
		mu.Lock()
		n++
		first := n == 1
		mu.Unlock()
		if !first {
			return smpptest.Reply{}
		}
		close(entered)
		<-release
		mu.Lock()
		answered = time.Now()
		mu.Unlock()
		return smpptest.Reply{Status: smpp.StatusThrottled}
	})
	first := make(chan error, 1)
	go func() { _, err := c.Send(context.Background(), sms("first")); first <- err }()
	<-entered
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Send(context.Background(), sms(fmt.Sprint("later ", i))); err != nil {
				t.Error(err)
			}
		}()
	}
	// Give the later parts time to reach the full window. The outcome does
	// not hang on it: a part that comes later still meets the pause.
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	subs := srv.Submits()
	var texts []string
	for _, s := range subs {
		texts = append(texts, s.Text)
	}
	if len(subs) != 5 || subs[0].Text != "first" || subs[1].Text != "first" {
		t.Fatalf("order %q, want the throttled message resent before the others", texts)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, s := range subs[1:] {
		if gap := s.At.Sub(answered); gap < pause {
			t.Fatalf("%q submitted %v after the throttle, inside the %v pause (order %q)", s.Text, gap, pause, texts)
		}
	}
}

// A bind that stays throttled, or an SMSC queue that stays full, holds the
// part, with pauses doubling up to the cap, until its deadline:
// SendThrottled naming the status.
func TestRefusalsBackOffThenReturnThrottledAtTheDeadline(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		status smpp.Status
		reason string
	}{
		{smpp.StatusThrottled, "ESME_RTHROTTLED"},
		{smpp.StatusMsgQFul, "ESME_RMSGQFUL"},
	} {
		t.Run(c.reason, func(t *testing.T) {
			t.Parallel()
			srv, cl, _ := newPair(t, "", func(cfg *smpp.Config) {
				cfg.ThrottleMin = 20 * time.Millisecond
				cfg.ThrottleMax = 80 * time.Millisecond
			})
			srv.OnSubmit(func(smpptest.Submit) smpptest.Reply { return smpptest.Reply{Status: c.status} })
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			_, err := cl.Send(ctx, sms("x"))
			se := sendErr(t, err)
			if se.Kind != verifyd.SendThrottled || se.Reason != c.reason {
				t.Fatalf("got %v (kind %v), want SendThrottled for %s", se, se.Kind, c.reason)
			}
			subs := srv.Submits()
			if len(subs) < 4 {
				t.Fatalf("%d attempts, want the part resent after each pause until the deadline", len(subs))
			}
			for i := 1; i < len(subs); i++ {
				want := min(20*time.Millisecond<<(i-1), 80*time.Millisecond)
				if gap := subs[i].At.Sub(subs[i-1].At); gap < want {
					t.Errorf("attempt %d came %v after the previous one, want at least %v", i+1, gap, want)
				}
			}
		})
	}
}

// A part whose deadline passes while it waits behind the throttle (here
// behind a throttled part that goes first and is held up by the rate limit)
// was throttled past its deadline: SendThrottled, as when the pause is seen
// to outlast the deadline at once, not a temporary failure.
func TestDeadlinePassingBehindTheThrottleIsThrottled(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	n := 0
	srv, c, _ := newPair(t, "rate=2", nil)
	srv.OnSubmit(func(smpptest.Submit) smpptest.Reply {
		mu.Lock()
		defer mu.Unlock()
		if n++; n == 3 {
			return smpptest.Reply{Status: smpp.StatusThrottled}
		}
		return smpptest.Reply{}
	})
	// Two submits use up the limiter's burst; the third is throttled and
	// waits half a second for a token before it goes again.
	for i := range 2 {
		if _, err := c.Send(context.Background(), sms(fmt.Sprint("burst ", i))); err != nil {
			t.Fatal(err)
		}
	}
	first := make(chan error, 1)
	go func() { _, err := c.Send(context.Background(), sms("throttled")); first <- err }()
	waitFor(t, "the throttle", func() bool { return c.Stats().Throttles == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	_, err := c.Send(ctx, sms("behind"))
	se := sendErr(t, err)
	if se.Kind != verifyd.SendThrottled || se.Reason != "ESME_RTHROTTLED" {
		t.Fatalf("got %v (kind %v), want SendThrottled", se, se.Kind)
	}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	for _, s := range srv.Submits() {
		if s.Text == "behind" {
			t.Fatal("the part behind the throttle was submitted")
		}
	}
}

// ESME_RMSGQFUL says the message was not accepted, as ESME_RTHROTTLED does
// (SMPP.md pitfall 9): the whole bind pauses, the refused part goes again
// first, and it is not a delivery failure. Retried alone a few times and
// then failed, it used up a code's few minutes on a busy SMSC while the
// other parts went on adding to the queue.
func TestQueueFullPausesTheBindAndResendsFirst(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	n := 0
	srv, c, _ := newPair(t, "", func(cfg *smpp.Config) { cfg.ThrottleMin = 80 * time.Millisecond })
	srv.OnSubmit(func(smpptest.Submit) smpptest.Reply {
		mu.Lock()
		defer mu.Unlock()
		if n++; n == 1 {
			return smpptest.Reply{Status: smpp.StatusMsgQFul}
		}
		return smpptest.Reply{}
	})
	first := make(chan error, 1)
	go func() { _, err := c.Send(context.Background(), sms("refused")); first <- err }()
	waitFor(t, "the queue-full answer", func() bool { return c.Stats().QueueFull == 1 })
	if _, err := c.Send(context.Background(), sms("behind")); err != nil {
		t.Fatal(err)
	}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	subs := srv.Submits()
	if len(subs) != 3 || subs[0].Text != "refused" || subs[1].Text != "refused" || subs[2].Text != "behind" {
		t.Fatalf("submits %+v, want the refused part, then it again, then the one behind", subs)
	}
	if gap := subs[1].At.Sub(subs[0].At); gap < 80*time.Millisecond {
		t.Fatalf("resent after %v, before the 80ms pause ended", gap)
	}
	if st := c.Stats(); st.QueueFull != 1 || st.Throttles != 0 {
		t.Fatalf("stats %+v, want 1 queue full and no throttle", st)
	}
}

func TestStatusClasses(t *testing.T) {
	t.Parallel()
	cases := []struct {
		status smpp.Status
		kind   verifyd.SendErrorKind
		reason string
	}{
		{smpp.StatusInvDstAdr, verifyd.SendPermanent, "ESME_RINVDSTADR"},
		{smpp.StatusSubmitFail, verifyd.SendPermanent, "ESME_RSUBMITFAIL"},
		{smpp.StatusInvSrcAdr, verifyd.SendPermanent, "ESME_RINVSRCADR"},
		{0x401, verifyd.SendPermanent, "0x00000401"},
		{smpp.StatusSysErr, verifyd.SendTemporary, "ESME_RSYSERR"},
		{smpp.StatusXTAppn, verifyd.SendTemporary, "ESME_RX_T_APPN"},
		{smpp.StatusUnknownErr, verifyd.SendTemporary, "ESME_RUNKNOWNERR"},
	}
	srv, c, _ := newPair(t, "", nil)
	for _, tc := range cases {
		srv.OnSubmit(func(smpptest.Submit) smpptest.Reply { return smpptest.Reply{Status: tc.status} })
		before := srv.Count()
		_, err := c.Send(context.Background(), sms("x"))
		se := sendErr(t, err)
		if se.Kind != tc.kind || se.Reason != tc.reason {
			t.Errorf("%s: kind %v reason %q, want %v %q", tc.status, se.Kind, se.Reason, tc.kind, tc.reason)
		}
		if n := srv.Count() - before; n != 1 {
			t.Errorf("%s: %d attempts, want 1", tc.status, n)
		}
	}
}

// ESME_RINVBNDSTS and ESME_RALYBND say the session is in the wrong state,
// not that the message is bad (SMPP.md §4: "session: rebind, then retry" and
// "session: back off, reconnect"): the part fails temporarily and the bind is
// made again.
func TestSessionStatusesRebindAndFailTemporarily(t *testing.T) {
	t.Parallel()
	for _, st := range []smpp.Status{smpp.StatusInvBndSts, smpp.StatusAlyBnd} {
		t.Run(st.String(), func(t *testing.T) {
			t.Parallel()
			srv, c, _ := newPair(t, "", nil)
			srv.OnSubmit(func(smpptest.Submit) smpptest.Reply { return smpptest.Reply{Status: st} })
			_, err := c.Send(context.Background(), sms("x"))
			if se := sendErr(t, err); se.Kind != verifyd.SendTemporary || se.Reason != st.String() {
				t.Fatalf("kind %v reason %q, want temporary %q", se.Kind, se.Reason, st)
			}
			if !srv.Wait(5*time.Second, func() bool { return srv.Counters().Binds == 2 }) {
				t.Fatalf("counters %+v, want a rebind", srv.Counters())
			}
		})
	}
}

// A generic_nack for a submit_sm fails it with the nack's status (SMPP.md
// §11.3); a generic_nack without an error status, or a response of another
// command than submit_sm_resp, accepts nothing: the part fails temporarily
// and is never reported as accepted with an empty message id.
func TestNackOrWrongResponseNeverAcceptsThePart(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		reply  smpptest.Reply
		kind   verifyd.SendErrorKind
		reason string
	}{
		"GenericNackWithStatus": {smpptest.Reply{AnswerAs: smpp.GenericNack, Status: smpp.StatusInvCmdLen},
			verifyd.SendPermanent, "ESME_RINVCMDLEN"},
		"GenericNackWithoutStatus": {smpptest.Reply{AnswerAs: smpp.GenericNack},
			verifyd.SendTemporary, "ESME_BADRESP"},
		"EnquireLinkResp": {smpptest.Reply{AnswerAs: smpp.EnquireLinkResp},
			verifyd.SendTemporary, "ESME_BADRESP"},
		"DeliverSMResp": {smpptest.Reply{AnswerAs: smpp.DeliverSMResp},
			verifyd.SendTemporary, "ESME_BADRESP"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv, c, _ := newPair(t, "", nil)
			srv.OnSubmit(func(smpptest.Submit) smpptest.Reply { return tc.reply })
			ids, err := c.Send(context.Background(), sms("x"))
			if err == nil {
				t.Fatalf("accepted with ids %q", ids)
			}
			if se := sendErr(t, err); se.Kind != tc.kind || se.Reason != tc.reason {
				t.Fatalf("kind %v reason %q, want %v %q", se.Kind, se.Reason, tc.kind, tc.reason)
			}
			// The session stays up and the next part goes through.
			srv.OnSubmit(nil)
			if _, err := c.Send(context.Background(), sms("x")); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestDroppedConnectionFailsInFlightTemporarilyAndReconnects(t *testing.T) {
	t.Parallel()
	srv, c, _ := newPair(t, "window=4", nil)
	srv.OnSubmit(func(smpptest.Submit) smpptest.Reply { return smpptest.Reply{Withhold: true} })
	errs := make(chan error, 4)
	for i := range 4 {
		go func() { _, err := c.Send(context.Background(), sms(fmt.Sprint(i))); errs <- err }()
	}
	srv.WaitSubmits(t, 4, 5*time.Second)
	srv.DropConnections()
	for range 4 {
		se := sendErr(t, <-errs)
		if se.Kind != verifyd.SendTemporary || se.Reason != "ESME_CONNLOST" {
			t.Fatalf("got %v (kind %v), want a temporary connection loss", se, se.Kind)
		}
	}
	srv.OnSubmit(nil)
	if !srv.Wait(5*time.Second, func() bool { return srv.Counters().Binds == 2 }) {
		t.Fatalf("no rebind: %+v", srv.Counters())
	}
	waitReady(t, c)
	if _, err := c.Send(context.Background(), sms("after")); err != nil {
		t.Fatal(err)
	}
	if st := c.Stats(); st.Reconnects < 1 || st.InFlight != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestResponseTimeoutFailsTemporarilyAndFreesTheSlot(t *testing.T) {
	t.Parallel()
	srv, c, _ := newPair(t, "window=1&timeout=80ms", nil)
	srv.OnSubmit(func(smpptest.Submit) smpptest.Reply { return smpptest.Reply{Withhold: true} })
	_, err := c.Send(context.Background(), sms("x"))
	if se := sendErr(t, err); se.Kind != verifyd.SendTemporary || se.Reason != "ESME_TIMEOUT" {
		t.Fatalf("got %v (kind %v)", se, se.Kind)
	}
	srv.OnSubmit(nil)
	srv.Release() // the late answer is ignored
	if _, err := c.Send(context.Background(), sms("y")); err != nil {
		t.Fatalf("window slot not freed: %v", err)
	}
}

func TestSendSpreadsOverBinds(t *testing.T) {
	t.Parallel()
	srv, c, _ := newPair(t, "binds=3", nil)
	waitFor(t, "3 binds", func() bool { return c.Stats().BindsUp == 3 })
	for i := range 30 {
		if _, err := c.Send(context.Background(), sms(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	per := map[int]int{}
	for _, s := range srv.Submits() {
		per[s.Session]++
	}
	if len(per) != 3 {
		t.Fatalf("submits per session %v, want all 3 used", per)
	}
	if st := c.Stats(); st.Binds != 3 || st.BindsUp != 3 || st.Window != 150 {
		t.Fatalf("stats %+v", st)
	}
}

// The round-robin counter is a uint32 that passes 2^31 after two billion
// submits: where int is 32 bits (GOARCH=386, arm) it must not turn into a
// negative index.
func TestSendSpreadsOverBindsPastTwoToThe31(t *testing.T) {
	t.Parallel()
	srv, c, _ := newPair(t, "binds=3", nil)
	waitFor(t, "3 binds", func() bool { return c.Stats().BindsUp == 3 })
	smpp.SetRoundRobin(c, 1<<31-2)
	for i := range 6 {
		if _, err := c.Send(context.Background(), sms(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	per := map[int]int{}
	for _, s := range srv.Submits() {
		per[s.Session]++
	}
	if len(per) != 3 {
		t.Fatalf("submits per session %v, want all 3 used", per)
	}
}

func TestSendWithoutBindFailsTemporarily(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "smpp://a:b@127.0.0.1:1?timeout=50ms")
	c := startClient(t, cfg, nil, nil)
	_, err := c.Send(context.Background(), sms("x"))
	if se := sendErr(t, err); se.Kind != verifyd.SendTemporary {
		t.Fatalf("kind %v", se.Kind)
	}
	if c.Ready() == nil {
		t.Fatal("Ready with nothing to bind to")
	}
}

func TestRateLimitSpacesSubmits(t *testing.T) {
	t.Parallel()
	srv, c, _ := newPair(t, "rate=100", nil)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range 150 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Send(context.Background(), sms(fmt.Sprint(i))); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	// A burst of 100, then 50 more at 100/s: at least half a second.
	if d := time.Since(start); d < 490*time.Millisecond {
		t.Fatalf("150 submits at rate=100 took %v", d)
	}
	if srv.Count() != 150 {
		t.Fatalf("%d submits", srv.Count())
	}
}

// rate bounds what reaches the SMSC, not what waits for the window: parts
// that took their token and then waited for a slot while the SMSC stalled
// must not all go out the instant it answers again.
func TestRateLimitHoldsWhenAStalledWindowReopens(t *testing.T) {
	t.Parallel()
	const rate, burst = 100, 100 // rate=100 allows a burst of one second's worth
	srv, c, _ := newPair(t, "rate=100&window=1", nil)
	var stalled atomic.Bool
	srv.OnSubmit(func(smpptest.Submit) smpptest.Reply {
		return smpptest.Reply{Withhold: stalled.CompareAndSwap(false, true)}
	})
	var wg sync.WaitGroup
	for i := range 160 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Send(context.Background(), sms(fmt.Sprint(i))); err != nil {
				t.Error(err)
			}
		}()
	}
	srv.WaitSubmits(t, 1, 5*time.Second)
	time.Sleep(500 * time.Millisecond) // the SMSC answers nothing for half a second
	srv.Release()
	wg.Wait()
	subs := srv.Submits()
	if len(subs) != 160 {
		t.Fatalf("%d submits, want 160", len(subs))
	}
	for i := range subs {
		for j := i + 1; j < len(subs); j++ {
			d := subs[j].At.Sub(subs[i].At)
			if n := j - i + 1; float64(n) > burst+rate*d.Seconds()+2 {
				t.Fatalf("%d submits within %v at rate=%d", n, d, rate)
			}
		}
	}
}

// Parts that hold a window slot while they wait for their turn under rate
// are not in flight: the window in use counts only submits out at the SMSC,
// so a full gauge still means the SMSC is slow to answer.
func TestPartsWaitingForTheRateAreNotInFlight(t *testing.T) {
	t.Parallel()
	_, c, _ := newPair(t, "rate=4&window=5", nil)
	for i := range 4 { // the limiter's burst
		if _, err := c.Send(context.Background(), sms(fmt.Sprint("burst ", i))); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Send(context.Background(), sms(fmt.Sprint("later ", i))); err != nil {
				t.Error(err)
			}
		}()
	}
	// The next token comes 250ms after the burst.
	time.Sleep(100 * time.Millisecond)
	st := c.Stats()
	wg.Wait()
	if st.InFlight != 0 {
		t.Fatalf("%d in flight while every part waited for the rate", st.InFlight)
	}
}

// testClock is a Config.Now the test moves by hand.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// The validity_period is what is left of the code's life when the part goes
// out, not when Send began: time spent waiting for a window slot (or a
// throttle pause, or the rate limit) must not stretch a relative validity
// past ValidUntil, nor let an absolute one already past reach the SMSC,
// which would refuse it for good (ESME_RINVEXPIRY).
func TestValidityIsTakenWhenThePartGoesOut(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, query string
		wait        time.Duration // the clock moves on while the part waits
		want        string        // its validity_period; "" for not sent
	}{
		{"RelativeShrinksWithTheWait", "validity=relative", 4 * time.Minute, "000000000600000R"},
		{"ErrExpiredWhileWaiting", "", 11 * time.Minute, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clock := &testClock{now: t0}
			srv, c, _ := newPair(t, "window=1&"+tc.query, func(cfg *smpp.Config) { cfg.Now = clock.Now })
			srv.OnSubmit(func(smpptest.Submit) smpptest.Reply { return smpptest.Reply{Withhold: true} })
			first := sms("first")
			first.RequestID = "first"
			go c.Send(context.Background(), first)
			srv.WaitSubmits(t, 1, 5*time.Second)
			srv.OnSubmit(nil)

			m := sms("second")
			m.ValidUntil = t0.Add(10 * time.Minute)
			done := make(chan error, 1)
			go func() { _, err := c.Send(context.Background(), m); done <- err }()
			// Give the second part time to reach the full window. The
			// outcome does not hang on it: the part cannot go out before
			// Release, which comes after the clock has moved.
			time.Sleep(50 * time.Millisecond)
			clock.Advance(tc.wait)
			srv.Release()
			err := <-done
			subs := srv.Submits()
			if tc.want == "" {
				if se := sendErr(t, err); se.Kind != verifyd.SendTemporary || se.Reason != "VALIDITY_EXPIRED" {
					t.Fatalf("got %v (kind %v), want VALIDITY_EXPIRED", se, se.Kind)
				}
				if len(subs) != 1 {
					t.Fatalf("%d submits: a part past its validity reached the SMSC (validity_period %q)",
						len(subs), subs[len(subs)-1].ValidityPeriod)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(subs) != 2 || subs[1].ValidityPeriod != tc.want {
				t.Fatalf("submits %d, validity_period %q, want %q", len(subs), subs[len(subs)-1].ValidityPeriod, tc.want)
			}
		})
	}
}
