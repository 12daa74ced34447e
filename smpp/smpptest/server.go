// Package smpptest is a fake SMSC for tests of SMPP clients: it listens on
// 127.0.0.1, binds any session that presents the configured credentials,
// answers submit_sm as a test tells it to (accept, refuse with a status,
// withhold the response, answer with another command), sends receipts,
// enquire_link, unbind and garbage and drops its connections on demand, and
// records what it saw, including the most submits it ever had in flight on
// one session.
//
// It is built for speed as well as control, since a benchmark drives it: one
// reader goroutine per connection, responses written to a buffered writer
// that is flushed when no more input is waiting.
package smpptest

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"verifyd/gsm"
	"verifyd/smpp"
)

// Options configure a Server.
type Options struct {
	// SystemID and Password are the credentials a bind must present. An
	// empty SystemID accepts any; a wrong password is refused with
	// ESME_RINVPASWD, an unknown system_id with ESME_RINVSYSID.
	SystemID, Password string
	// NoRecord keeps only counters, not each submit, for benchmarks.
	NoRecord bool
	// TLS, when set, serves TLS with this configuration.
	TLS *tls.Config
	// Charset is what the server reads data_coding 0 in when it decodes
	// Submit.Text (default GSM 03.38), as an SMSC does.
	Charset gsm.Charset
}

// Submit is one submit_sm the server received.
type Submit struct {
	Session            int // which connection, counted from 1
	Seq                uint32
	MessageID          string // the id the server assigned
	Source, Dest       smpp.Address
	ESMClass           byte
	DataCoding         byte
	RegisteredDelivery byte
	ValidityPeriod     string
	ShortMessage       []byte // as received, UDH included
	// UDH fields of an 8-bit-reference concatenated part (05 00 03 RR TT
	// SS); zero when there is none.
	Ref, Total, Part int
	// Text is the part's text decoded from its data_coding (UDH removed),
	// data_coding 0 in Options.Charset; TextErr says why it did not decode.
	Text    string
	TextErr error
	At      time.Time
}

// Reply says how the server answers one submit_sm.
type Reply struct {
	// Status of the submit_sm_resp; 0 accepts.
	Status smpp.Status
	// Withhold keeps the response back until Release.
	Withhold bool
	// AnswerAs, when set, is the command id of the answer instead of
	// submit_sm_resp: a generic_nack, or a response to some other request.
	AnswerAs smpp.CommandID
	// ReceiptFirst, when set, is sent as a receipt for this message before
	// its submit_sm_resp (its ID is filled in).
	ReceiptFirst *Receipt
}

// Receipt is a delivery receipt the server sends.
type Receipt struct {
	ID   string // quoted as the text's id: (and in the TLV when TLV is set)
	Stat string // DELIVRD, UNDELIV, ...
	Err  string // the text's err:, "000" when empty
	// Text is the text's text: field. Clients must never log it.
	Text string
	// TLV adds receipted_message_id and message_state.
	TLV bool
	// DataSM sends the receipt as a data_sm, the text in message_payload,
	// as some SMSCs do, instead of a deliver_sm.
	DataSM bool
}

// Server is a fake SMSC.
type Server struct {
	opt Options
	ln  net.Listener
	wg  sync.WaitGroup

	mu       sync.Mutex
	sessions map[*conn]struct{}
	onSubmit func(Submit) Reply
	submits  []Submit
	withheld []withheld
	nextConn int
	silent   bool
	closed   bool
	changed  chan struct{} // closed and replaced on every recorded event

	count        atomic.Uint64 // submits received
	ids          atomic.Uint64
	maxInFlight  atomic.Int64
	binds        atomic.Int64 // successful binds
	bindRefusals atomic.Int64
	enquires     atomic.Int64 // enquire_link received
	unbinds      atomic.Int64 // unbind received
	nacks        atomic.Int64 // generic_nack received
}

type withheld struct {
	c   *conn
	seq uint32
	id  string
}

