package smpp

import (
	"context"
	"fmt"
	"math/big"
	"runtime"
	"runtime/debug"
	"strings"

	"verifyd"
)

// MessageState is a message_state value (the TLV, or the receipt text's
// stat: word).
type MessageState byte

// The message states of SMPP 3.4, plus SMPP 5.0's 0 and 9.
const (
	StateScheduled     MessageState = 0
	StateEnroute       MessageState = 1
	StateDelivered     MessageState = 2
	StateExpired       MessageState = 3
	StateDeleted       MessageState = 4
	StateUndeliverable MessageState = 5
	StateAccepted      MessageState = 6
	StateUnknown       MessageState = 7
	StateRejected      MessageState = 8
	StateSkipped       MessageState = 9
)

var stateWords = map[string]MessageState{
	"SCHEDULED": StateScheduled,
	"ENROUTE":   StateEnroute, "DELIVRD": StateDelivered, "EXPIRED": StateExpired,
	"DELETED": StateDeleted, "UNDELIV": StateUndeliverable, "ACCEPTD": StateAccepted,
	"UNKNOWN": StateUnknown, "REJECTD": StateRejected, "SKIPPED": StateSkipped,
	// Spelled out by some SMSCs.
	"DELIVERED": StateDelivered, "UNDELIVERABLE": StateUndeliverable,
	"ACCEPTED": StateAccepted, "REJECTED": StateRejected,
}

var stateNames = [...]string{"SCHEDULED", "ENROUTE", "DELIVRD", "EXPIRED", "DELETED",
	"UNDELIV", "ACCEPTD", "UNKNOWN", "REJECTD", "SKIPPED"}

// String returns the receipt text's word for the state ("DELIVRD").
func (s MessageState) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("STATE_%d", s)
}

// DeliveryReport is what one receipt says, read from its TLVs first and its
// text second.
type DeliveryReport struct {
	// ID is the SMSC message id as the receipt quotes it
	// (receipted_message_id, else the text's id:), not normalised.
	ID string
	// State is the message state (message_state, else the text's stat:);
	// HasState is false when neither was there or the word is unknown.
	State    MessageState
	HasState bool
	// Stat is the text's stat: word as sent, for words outside the list.
	Stat string
	// Err is the text's err: value.
	Err string
}

// IsReceipt reports whether a deliver_sm (or data_sm) is a delivery receipt. All of bits
// 5-2 of esm_class are compared, since a mask of 0x1C would take an
// intermediate notification (0x20) for a receipt.
func IsReceipt(p *PDU) bool { return p.ESMClass&0x3C == 0x04 }

// ParseReceipt reads a receipt deliver_sm, or a data_sm, whose text is in
// message_payload if anywhere. It never fails: missing fields are
// left empty. The text's text: field (the start of the message, so the code)
// is skipped and never kept.
func ParseReceipt(p *PDU) DeliveryReport {
	text := p.ShortMessage
	if len(text) == 0 {
		text, _ = p.TLVs.Get(TagMessagePayload)
	}
	fields := receiptFields(string(text))
	var r DeliveryReport
	if id, ok := p.TLVs.CString(TagReceiptedMessageID); ok && strings.TrimSpace(id) != "" {
		r.ID = strings.TrimSpace(id)
	} else {
		r.ID = firstToken(fields["id"])
	}
	r.Stat = fields["stat"]
	if st, ok := p.TLVs.Uint8(TagMessageState); ok {
		r.State, r.HasState = MessageState(st), true
	} else if st, ok := stateWords[strings.ToUpper(r.Stat)]; ok {
		r.State, r.HasState = st, true
	}
	r.Err = firstToken(fields["err"])
	return r
}

var receiptKeys = []string{"id", "sub", "dlvrd", "submit date", "done date", "stat", "err", "text"}

// receiptFields splits the recommended receipt text ("id:… sub:… dlvrd:…
// submit date:… done date:… stat:… err:… text:…") into its fields: keys in
// any case and any order, separated by spaces or commas, each value running
// to the next key. text: runs to the end and is dropped.
func receiptFields(s string) map[string]string {
	lower := asciiLower(s)
	type hit struct {
		key        string
		start, end int // of "key:" in s
	}
	var hits []hit
	for i := 0; i < len(lower); i++ {
		if i > 0 && lower[i-1] != ' ' && lower[i-1] != ',' && lower[i-1] != ';' && lower[i-1] != '\t' {
			continue
		}
		for _, k := range receiptKeys {
			if strings.HasPrefix(lower[i:], k+":") {
				hits = append(hits, hit{k, i, i + len(k) + 1})
				i += len(k)
				break
			}
		}
		if n := len(hits); n > 0 && hits[n-1].key == "text" {
			break
		}
	}
	out := make(map[string]string, len(hits))
	for i, h := range hits {
		if h.key == "text" {
			break
		}
		end := len(s)
		if i+1 < len(hits) {
			end = hits[i+1].start
		}
		if _, dup := out[h.key]; !dup {
			// A NUL too: some SMSCs end the text as a C string.
			out[h.key] = strings.Trim(s[h.end:end], " ,;\t\r\n\x00")
		}
	}
	return out
}

