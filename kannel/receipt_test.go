package kannel

import (
	"encoding/hex"
	"net/url"
	"testing"

	"verifyd"
)

func TestParseReceipt(t *testing.T) {
	t.Parallel()
	s := newSender(t, "http://u:p@127.0.0.1:13013/cgi-bin/sendsms?receipts=https://v.example.com", nil)
	ref := "kannel-00112233445566778899aabbccddeeff"
	other := "kannel-ffeeddccbbaa99887766554433221100"
	token := hex.EncodeToString(testSigner{}.ReceiptToken(ref))
	q := func(ref, token, typ string) url.Values {
		return url.Values{"ref": {ref}, "token": {token}, "type": {typ}}
	}
	for _, tc := range []struct {
		name  string
		q     url.Values
		state verifyd.DeliveryState
		final bool
		code  string
	}{
		{"Delivered", q(ref, token, "1"), verifyd.DeliveryDelivered, true, ""},
		{"Undeliverable", q(ref, token, "2"), verifyd.DeliveryUndeliverable, true, ""},
		{"RefusedBySMSC", q(ref, token, "16"), verifyd.DeliveryFailed, true, ""},
		{"Buffered", q(ref, token, "4"), "", false, ""},
		{"SubmittedToSMSC", q(ref, token, "8"), "", false, ""},
		{"ErrOtherRefsToken", q(other, token, "1"), "", false, verifyd.EFORBIDDEN},
		{"ErrForgedToken", q(ref, hex.EncodeToString(make([]byte, 32)), "1"), "", false, verifyd.EFORBIDDEN},
		{"ErrShortToken", q(ref, token[:32], "1"), "", false, verifyd.EFORBIDDEN},
		{"ErrLongToken", q(ref, token+"00", "1"), "", false, verifyd.EFORBIDDEN},
		{"ErrNoToken", q(ref, "", "1"), "", false, verifyd.EFORBIDDEN},
		{"ErrNoRef", q("", token, "1"), "", false, verifyd.ENOTFOUND},
		{"ErrRefOfAnotherForm", q("0bd57dc3-580c-4c1d-8aee-2ff79bd8633c", token, "1"), "", false, verifyd.ENOTFOUND},
		{"ErrRefUppercase", q("kannel-00112233445566778899AABBCCDDEEFF", token, "1"), "", false, verifyd.ENOTFOUND},
		{"ErrNoType", q(ref, token, ""), "", false, verifyd.EINVALID},
		{"ErrTypeUnsubstituted", q(ref, token, "%d"), "", false, verifyd.EINVALID},
		{"ErrTypeUnknown", q(ref, token, "32"), "", false, verifyd.EINVALID},
		{"ErrTypeZero", q(ref, token, "0"), "", false, verifyd.EINVALID},
		// The token is checked before the type: a forger learns nothing.
		{"ErrForgedTokenBadType", q(ref, "00", "x"), "", false, verifyd.EFORBIDDEN},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, final, err := s.ParseReceipt(tc.q)
			if tc.code != "" {
				if verifyd.ErrorCode(err) != tc.code || final {
					t.Fatalf("ParseReceipt = %+v, %v, %v; want %s", r, final, err, tc.code)
				}
				return
			}
			if err != nil || final != tc.final || r.State != tc.state {
				t.Fatalf("ParseReceipt = %+v, %v, %v; want %s, %v", r, final, err, tc.state, tc.final)
			}
			if final && (r.CarrierID != ref || !r.At.Equal(now) || (r.State != verifyd.DeliveryDelivered) != (r.Error != "")) {
				t.Fatalf("ParseReceipt = %+v", r)
			}
		})
	}
}