// NewServer starts a Server on 127.0.0.1:0 and closes it when tb ends.
func NewServer(tb testing.TB, opt Options) *Server {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("smpptest: listen: %v", err)
	}
	if opt.TLS != nil {
		ln = tls.NewListener(ln, opt.TLS)
	}
	s := &Server{opt: opt, ln: ln, sessions: map[*conn]struct{}{}, changed: make(chan struct{})}
	s.wg.Add(1)
	go s.accept()
	tb.Cleanup(s.Close)
	return s
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL returns an smpp:// URL for this server with the given credentials and
// query ("window=5&timeout=1s", may be empty).
func (s *Server) URL(systemID, password, query string) string {
	u := "smpp://" + systemID + ":" + password + "@" + s.Addr()
	if query != "" {
		u += "?" + query
	}
	return u
}

// Close stops the server and drops every connection.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	for c := range s.sessions {
		c.nc.Close()
	}
	s.mu.Unlock()
	s.ln.Close()
	s.wg.Wait()
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			return
		}
		s.nextConn++
		c := &conn{s: s, nc: nc, id: s.nextConn, w: bufio.NewWriterSize(nc, 32*1024),
			pending: map[uint32]chan *smpp.PDU{}}
		s.sessions[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			c.serve()
			s.mu.Lock()
			delete(s.sessions, c)
			s.mu.Unlock()
			s.notify()
		}()
	}
}

// notify wakes the Wait* helpers.
func (s *Server) notify() {
	s.mu.Lock()
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// OnSubmit sets how submits are answered from now on; nil accepts all.
func (s *Server) OnSubmit(f func(Submit) Reply) {
	s.mu.Lock()
	s.onSubmit = f
	s.mu.Unlock()
}

// Release answers every withheld submit with status 0, the last one first,
// so a client that does not match responses by sequence number is caught.
func (s *Server) Release() {
	s.mu.Lock()
	w := s.withheld
	s.withheld = nil
	s.mu.Unlock()
	for i := len(w) - 1; i >= 0; i-- {
		x := w[i]
		x.c.respond(&smpp.PDU{ID: smpp.SubmitSMResp, Seq: x.seq, MessageID: x.id}, true)
		x.c.flush()
	}
}

// Silence stops (or restarts) every answer, enquire_link included, as a
// dead SMSC would.
func (s *Server) Silence(on bool) {
	s.mu.Lock()
	s.silent = on
	s.mu.Unlock()
}

// Submits returns the submits recorded so far, in arrival order.
func (s *Server) Submits() []Submit {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Submit(nil), s.submits...)
}

// Count is the number of submits received.
func (s *Server) Count() uint64 { return s.count.Load() }

// MaxInFlight is the most submits one session ever had received and not yet
// answered (a response counts as given once it is flushed to the socket).
func (s *Server) MaxInFlight() int { return int(s.maxInFlight.Load()) }

// Counters of protocol events.
type Counters struct {
	Binds, BindRefusals, EnquireLinks, Unbinds, GenericNacks, Sessions int
}

// Counters returns the protocol event counts and the sessions open now.
func (s *Server) Counters() Counters {
	s.mu.Lock()
	n := len(s.sessions)
	s.mu.Unlock()
	return Counters{
		Binds: int(s.binds.Load()), BindRefusals: int(s.bindRefusals.Load()),
		EnquireLinks: int(s.enquires.Load()), Unbinds: int(s.unbinds.Load()),
		GenericNacks: int(s.nacks.Load()), Sessions: n,
	}
}

// Wait blocks until cond holds (checked after every event) or timeout
// passes, and reports whether it held.
func (s *Server) Wait(timeout time.Duration, cond func() bool) bool {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		if cond() {
			return true
		}
		select {
		case <-ch:
		case <-t.C:
			return cond()
		}
	}
}

// WaitSubmits waits up to timeout for at least n recorded submits and
// returns them; it fails tb when they do not come.
func (s *Server) WaitSubmits(tb testing.TB, n int, timeout time.Duration) []Submit {
	tb.Helper()
	if !s.Wait(timeout, func() bool { return s.Count() >= uint64(n) }) {
		tb.Fatalf("smpptest: %d submits after %v, want %d", s.Count(), timeout, n)
	}
	return s.Submits()
}

// DropConnections closes every connection without a word.
func (s *Server) DropConnections() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.sessions {
		c.nc.Close()
	}
}

// SendRaw writes b as it is to every bound session: garbage, or a PDU a
// test built by hand.
func (s *Server) SendRaw(b []byte) {
	for _, c := range s.bound(false) {
		c.wmu.Lock()
		c.w.Write(b)
		c.w.Flush()
		c.wmu.Unlock()
	}
}