// asciiLower lowercases the ASCII letters of s and keeps every other byte,
// so that an offset in the result is the same offset in s. strings.ToLower
// would turn each byte that is not UTF-8 into a three-byte U+FFFD, and
// offsets found in its result would then cut s in the wrong places: out of
// its bounds (a panic), or into the message text.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// firstToken keeps a value up to its first blank or NUL. Ids and error
// codes hold neither, and a receipt with a malformed text: key cannot then
// smuggle the message text (the code) into a field that is stored or logged.
func firstToken(s string) string {
	if i := strings.IndexAny(s, " \t\r\n\x00"); i >= 0 {
		return s[:i]
	}
	return s
}

// safeStat is a stat word fit for a log line: letters, blanks and
// underscores only, at most 24 of them, so no digits of a code get through.
func safeStat(s string) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= 24 {
			break
		}
		if r == ' ' || r == '_' || (r >= 'A' && r <= 'Z') || (r >= 'a' && r <= 'z') {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// printableASCII keeps the printable ASCII of s, so that a receipt's err:
// value, which the SMSC may send with any octets, is text every store takes.
func printableASCII(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x21 || r > 0x7E {
			return -1
		}
		return r
	}, s)
}

// NormalizeID puts an SMSC message id in the one form both sides of a match
// use: trimmed, uppercase, without leading zeros ("0a1F" and "A1F" match).
func NormalizeID(id string) string {
	id = strings.ToUpper(strings.TrimSpace(id))
	trimmed := strings.TrimLeft(id, "0")
	if trimmed == "" && id != "" {
		return "0"
	}
	return trimmed
}

// convertID applies Config.ReceiptIDBase to a receipt's id so it reads as
// submit_sm_resp gave it. An id that does not parse in the expected base is
// left as it is.
func convertID(id string, base IDBase) string {
	var from, to int
	switch base {
	case IDHexToDec:
		from, to = 16, 10
	case IDDecToHex:
		from, to = 10, 16
	default:
		return id
	}
	n, ok := new(big.Int).SetString(strings.TrimSpace(id), from)
	if !ok || n.Sign() < 0 {
		return id
	}
	return strings.ToUpper(n.Text(to))
}

// receiptState maps a final state to the delivery state the store records
// (UNKNOWN's Failed only provisionally, see handleDeliver); ok is false for
// intermediate states (ENROUTE, ACCEPTD, SCHEDULED), which are acknowledged
// and otherwise ignored.
func receiptState(s MessageState) (verifyd.DeliveryState, bool) {
	switch s {
	case StateDelivered:
		return verifyd.DeliveryDelivered, true
	case StateUndeliverable, StateRejected:
		return verifyd.DeliveryUndeliverable, true
	case StateExpired:
		return verifyd.DeliveryExpired, true
	case StateDeleted, StateUnknown, StateSkipped:
		return verifyd.DeliveryFailed, true
	}
	return "", false
}

// answerDeliver is handleDeliver for the session's receipt worker. A panic
// while handling one deliver_sm (a bug that some PDU sets off) rejects that
// PDU for good, ESME_RX_P_APPN, instead of killing the process: the SMSC
// would deliver the PDU again after every restart. The log line holds the
// panic and its stack, never the PDU, which may carry the message text.
func (c *Client) answerDeliver(p *PDU) (st Status) {
	defer func() {
		if v := recover(); v != nil {
			what := fmt.Sprintf("%T", v)
			if err, ok := v.(runtime.Error); ok {
				what = err.Error() // the runtime's own words, no data of ours
			}
			c.log.Error("smpp: handling a deliver_sm panicked; rejected for good", "panic", what,
				"stack", string(debug.Stack()))
			st = StatusXPAppn
		}
	}()
	return c.handleDeliver(p)
}

// handleDeliver acts on one deliver_sm or data_sm and returns the status of
// its response: 0 once the receipt is recorded (or for anything that is
// not a final receipt), ESME_RX_T_APPN when the recorder failed, so the SMSC
// delivers it again later.
func (c *Client) handleDeliver(p *PDU) Status {
	if !IsReceipt(p) {
		return StatusOK // a mobile-originated message: not ours to keep
	}
	r := ParseReceipt(p)
	if r.ID == "" {
		c.log.Warn("smpp: receipt without a message id, acknowledged and dropped")
		return StatusOK
	}
	if !r.HasState {
		c.log.Warn("smpp: receipt with an unknown state, acknowledged and dropped", "stat", safeStat(r.Stat))
		return StatusOK
	}
	state, final := receiptState(r.State)
	if !final {
		return StatusOK
	}
	rec := verifyd.Receipt{
		CarrierID: NormalizeID(convertID(r.ID, c.cfg.ReceiptIDBase)),
		State:     state,
		At:        c.cfg.Now(),
		// SMPP.md §6: UNKNOWN counts as failed, but a later receipt for
		// the part may still say what became of it.
		Provisional: r.State == StateUnknown,
	}
	if state != verifyd.DeliveryDelivered {
		rec.Error = r.State.String()
		if r.Err != "" {
			rec.Error += " err:" + printableASCII(r.Err)
		}
	}
	if c.rec == nil {
		return StatusOK
	}
	ctx := c.runCtx
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	if err := c.rec.RecordReceipt(ctx, rec); err != nil {
		c.log.Error("smpp: recording a receipt failed, asking the SMSC to resend it", "err", err)
		return StatusXTAppn
	}
	c.stats.receipts.Add(1)
	return StatusOK
}
