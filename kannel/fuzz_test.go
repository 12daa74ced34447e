package kannel

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net/url"
	"testing"

	"verifyd"
)

// FuzzParseReceipt feeds the report route's query, which anyone who can
// reach the API may send: it never panics, and it takes a report only for a
// well-formed ref with that ref's own token, as one of the final states.
func FuzzParseReceipt(f *testing.F) {
	s := newSender(f, "http://u:p@127.0.0.1:13013/cgi-bin/sendsms?receipts=https://v.example.com", nil)
	ref := "kannel-00112233445566778899aabbccddeeff"
	token := hex.EncodeToString(testSigner{}.ReceiptToken(ref))
	for _, q := range []string{
		"ref=" + ref + "&token=" + token + "&type=1",
		"ref=" + ref + "&token=" + token + "&type=16",
		"ref=" + ref + "&token=" + token + "&type=8",
		"ref=" + ref + "&token=" + token[:10] + "&type=1",
		"ref=" + ref + "&token=" + token + "&type=1&type=2",
		"ref=kannel-x&token=&type=",
		"",
	} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		r, ok, err := s.ParseReceipt(q)
		if err != nil {
			var ve *verifyd.Error
			if !errors.As(err, &ve) || ok {
				t.Fatalf("%q: %v (ok %v), want a *verifyd.Error and nothing taken", raw, err, ok)
			}
			return
		}
		if !ok {
			return
		}
		got, _ := hex.DecodeString(q.Get("token"))
		if !validRef(r.CarrierID) || r.CarrierID != q.Get("ref") || !bytes.Equal(got, testSigner{}.ReceiptToken(r.CarrierID)) {
			t.Fatalf("%q: took a report for %q without that ref's token", raw, r.CarrierID)
		}
		switch r.State {
		case verifyd.DeliveryDelivered, verifyd.DeliveryUndeliverable, verifyd.DeliveryFailed:
		default:
			t.Fatalf("%q: state %q", raw, r.State)
		}
	})
}