// SendReceipt sends r on a session that can receive (transceiver or
// receiver) and returns the status of the client's deliver_sm_resp (or
// data_sm_resp).
func (s *Server) SendReceipt(r Receipt) (smpp.Status, error) {
	cs := s.bound(true)
	if len(cs) == 0 {
		return 0, errors.New("smpptest: no receiving session bound")
	}
	return cs[0].request(receiptPDU(r), 5*time.Second)
}

// EnquireLink sends enquire_link on every bound session and returns how
// many were answered within timeout.
func (s *Server) EnquireLink(timeout time.Duration) int {
	n := 0
	for _, c := range s.bound(false) {
		if _, err := c.request(&smpp.PDU{ID: smpp.EnquireLink}, timeout); err == nil {
			n++
		}
	}
	return n
}

// Unbind sends unbind on every bound session, waits up to timeout for each
// unbind_resp, then closes the session. It returns how many answered.
func (s *Server) Unbind(timeout time.Duration) int {
	n := 0
	for _, c := range s.bound(false) {
		if _, err := c.request(&smpp.PDU{ID: smpp.Unbind}, timeout); err == nil {
			n++
		}
		c.nc.Close()
	}
	return n
}

// bound returns the bound sessions, only those that can receive when rx.
func (s *Server) bound(rx bool) []*conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*conn
	for c := range s.sessions {
		if c.bound.Load() && (!rx || c.canReceive) {
			out = append(out, c)
		}
	}
	return out
}

func receiptPDU(r Receipt) *smpp.PDU {
	errCode := r.Err
	if errCode == "" {
		errCode = "000"
	}
	now := time.Now().UTC().Format("0601021504")
	dlvrd := "000"
	if r.Stat == "DELIVRD" {
		dlvrd = "001"
	}
	text := fmt.Sprintf("id:%s sub:001 dlvrd:%s submit date:%s done date:%s stat:%s err:%s text:%s",
		r.ID, dlvrd, now, now, r.Stat, errCode, r.Text)
	if len(text) > smpp.MaxShortMessage {
		text = text[:smpp.MaxShortMessage]
	}
	p := &smpp.PDU{
		ID:           smpp.DeliverSM,
		Source:       smpp.Address{TON: 1, NPI: 1, Addr: "447700900000"},
		Dest:         smpp.Address{TON: 5, NPI: 0, Addr: "verifyd"},
		ESMClass:     0x04,
		ShortMessage: []byte(text),
	}
	if r.TLV {
		p.TLVs.SetCString(smpp.TagReceiptedMessageID, r.ID)
		if st, ok := statWords[r.Stat]; ok {
			p.TLVs.SetUint8(smpp.TagMessageState, st)
		}
	}
	if r.DataSM {
		p.ID = smpp.DataSM
		p.TLVs.Set(smpp.TagMessagePayload, p.ShortMessage)
		p.ShortMessage = nil
	}
	return p
}

var statWords = map[string]uint8{"ENROUTE": 1, "DELIVRD": 2, "EXPIRED": 3, "DELETED": 4,
	"UNDELIV": 5, "ACCEPTD": 6, "UNKNOWN": 7, "REJECTD": 8}

// conn is one client connection.
type conn struct {
	s           *Server
	nc          net.Conn
	id          int
	bound       atomic.Bool
	canReceive  bool // set before bound
	canTransmit bool // set before bound

	wmu       sync.Mutex
	w         *bufio.Writer
	unflushed int64 // submit responses written since the last flush
	inFlight  atomic.Int64

	pmu     sync.Mutex
	seq     uint32
	pending map[uint32]chan *smpp.PDU
}

func (c *conn) serve() {
	defer c.nc.Close()
	r := bufio.NewReaderSize(c.nc, 32*1024)
	var buf []byte
	for {
		frame, err := smpp.ReadFrame(r, buf)
		if err != nil {
			return
		}
		buf = frame
		q, err := smpp.Decode(frame)
		if err != nil {
			c.respond(&smpp.PDU{ID: smpp.GenericNack, Status: smpp.StatusInvCmdLen,
				Seq: uint32(frame[12])<<24 | uint32(frame[13])<<16 | uint32(frame[14])<<8 | uint32(frame[15])}, false)
			c.flush()
			continue
		}
		if !c.handle(q) {
			return
		}
		// Flush only once the input runs dry, so a burst of submits is
		// answered by one write.
		if r.Buffered() == 0 {
			c.flush()
		}
	}
}

