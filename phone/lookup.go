package phone

import (
	"context"

	"verifyd"
)

// Lookup is the built-in number lookup. It has no network to ask, so it
// judges by the line type alone: a number that may be a mobile is On, and
// one that cannot receive a text as far as the numbering plan says (fixed
// line, VoIP, toll-free, premium rate, pager, ...) is NotProvisioned. It
// never answers Off or Dead: only a real lookup knows a handset's state.
type Lookup struct{}

var _ verifyd.NumberLookup = Lookup{}

// LookupNumber returns n's status from its line type. A Number not made by
// Parse (no line type) is classified afresh from its digits.
func (Lookup) LookupNumber(_ context.Context, n verifyd.Number) (verifyd.NumberStatus, error) {
	t := n.LineType
	if t == "" {
		t = verifyd.LineUnknown
		if p, err := Parse(n.Digits, ""); err == nil {
			t = p.LineType
		}
	}
	switch t {
	case verifyd.LineMobile, verifyd.LineFixedOrMobile, verifyd.LineUnknown:
		return verifyd.NumberOn, nil
	}
	return verifyd.NumberNotProvisioned, nil
}
