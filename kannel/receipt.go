package kannel

import (
	"crypto/hmac"
	"encoding/hex"
	"net/url"
	"strconv"
	"strings"

	"verifyd"
)

// Kannel's delivery report types, as its DLR URL's %d gives them.
const (
	DLRDelivered    = 1  // delivered to the phone
	DLRUndelivered  = 2  // not delivered to the phone
	DLRBuffered     = 4  // queued on the SMSC
	DLRSMSCAccepted = 8  // delivered to the SMSC
	DLRSMSCRejected = 16 // not delivered to the SMSC: it refused the message
)

// maxReportedToken is the most hex characters a token has (HMAC-SHA256).
const maxReportedToken = 64

// ParseReceipt reads the query of a request to ReceiptPath: the receipt to
// record and true, or false for a report that changes nothing (Kannel's
// intermediate types 4 and 8). The token is checked first, in constant
// time, so a forged report learns nothing. Failures are *verifyd.Error:
// ENOTFOUND for a ref this sender never made, EFORBIDDEN for a token that
// is not the ref's, EINVALID for a missing or unknown type.
func (s *Sender) ParseReceipt(q url.Values) (verifyd.Receipt, bool, error) {
	ref := q.Get("ref")
	if !validRef(ref) {
		return verifyd.Receipt{}, false, verifyd.Errorf(verifyd.ENOTFOUND, "There is no message with this ref.")
	}
	token, err := hex.DecodeString(q.Get("token"))
	if err != nil || len(token) == 0 || len(token) > maxReportedToken/2 || s.signer == nil ||
		!hmac.Equal(token, s.signer.ReceiptToken(ref)) {
		return verifyd.Receipt{}, false, verifyd.Errorf(verifyd.EFORBIDDEN, "The token is not this message's.")
	}
	typ, err := strconv.Atoi(q.Get("type"))
	if err != nil {
		return verifyd.Receipt{}, false, verifyd.Errorf(verifyd.EINVALID, "type must be a Kannel delivery report type: 1, 2, 4, 8 or 16.")
	}
	r := verifyd.Receipt{CarrierID: ref, At: s.now()}
	switch typ {
	case DLRDelivered:
		r.State = verifyd.DeliveryDelivered
	case DLRUndelivered:
		r.State, r.Error = verifyd.DeliveryUndeliverable, "not delivered to the phone (Kannel DLR 2)"
	case DLRSMSCRejected:
		// The SMSC refused the submit: the message never left for the
		// phone, as when an SMPP SMSC refuses it for good.
		r.State, r.Error = verifyd.DeliveryFailed, "refused by the SMSC (Kannel DLR 16)"
	case DLRBuffered, DLRSMSCAccepted:
		return verifyd.Receipt{}, false, nil
	default:
		return verifyd.Receipt{}, false, verifyd.Errorf(verifyd.EINVALID, "type must be a Kannel delivery report type: 1, 2, 4, 8 or 16.")
	}
	return r, true, nil
}

// validRef reports whether ref has the form newRef makes.
func validRef(ref string) bool {
	h, ok := strings.CutPrefix(ref, refPrefix)
	if !ok || len(h) != 32 {
		return false
	}
	for _, c := range h {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