// handle acts on one PDU; false ends the connection.
func (c *conn) handle(p *smpp.PDU) bool {
	s := c.s
	s.mu.Lock()
	silent := s.silent
	s.mu.Unlock()
	if p.ID.IsResponse() {
		if p.ID == smpp.GenericNack {
			s.nacks.Add(1)
			s.notify()
		}
		c.pmu.Lock()
		ch := c.pending[p.Seq]
		delete(c.pending, p.Seq)
		c.pmu.Unlock()
		if ch != nil {
			ch <- &smpp.PDU{ID: p.ID, Status: p.Status, Seq: p.Seq}
		}
		return true
	}
	switch p.ID {
	case smpp.BindTransceiver, smpp.BindTransmitter, smpp.BindReceiver:
		return c.bind(p)
	case smpp.EnquireLink:
		s.enquires.Add(1)
		s.notify()
		if !silent {
			c.respond(&smpp.PDU{ID: smpp.EnquireLinkResp, Seq: p.Seq}, false)
		}
	case smpp.Unbind:
		s.unbinds.Add(1)
		s.notify()
		if !silent {
			c.respond(&smpp.PDU{ID: smpp.UnbindResp, Seq: p.Seq}, false)
			c.flush()
			return false
		}
	case smpp.SubmitSM:
		// Not bound, or bound as a receiver: the wrong state for a submit.
		if !c.bound.Load() || !c.canTransmit {
			c.respond(&smpp.PDU{ID: smpp.SubmitSMResp, Status: smpp.StatusInvBndSts, Seq: p.Seq}, false)
			return true
		}
		c.submit(p, silent)
	default:
		c.respond(&smpp.PDU{ID: smpp.GenericNack, Status: smpp.StatusInvCmdID, Seq: p.Seq}, false)
	}
	return true
}

func (c *conn) bind(p *smpp.PDU) bool {
	s := c.s
	st := smpp.StatusOK
	switch {
	case c.bound.Load():
		st = smpp.StatusAlyBnd
	case s.opt.SystemID != "" && p.SystemID != s.opt.SystemID:
		st = smpp.StatusInvSysID
	case s.opt.SystemID != "" && p.Password != s.opt.Password:
		st = smpp.StatusInvPaswd
	}
	resp := &smpp.PDU{ID: p.ID.Response(), Status: st, Seq: p.Seq, SystemID: "smpptest"}
	if st != smpp.StatusOK {
		s.bindRefusals.Add(1)
		c.respond(resp, false)
		c.flush()
		s.notify()
		return false
	}
	resp.TLVs.SetUint8(smpp.TagSCInterfaceVersion, smpp.InterfaceVersion)
	c.canReceive = p.ID != smpp.BindTransmitter
	c.canTransmit = p.ID != smpp.BindReceiver
	c.bound.Store(true)
	s.binds.Add(1)
	c.respond(resp, false)
	c.flush()
	s.notify()
	return true
}

func (c *conn) submit(p *smpp.PDU, silent bool) {
	s := c.s
	if n := c.inFlight.Add(1); n > s.maxInFlight.Load() {
		for {
			m := s.maxInFlight.Load()
			if n <= m || s.maxInFlight.CompareAndSwap(m, n) {
				break
			}
		}
	}
	id := strconv.FormatUint(s.ids.Add(1), 10)
	s.mu.Lock()
	f := s.onSubmit
	record := !s.opt.NoRecord
	s.mu.Unlock()
	var reply Reply
	if f != nil || record {
		sub := newSubmit(c.id, p, id, s.opt.Charset)
		if f != nil {
			reply = f(sub)
		}
		if record {
			s.mu.Lock()
			s.submits = append(s.submits, sub)
			s.mu.Unlock()
		}
	}
	if reply.Withhold && !silent {
		s.mu.Lock()
		s.withheld = append(s.withheld, withheld{c: c, seq: p.Seq, id: id})
		s.mu.Unlock()
	}
	// Counted only now, so a test that saw the count also sees the submit
	// recorded and, if withheld, ready for Release.
	s.count.Add(1)
	if record || f != nil {
		s.notify()
	}
	if silent || reply.Withhold {
		return
	}
	if reply.ReceiptFirst != nil {
		r := *reply.ReceiptFirst
		r.ID = id
		c.send(receiptPDU(r))
	}
	resp := &smpp.PDU{ID: smpp.SubmitSMResp, Status: reply.Status, Seq: p.Seq}
	if reply.Status == smpp.StatusOK {
		resp.MessageID = id
	}
	if reply.AnswerAs != 0 {
		resp.ID = reply.AnswerAs
	}
	c.respond(resp, true)
}

