package smpp

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// workedSubmit is SMPP.md §3's worked submit_sm, octet for octet.
const workedSubmit = `0000004f 00000004 00000000 00000002
00 05 00 4d794272616e6400
01 01 34343737303039303031323300
00 00 00 00
3030303030303030313030303030305200
01 00 00 00 0b 436f646520313233343536`

func TestEncodeSubmitSMMatchesWorkedExample(t *testing.T) {
	t.Parallel()
	p := &PDU{
		ID: SubmitSM, Seq: 2,
		Source:             Address{TON: 5, NPI: 0, Addr: "MyBrand"},
		Dest:               Address{TON: 1, NPI: 1, Addr: "447700900123"},
		ValidityPeriod:     "000000001000000R",
		RegisteredDelivery: 1,
		ShortMessage:       []byte("Code 123456"),
	}
	got, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if want := unhex(t, workedSubmit); !bytes.Equal(got, want) {
		t.Fatalf("encoded\n%x\nwant\n%x", got, want)
	}
	back, err := Decode(got)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, p) {
		t.Fatalf("decoded %+v\nwant %+v", back, p)
	}
}

func TestDecodeEnquireLinkExample(t *testing.T) {
	t.Parallel()
	p, err := Decode(unhex(t, "00000010 00000015 00000000 00000001"))
	if err != nil {
		t.Fatal(err)
	}
	if p.ID != EnquireLink || p.Seq != 1 || p.Status != StatusOK {
		t.Fatalf("got %+v", p)
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	var tlvs TLVs
	tlvs.SetCString(TagReceiptedMessageID, "AB12")
	tlvs.SetUint8(TagMessageState, 2)
	tlvs.Set(TagNetworkErrorCode, []byte{3, 0, 0x22})
	tlvs.SetUint16(TagSarMsgRefNum, 0x1234)
	tlvs.SetUint8(TagSarTotalSegments, 2)
	tlvs.SetUint8(TagSarSegmentSeqnum, 1)
	tlvs.Set(TagMessagePayload, []byte{0, 1, 2})
	cases := map[string]*PDU{
		"BindTransceiver": {ID: BindTransceiver, Seq: 1, SystemID: "sys", Password: "pw", SystemType: "SMS",
			InterfaceVersion: InterfaceVersion, AddrTON: 1, AddrNPI: 1, AddressRange: "44"},
		"BindTransmitter": {ID: BindTransmitter, Seq: 9, SystemID: "a", InterfaceVersion: InterfaceVersion},
		"BindReceiver":    {ID: BindReceiver, Seq: MaxSeq, SystemID: "a", InterfaceVersion: InterfaceVersion},
		"BindResp": {ID: BindTransceiverResp, Seq: 1, SystemID: "smsc",
			TLVs: TLVs{{Tag: TagSCInterfaceVersion, Value: []byte{0x34}}}},
		"SubmitSMNulOctets": {ID: SubmitSM, Seq: 3, Source: Address{1, 1, "4412"}, Dest: Address{1, 1, "4477"},
			ESMClass: 0x40, DataCoding: 0, ShortMessage: []byte{0x05, 0x00, 0x03, 0x2a, 0x02, 0x01, 0x00, 0x00, 'x'},
			ValidityPeriod: "250314103000000+"},
		"DeliverSMTLVs": {ID: DeliverSM, Seq: 4, ESMClass: 0x04, ShortMessage: []byte("id:1 stat:DELIVRD"), TLVs: tlvs},
		"SubmitSMResp":  {ID: SubmitSMResp, Seq: 5, MessageID: "0123ABC"},
		"DeliverSMResp": {ID: DeliverSMResp, Seq: 6},
		"EnquireLink":   {ID: EnquireLink, Seq: 7},
		"UnbindResp":    {ID: UnbindResp, Seq: 8},
		"GenericNack":   {ID: GenericNack, Status: StatusInvCmdID, Seq: 10},
		"Outbind":       {ID: Outbind, Seq: 11, SystemID: "s", Password: "p"},
	}
	for name, p := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b, err := p.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			got, err := Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, p) {
				t.Fatalf("decoded %+v\nwant    %+v", got, p)
			}
		})
	}
}

func TestDecodeHeaderOnlyErrorResponse(t *testing.T) {
	t.Parallel()
	for _, s := range []string{
		"00000010 80000004 00000058 00000007",    // no body at all
		"00000011 80000004 00000058 00000007 00", // a lone NUL
		"00000011 80000004 00000058 00000007 41", // a broken body: dropped
		"00000010 80000009 0000000e 00000007",    // bind refused
	} {
		p, err := Decode(unhex(t, s))
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if p.Seq != 7 || p.Status == StatusOK {
			t.Fatalf("%s: got %+v", s, p)
		}
	}
}

