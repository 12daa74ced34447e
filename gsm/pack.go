package gsm

import "fmt"

// Pack packs septets (unpacked GSM-7, as Encode writes it) eight to seven
// octets, least significant bit first, as the air interface carries them
// (3GPP TS 23.038 section 6.1.2.1.1). Only SMSCs configured for packed
// data_coding 0 want this; most pack themselves. The high bit of each input
// octet is ignored.
func Pack(septets []byte) []byte {
	out := make([]byte, (len(septets)*7+7)/8)
	for i, s := range septets {
		s &= 0x7F
		bit := i * 7
		o, shift := bit/8, uint(bit%8)
		out[o] |= s << shift
		if shift > 1 {
			out[o+1] |= s >> (8 - shift)
		}
	}
	return out
}

// Unpack is the inverse of Pack: it reads n septets from packed. The count
// is needed because seven septets leave a spare bit-run in the last octet
// that reads as an '@' (0x00) eighth septet.
func Unpack(packed []byte, n int) ([]byte, error) {
	// Compared by division: n*7 could wrap round int for a hostile n.
	if n < 0 || n > len(packed)*8/7 {
		return nil, fmt.Errorf("%w: %d septets do not fit %d octets", ErrInvalid, n, len(packed))
	}
	out := make([]byte, n)
	for i := range out {
		bit := i * 7
		o, shift := bit/8, uint(bit%8)
		v := uint16(packed[o]) >> shift
		if shift > 1 {
			v |= uint16(packed[o+1]) << (8 - shift)
		}
		out[i] = byte(v) & 0x7F
	}
	return out, nil
}
