package smpp

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Tag identifies an optional parameter (TLV).
type Tag uint16

// The TLV tags this package decodes; every other tag is skipped.
const (
	TagAdditionalStatusInfoText Tag = 0x001D
	TagReceiptedMessageID       Tag = 0x001E
	TagUserMessageReference     Tag = 0x0204
	TagSourcePort               Tag = 0x020A
	TagDestinationPort          Tag = 0x020B
	TagSarMsgRefNum             Tag = 0x020C
	TagSarTotalSegments         Tag = 0x020E
	TagSarSegmentSeqnum         Tag = 0x020F
	TagSCInterfaceVersion       Tag = 0x0210
	TagNetworkErrorCode         Tag = 0x0423
	TagMessagePayload           Tag = 0x0424
	TagDeliveryFailureReason    Tag = 0x0425
	TagMessageState             Tag = 0x0427
)

func knownTag(t Tag) bool {
	switch t {
	case TagAdditionalStatusInfoText, TagReceiptedMessageID, TagUserMessageReference,
		TagSourcePort, TagDestinationPort, TagSarMsgRefNum, TagSarTotalSegments,
		TagSarSegmentSeqnum, TagSCInterfaceVersion, TagNetworkErrorCode,
		TagMessagePayload, TagDeliveryFailureReason, TagMessageState:
		return true
	}
	return false
}

// TLV is one optional parameter. Value is the raw value; the accessors on
// TLVs check its size against the tag's type.
type TLV struct {
	Tag   Tag
	Value []byte
}

// TLVs is a PDU's optional parameters in wire order.
type TLVs []TLV

// Get returns the value of the first TLV with tag t.
func (ts TLVs) Get(t Tag) ([]byte, bool) {
	for _, x := range ts {
		if x.Tag == t {
			return x.Value, true
		}
	}
	return nil, false
}

// Uint8 returns the value of a one-octet TLV; ok is false when it is absent or
// not one octet long.
func (ts TLVs) Uint8(t Tag) (v uint8, ok bool) {
	b, ok := ts.Get(t)
	if !ok || len(b) != 1 {
		return 0, false
	}
	return b[0], true
}

// CString returns the value of a C-octet string TLV without its NUL. A value
// missing its NUL is accepted as it stands, since some SMSCs omit it.
func (ts TLVs) CString(t Tag) (string, bool) {
	b, ok := ts.Get(t)
	if !ok {
		return "", false
	}
	for i, c := range b {
		if c == 0 {
			return string(b[:i]), true
		}
	}
	return string(b), true
}

// Set replaces the value of tag t, or appends it.
func (ts *TLVs) Set(t Tag, v []byte) {
	for i := range *ts {
		if (*ts)[i].Tag == t {
			(*ts)[i].Value = v
			return
		}
	}
	*ts = append(*ts, TLV{Tag: t, Value: v})
}

// SetUint8 sets a one-octet TLV.
func (ts *TLVs) SetUint8(t Tag, v uint8) { ts.Set(t, []byte{v}) }

// SetCString sets a C-octet string TLV (the NUL is added).
func (ts *TLVs) SetCString(t Tag, s string) { ts.Set(t, append([]byte(s), 0)) }

var errTLVShort = errors.New("TLV runs past the end of the PDU")

// decodeTLVs reads the optional parameters that follow the mandatory fields,
// keeping the known tags and skipping the rest. On an error it also returns
// the TLVs read before it.
func decodeTLVs(b []byte) (TLVs, error) {
	var ts TLVs
	for len(b) > 0 {
		if len(b) < 4 {
			return ts, fmt.Errorf("%w (%d trailing octets)", errTLVShort, len(b))
		}
		tag := Tag(binary.BigEndian.Uint16(b))
		n := int(binary.BigEndian.Uint16(b[2:]))
		if n > len(b)-4 {
			return ts, fmt.Errorf("%w (tag 0x%04X, length %d)", errTLVShort, uint16(tag), n)
		}
		if knownTag(tag) {
			ts = append(ts, TLV{Tag: tag, Value: append([]byte{}, b[4:4+n]...)})
		}
		b = b[4+n:]
	}
	return ts, nil
}
