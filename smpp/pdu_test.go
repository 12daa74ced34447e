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
	tlvs.Set(TagSarMsgRefNum, []byte{0x12, 0x34})
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
		"DataSMTLVs": {ID: DataSM, Seq: 12, Source: Address{1, 1, "447700900123"}, Dest: Address{5, 0, "verifyd"},
			ESMClass: 0x04, RegisteredDelivery: 0, DataCoding: 0, TLVs: tlvs},
		"DataSMResp":    {ID: DataSMResp, Seq: 13},
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

// TestDecodeDataSMReceipt decodes a data_sm receipt written out by hand from
// SMPP 3.4 §4.7.1: service_type, source and destination addresses,
// esm_class, registered_delivery, data_coding, then TLVs.
func TestDecodeDataSMReceipt(t *testing.T) {
	t.Parallel()
	b := unhex(t, "00000039 00000103 00000000 00000007"+
		"00 01 01 34343737303039303031323300"+ // service_type "", TON 1, NPI 1, "447700900123"
		"05 00 76657269667964 00"+ // TON 5, NPI 0, "verifyd"
		"04 00 00"+ // esm_class receipt, registered_delivery, data_coding
		"001e 0003 3741 00"+ // receipted_message_id "7A"
		"0427 0001 02") // message_state DELIVERED
	p, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := p.TLVs.CString(TagReceiptedMessageID)
	st, _ := p.TLVs.Uint8(TagMessageState)
	if p.ID != DataSM || p.Seq != 7 || p.Source.Addr != "447700900123" || p.Dest.Addr != "verifyd" ||
		p.Dest.TON != 5 || p.ESMClass != 0x04 || id != "7A" || st != 2 {
		t.Fatalf("decoded %+v", p)
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

// The command ids of SMPP.md §2, as the table gives them.
func TestCommandIDs(t *testing.T) {
	t.Parallel()
	for id, want := range map[CommandID]uint32{
		BindReceiver: 0x00000001, BindReceiverResp: 0x80000001,
		BindTransmitter: 0x00000002, BindTransmitterResp: 0x80000002,
		BindTransceiver: 0x00000009, BindTransceiverResp: 0x80000009,
		QuerySM: 0x00000003, QuerySMResp: 0x80000003,
		SubmitSM: 0x00000004, SubmitSMResp: 0x80000004,
		DeliverSM: 0x00000005, DeliverSMResp: 0x80000005,
		DataSM: 0x00000103, DataSMResp: 0x80000103,
		GenericNack: 0x80000000,
		Unbind:      0x00000006, UnbindResp: 0x80000006,
		ReplaceSM: 0x00000007, ReplaceSMResp: 0x80000007,
		CancelSM: 0x00000008, CancelSMResp: 0x80000008,
		Outbind:     0x0000000B,
		EnquireLink: 0x00000015, EnquireLinkResp: 0x80000015,
		SubmitMulti: 0x00000021, SubmitMultiResp: 0x80000021,
		AlertNotification: 0x00000102,
	} {
		if uint32(id) != want {
			t.Errorf("%s = %#08x, want %#08x", id, uint32(id), want)
		}
		if !id.IsResponse() && id != Outbind && id != AlertNotification && uint32(id.Response()) != want|0x80000000 {
			t.Errorf("%s.Response() = %#08x", id, uint32(id.Response()))
		}
	}
}

// The command_status values of SMPP.md §4.
func TestStatusValues(t *testing.T) {
	t.Parallel()
	want := map[string]uint32{
		"ESME_ROK": 0x00, "ESME_RINVMSGLEN": 0x01, "ESME_RINVCMDLEN": 0x02, "ESME_RINVCMDID": 0x03,
		"ESME_RINVBNDSTS": 0x04, "ESME_RALYBND": 0x05, "ESME_RINVPRTFLG": 0x06, "ESME_RINVREGDLVFLG": 0x07,
		"ESME_RSYSERR": 0x08, "ESME_RINVSRCADR": 0x0A, "ESME_RINVDSTADR": 0x0B, "ESME_RINVMSGID": 0x0C,
		"ESME_RBINDFAIL": 0x0D, "ESME_RINVPASWD": 0x0E, "ESME_RINVSYSID": 0x0F, "ESME_RCANCELFAIL": 0x11,
		"ESME_RREPLACEFAIL": 0x13, "ESME_RMSGQFUL": 0x14, "ESME_RINVSERTYP": 0x15, "ESME_RINVNUMDESTS": 0x33,
		"ESME_RINVDLNAME": 0x34, "ESME_RINVDESTFLAG": 0x40, "ESME_RINVSUBREP": 0x42, "ESME_RINVESMCLASS": 0x43,
		"ESME_RCNTSUBDL": 0x44, "ESME_RSUBMITFAIL": 0x45, "ESME_RINVSRCTON": 0x48, "ESME_RINVSRCNPI": 0x49,
		"ESME_RINVDSTTON": 0x50, "ESME_RINVDSTNPI": 0x51, "ESME_RINVSYSTYP": 0x53, "ESME_RINVREPFLAG": 0x54,
		"ESME_RINVNUMMSGS": 0x55, "ESME_RTHROTTLED": 0x58, "ESME_RINVSCHED": 0x61, "ESME_RINVEXPIRY": 0x62,
		"ESME_RINVDFTMSGID": 0x63, "ESME_RX_T_APPN": 0x64, "ESME_RX_P_APPN": 0x65, "ESME_RX_R_APPN": 0x66,
		"ESME_RQUERYFAIL": 0x67, "ESME_RINVOPTPARSTREAM": 0xC0, "ESME_ROPTPARNOTALLWD": 0xC1,
		"ESME_RINVPARLEN": 0xC2, "ESME_RMISSINGOPTPARAM": 0xC3, "ESME_RINVOPTPARAMVAL": 0xC4,
		"ESME_RDELIVERYFAILURE": 0xFE, "ESME_RUNKNOWNERR": 0xFF,
	}
	if len(statusNames) != len(want) {
		t.Errorf("%d named statuses, want %d", len(statusNames), len(want))
	}
	for name, v := range want {
		if got := Status(v).String(); got != name {
			t.Errorf("Status(%#02x) = %s, want %s", v, got, name)
		}
	}
}

// The TLV values of SMPP.md §6 and the octets of its examples.
func TestTLVTagsAndExamples(t *testing.T) {
	t.Parallel()
	for tag, want := range map[Tag]uint16{
		TagReceiptedMessageID: 0x001E, TagMessageState: 0x0427, TagNetworkErrorCode: 0x0423,
		TagSarMsgRefNum: 0x020C, TagSarTotalSegments: 0x020E, TagSarSegmentSeqnum: 0x020F,
		TagMessagePayload: 0x0424, TagUserMessageReference: 0x0204, TagSCInterfaceVersion: 0x0210,
		TagAdditionalStatusInfoText: 0x001D, TagSourcePort: 0x020A, TagDestinationPort: 0x020B,
		TagDeliveryFailureReason: 0x0425,
	} {
		if uint16(tag) != want {
			t.Errorf("tag %#04x, want %#04x", uint16(tag), want)
		}
	}
	// message_state = 2 is 04 27 00 01 02; network_error_code 03 00 22 is
	// type 3, code 0x0022.
	var ts TLVs
	ts.SetUint8(TagMessageState, 2)
	ts.Set(TagNetworkErrorCode, []byte{0x03, 0x00, 0x22})
	b, err := (&PDU{ID: DeliverSM, Seq: 1}).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	withTLVs, err := (&PDU{ID: DeliverSM, Seq: 1, TLVs: ts}).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := withTLVs[len(b):], unhex(t, "0427 0001 02  0423 0003 030022"); !bytes.Equal(got, want) {
		t.Fatalf("TLVs encoded %x, want %x", got, want)
	}
	p, err := Decode(withTLVs)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := p.TLVs.Get(TagNetworkErrorCode); !ok || !bytes.Equal(v, []byte{0x03, 0x00, 0x22}) {
		t.Fatalf("network_error_code % x %v", v, ok)
	}
}

// SMPP.md §3: deliver_sm_resp carries a NULL message_id, 17 octets in all;
// the header-only PDUs are 16.
func TestResponseSizes(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		p    *PDU
		want string
	}{
		"DeliverSMResp":     {&PDU{ID: DeliverSMResp, Seq: 3}, "00000011 80000005 00000000 00000003 00"},
		"DeliverSMRespXTAp": {&PDU{ID: DeliverSMResp, Status: StatusXTAppn, Seq: 4}, "00000011 80000005 00000064 00000004 00"},
		"EnquireLink":       {&PDU{ID: EnquireLink, Seq: 1}, "00000010 00000015 00000000 00000001"},
		"EnquireLinkResp":   {&PDU{ID: EnquireLinkResp, Seq: 1}, "00000010 80000015 00000000 00000001"},
		"Unbind":            {&PDU{ID: Unbind, Seq: 5}, "00000010 00000006 00000000 00000005"},
		"UnbindResp":        {&PDU{ID: UnbindResp, Seq: 5}, "00000010 80000006 00000000 00000005"},
		"GenericNack":       {&PDU{ID: GenericNack, Status: StatusInvCmdID, Seq: 6}, "00000010 80000000 00000003 00000006"},
		"BindTransceiver": {&PDU{ID: BindTransceiver, Seq: 1, SystemID: "verifyd", Password: "secret1", InterfaceVersion: InterfaceVersion},
			"00000025 00000009 00000000 00000001 76657269667964 00 73656372657431 00 00 34 00 00 00"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := tc.p.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if want := unhex(t, tc.want); !bytes.Equal(got, want) {
				t.Fatalf("encoded %x, want %x", got, want)
			}
		})
	}
}

// SMPP.md §11.7: a response is taken with any trailing octets up to
// command_length. After the fields a response must carry (bind_*_resp's
// system_id, data_sm_resp's message_id) some SMSCs leave a stray octet or a
// second NUL; the TLVs that may follow there only inform, so octets that do
// not make a TLV are dropped with them instead of failing the response, and
// with it the bind, at every attempt.
func TestDecodeResponseWithTrailingOctets(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		hex      string
		systemID string
		msgID    string
		tlvs     int // the TLVs read before the stray octets
	}{
		"BindRespSecondNUL":          {"00000016 80000009 00000000 00000001 736d736300 00", "smsc", "", 0},
		"BindRespTLVThenStrayOctets": {"0000001d 80000002 00000000 00000001 736d736300 0210000134 0000 00", "smsc", "", 1},
		"DataSMRespStrayOctet":       {"00000014 80000103 00000000 00000001 373700 0a", "", "77", 0},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p, err := Decode(unhex(t, tc.hex))
			if err != nil {
				t.Fatal(err)
			}
			if p.Status != StatusOK || p.SystemID != tc.systemID || p.MessageID != tc.msgID || len(p.TLVs) != tc.tlvs {
				t.Fatalf("got %+v", p)
			}
		})
	}
}
