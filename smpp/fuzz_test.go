package smpp

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

// FuzzDecode holds the codec to two properties on any input: Decode returns a
// PDU or an error wrapping ErrMalformed/ErrFraming, never a panic; and a PDU
// it returns re-encodes (when its fields are within the specification's
// limits) to bytes that decode to the same PDU.
func FuzzDecode(f *testing.F) {
	f.Add(unhex(f, workedSubmit))
	f.Add(unhex(f, "00000010 00000015 00000000 00000001"))
	f.Add(unhex(f, "00000010 80000004 00000058 00000007"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Decode(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrFraming) {
				t.Fatalf("error %v wraps neither ErrMalformed nor ErrFraming", err)
			}
			return
		}
		enc, err := p.MarshalBinary()
		if err != nil {
			return // decoding is liberal, encoding strict
		}
		q, err := Decode(enc)
		if err != nil {
			t.Fatalf("re-encoded PDU does not decode: %v\n%x", err, enc)
		}
		if !reflect.DeepEqual(p, q) {
			t.Fatalf("round trip changed the PDU\n%+v\n%+v", p, q)
		}
	})
}

// FuzzParseReceipt holds the receipt parser to two properties on any text
// before a text: key: it never panics, and no field it keeps takes anything
// from the message text after text:.
func FuzzParseReceipt(f *testing.F) {
	f.Add([]byte("id:12 sub:001 dlvrd:001 submit date:2503141030 done date:2503141031 stat:DELIVRD err:000"))
	f.Add([]byte("ID:\xad\xad\xad1 STAT:DELIVRD"))
	f.Add([]byte("stat:\x80\x80 err:\xc0"))
	f.Fuzz(func(t *testing.T, before []byte) {
		const code = "918273645"
		p := &PDU{ID: DeliverSM, ESMClass: 4, ShortMessage: append(append([]byte{}, before...), " text:"+code...)}
		r := ParseReceipt(p)
		for _, v := range []string{r.ID, r.Stat, r.Err} {
			if !strings.Contains(string(before), v) {
				t.Fatalf("field %q is not from the text before text: (%q)", v, before)
			}
		}
	})
}

// FuzzReadFrame holds the framing to what a hostile stream may not do: panic,
// return a frame whose length is not its command_length or is outside 16 to
// MaxPDULen, or end with an error other than the end of the stream or lost
// framing. Each frame is also decoded, as the session does.
func FuzzReadFrame(f *testing.F) {
	f.Add(unhex(f, workedSubmit+" 00000010 00000015 00000000 00000001"))
	f.Add(unhex(f, "00000010 80000004 00000058 00000007 0000"))
	f.Add(unhex(f, "ffffffff 00000015"))
	f.Add(unhex(f, "00000008 00000015 00000000 00000001"))
	f.Fuzz(func(t *testing.T, stream []byte) {
		r := bufio.NewReaderSize(bytes.NewReader(stream), 16)
		var buf []byte
		for {
			frame, err := ReadFrame(r, buf)
			if err != nil {
				if err != io.EOF && err != io.ErrUnexpectedEOF && !errors.Is(err, ErrFraming) {
					t.Fatalf("ReadFrame error %v", err)
				}
				return
			}
			n := binary.BigEndian.Uint32(frame)
			if int(n) != len(frame) || n < HeaderLen || n > MaxPDULen {
				t.Fatalf("frame of %d octets with command_length %d", len(frame), n)
			}
			var p PDU
			if err := p.decode(frame); err != nil && !errors.Is(err, ErrMalformed) {
				t.Fatalf("decode error %v wraps no ErrMalformed", err)
			}
			buf = frame
		}
	})
}