func newSubmit(connID int, p *smpp.PDU, id string, cs gsm.Charset) Submit {
	sub := Submit{
		Session: connID, Seq: p.Seq, MessageID: id, Source: p.Source, Dest: p.Dest,
		ESMClass: p.ESMClass, DataCoding: p.DataCoding, RegisteredDelivery: p.RegisteredDelivery,
		ValidityPeriod: p.ValidityPeriod, ShortMessage: p.ShortMessage, At: time.Now(),
	}
	body := p.ShortMessage
	if p.ESMClass&0x40 != 0 && len(body) > 0 && int(body[0])+1 <= len(body) {
		udh := body[1 : 1+int(body[0])]
		body = body[1+int(body[0]):]
		for len(udh) >= 2 && int(udh[1])+2 <= len(udh) {
			if udh[0] == 0x00 && udh[1] == 3 {
				sub.Ref, sub.Total, sub.Part = int(udh[2]), int(udh[3]), int(udh[4])
			}
			udh = udh[2+int(udh[1]):]
		}
	}
	sub.Text, sub.TextErr = cs.Decode(gsm.Coding(p.DataCoding), body)
	return sub
}

// respond writes a response to the buffer; the caller flushes. A submit
// response counts as given (no longer in flight) from just before the flush
// that sends it, never after the client could have seen it.
func (c *conn) respond(p *smpp.PDU, submit bool) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	b, err := p.AppendBinary(nil)
	if err != nil {
		return
	}
	if len(b) > c.w.Available() {
		// This write flushes what is buffered.
		c.settle()
	}
	c.w.Write(b)
	if submit {
		c.unflushed++
	}
}

// settle marks the buffered submit responses as given. c.wmu is held.
func (c *conn) settle() {
	if c.unflushed > 0 {
		c.inFlight.Add(-c.unflushed)
		c.unflushed = 0
	}
}

func (c *conn) flush() {
	c.wmu.Lock()
	c.settle()
	c.w.Flush()
	c.wmu.Unlock()
}

// send writes a request of the server's own and returns the channel its
// response (header only) will arrive on.
func (c *conn) send(p *smpp.PDU) chan *smpp.PDU {
	ch := make(chan *smpp.PDU, 1)
	c.pmu.Lock()
	c.seq++
	p.Seq = c.seq
	c.pending[p.Seq] = ch
	c.pmu.Unlock()
	c.respond(p, false)
	c.flush()
	return ch
}

// request sends p and waits up to timeout for its response.
func (c *conn) request(p *smpp.PDU, timeout time.Duration) (smpp.Status, error) {
	ch := c.send(p)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case r := <-ch:
		// A client must answer with the request's own response, or a
		// generic_nack: a deliver_sm_resp to a data_sm is its own bug.
		if r.ID != p.ID.Response() && r.ID != smpp.GenericNack {
			return r.Status, fmt.Errorf("smpptest: %s answered with %s", p.ID, r.ID)
		}
		return r.Status, nil
	case <-t.C:
		return 0, fmt.Errorf("smpptest: no response to %s in %v", p.ID, timeout)
	}
}

// Reassemble joins recorded submits into whole texts: single-part ones as
// they are, concatenated parts by (session, reference) once all arrived, in
// the order their last part came. Parts that do not complete are left out.
func Reassemble(subs []Submit) []string {
	type key struct{ session, ref, total int }
	parts := map[key]map[int]string{}
	var out []string
	for _, s := range subs {
		if s.Total == 0 {
			out = append(out, s.Text)
			continue
		}
		k := key{s.Session, s.Ref, s.Total}
		if parts[k] == nil {
			parts[k] = map[int]string{}
		}
		parts[k][s.Part] = s.Text
		if len(parts[k]) == s.Total {
			text := ""
			for i := 1; i <= s.Total; i++ {
				text += parts[k][i]
			}
			out = append(out, text)
			delete(parts, k)
		}
	}
	return out
}