func TestDecodeSkipsUnknownTLVs(t *testing.T) {
	t.Parallel()
	p := &PDU{ID: DeliverSM, Seq: 1, ESMClass: 4}
	b, _ := p.MarshalBinary()
	b = append(b, 0x14, 0x01, 0x00, 0x02, 0xAA, 0xBB) // vendor tag
	b = append(b, 0x04, 0x27, 0x00, 0x01, 0x05)       // message_state 5
	b[3] = byte(len(b))
	got, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.TLVs) != 1 {
		t.Fatalf("TLVs %+v, want only message_state", got.TLVs)
	}
	if v, ok := got.TLVs.Uint8(TagMessageState); !ok || v != 5 {
		t.Fatalf("message_state %v %v", v, ok)
	}
}

func TestDecodeErrors(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		hex  string
		want error
	}{
		"ErrFramingShortLength": {"0000000f 00000015 00000000 00000001", ErrFraming},
		"ErrFramingHugeLength":  {"7fffffff 00000015 00000000 00000001", ErrFraming},
		"ErrFramingTruncated":   {"00000010 000000", ErrFraming},
		"ErrMalformedLength":    {"00000014 00000015 00000000 00000001", ErrMalformed},
		"ErrMalformedCString":   {"00000013 00000009 00000000 00000001 414243", ErrMalformed},
		"ErrMalformedShortMessageOverrun": {"00000023 00000005 00000000 00000001" +
			"00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 ff", ErrMalformed},
		"ErrMalformedTLVOverrun": {"00000027 00000005 00000000 00000001" +
			"00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 04 27 00 09", ErrMalformed},
		"ErrMalformedTLVTrailing": {"00000025 00000005 00000000 00000001" +
			"00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 04 27", ErrMalformed},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := unhex(t, c.hex)
			if _, err := Decode(b); !errors.Is(err, c.want) {
				t.Fatalf("err %v, want %v", err, c.want)
			}
		})
	}
}

func TestEncodeRefusesBadFields(t *testing.T) {
	t.Parallel()
	cases := map[string]*PDU{
		"PasswordTooLong":     {ID: BindTransceiver, SystemID: "s", Password: "123456789"},
		"SystemIDTooLong":     {ID: BindTransceiver, SystemID: strings.Repeat("s", 16)},
		"NulInAddress":        {ID: SubmitSM, Dest: Address{Addr: "12\x003"}},
		"ShortMessageTooLong": {ID: SubmitSM, ShortMessage: make([]byte, 255)},
		"ValidityNot16":       {ID: SubmitSM, ValidityPeriod: "2503141030"},
		"TLVTooLong":          {ID: SubmitSM, TLVs: TLVs{{Tag: TagMessagePayload, Value: make([]byte, 70000)}}},
	}
	for name, p := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b, err := p.AppendBinary([]byte("keep"))
			if err == nil {
				t.Fatal("encoded, want an error")
			}
			if string(b) != "keep" {
				t.Fatalf("buffer changed to %q", b)
			}
			if strings.Contains(err.Error(), "123456789") {
				t.Fatalf("error quotes the password: %v", err)
			}
		})
	}
}

func TestReadFrame(t *testing.T) {
	t.Parallel()
	one, _ := (&PDU{ID: EnquireLink, Seq: 1}).MarshalBinary()
	two, _ := (&PDU{ID: SubmitSMResp, Seq: 2, MessageID: "x"}).MarshalBinary()
	r := bufio.NewReader(bytes.NewReader(append(append([]byte{}, one...), two...)))
	var buf []byte
	for _, want := range [][]byte{one, two} {
		got, err := ReadFrame(r, buf)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("frame %x, want %x", got, want)
		}
		buf = got
	}
	if _, err := ReadFrame(r, buf); err != io.EOF {
		t.Fatalf("at end: %v, want EOF", err)
	}
	bad := bufio.NewReader(bytes.NewReader(unhex(t, "00000008 00000015")))
	if _, err := ReadFrame(bad, nil); !errors.Is(err, ErrFraming) {
		t.Fatalf("short length: %v, want ErrFraming", err)
	}
	cut := bufio.NewReader(bytes.NewReader(one[:10]))
	if _, err := ReadFrame(cut, nil); err != io.ErrUnexpectedEOF {
		t.Fatalf("cut frame: %v, want ErrUnexpectedEOF", err)
	}
}

func TestStatusString(t *testing.T) {
	t.Parallel()
	if got := StatusInvDstAdr.String(); got != "ESME_RINVDSTADR" {
		t.Fatalf("got %q", got)
	}
	if got := Status(0x401).String(); got != "0x00000401" {
		t.Fatalf("got %q", got)
	}
}
