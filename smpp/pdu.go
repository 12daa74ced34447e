// Package smpp is an SMPP 3.4 ESME (client): a PDU codec, a windowed session
// with keepalive, reconnect and throttling, and a Client that implements
// verifyd.Sender over one or more binds and passes delivery receipts to a
// verifyd.ReceiptRecorder.
//
// It is written here rather than imported because no Go SMPP library is
// served by the module proxy; it covers what an OTP sender needs (binds,
// submit_sm, deliver_sm receipts, enquire_link, unbind, generic_nack) and
// nothing else.
package smpp

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// CommandID identifies the type of a PDU. A response's id is its request's id
// with bit 31 set.
type CommandID uint32

// The command ids this package knows by name.
const (
	GenericNack         CommandID = 0x80000000
	BindReceiver        CommandID = 0x00000001
	BindReceiverResp    CommandID = 0x80000001
	BindTransmitter     CommandID = 0x00000002
	BindTransmitterResp CommandID = 0x80000002
	QuerySM             CommandID = 0x00000003
	QuerySMResp         CommandID = 0x80000003
	SubmitSM            CommandID = 0x00000004
	SubmitSMResp        CommandID = 0x80000004
	DeliverSM           CommandID = 0x00000005
	DeliverSMResp       CommandID = 0x80000005
	Unbind              CommandID = 0x00000006
	UnbindResp          CommandID = 0x80000006
	ReplaceSM           CommandID = 0x00000007
	ReplaceSMResp       CommandID = 0x80000007
	CancelSM            CommandID = 0x00000008
	CancelSMResp        CommandID = 0x80000008
	BindTransceiver     CommandID = 0x00000009
	BindTransceiverResp CommandID = 0x80000009
	Outbind             CommandID = 0x0000000B
	EnquireLink         CommandID = 0x00000015
	EnquireLinkResp     CommandID = 0x80000015
	SubmitMulti         CommandID = 0x00000021
	SubmitMultiResp     CommandID = 0x80000021
	AlertNotification   CommandID = 0x00000102
	DataSM              CommandID = 0x00000103
	DataSMResp          CommandID = 0x80000103
)

// IsResponse reports whether id is a response (bit 31 set).
func (id CommandID) IsResponse() bool { return id&0x80000000 != 0 }

// Response returns the id of the response to a request with this id.
func (id CommandID) Response() CommandID { return id | 0x80000000 }

var commandNames = map[CommandID]string{
	GenericNack:         "generic_nack",
	BindReceiver:        "bind_receiver",
	BindReceiverResp:    "bind_receiver_resp",
	BindTransmitter:     "bind_transmitter",
	BindTransmitterResp: "bind_transmitter_resp",
	QuerySM:             "query_sm",
	QuerySMResp:         "query_sm_resp",
	SubmitSM:            "submit_sm",
	SubmitSMResp:        "submit_sm_resp",
	DeliverSM:           "deliver_sm",
	DeliverSMResp:       "deliver_sm_resp",
	Unbind:              "unbind",
	UnbindResp:          "unbind_resp",
	ReplaceSM:           "replace_sm",
	ReplaceSMResp:       "replace_sm_resp",
	CancelSM:            "cancel_sm",
	CancelSMResp:        "cancel_sm_resp",
	BindTransceiver:     "bind_transceiver",
	BindTransceiverResp: "bind_transceiver_resp",
	Outbind:             "outbind",
	EnquireLink:         "enquire_link",
	EnquireLinkResp:     "enquire_link_resp",
	SubmitMulti:         "submit_multi",
	SubmitMultiResp:     "submit_multi_resp",
	AlertNotification:   "alert_notification",
	DataSM:              "data_sm",
	DataSMResp:          "data_sm_resp",
}

// String returns the specification's name of id, or its hex value.
func (id CommandID) String() string {
	if n, ok := commandNames[id]; ok {
		return n
	}
	return fmt.Sprintf("command_id(0x%08X)", uint32(id))
}

// Wire limits.
const (
	// HeaderLen is the size of the PDU header, the smallest valid PDU.
	HeaderLen = 16
	// MaxPDULen caps command_length. A larger value means framing is lost
	// (or a hostile peer): the session is closed rather than buffering it.
	// It leaves room for a full 64 KiB message_payload TLV.
	MaxPDULen = 66 * 1024
	// InterfaceVersion is the SMPP version sent in binds: 3.4.
	InterfaceVersion = 0x34
	// MaxSeq is the largest sequence number; the next one is 1 again.
	MaxSeq = 0x7FFFFFFF
	// MaxShortMessage is the largest short_message (sm_length is one octet
	// and the specification reserves 255).
	MaxShortMessage = 254
)

// Errors of the codec. Decoding errors wrap ErrMalformed; framing errors (a
// command_length that cannot be trusted) wrap ErrFraming and mean the stream
// must be closed.
var (
	ErrMalformed = errors.New("smpp: malformed PDU")
	ErrFraming   = errors.New("smpp: framing lost")
)

// Address is a TON/NPI-qualified address, as submit_sm and deliver_sm carry
// them.
type Address struct {
	TON  byte
	NPI  byte
	Addr string
}

// PDU is one SMPP message. It is a single flat struct rather than a type per
// command so that the session can decode into one reused value; which fields
// are meaningful depends on ID:
//
//   - bind_transmitter, bind_receiver, bind_transceiver: SystemID, Password,
//     SystemType, InterfaceVersion, AddrTON, AddrNPI, AddressRange.
//   - bind_*_resp: SystemID, TLVs (sc_interface_version).
//   - outbind: SystemID, Password.
//   - submit_sm, deliver_sm: ServiceType through ShortMessage, TLVs.
//   - data_sm: ServiceType, Source, Dest, ESMClass, RegisteredDelivery,
//     DataCoding, TLVs (the text, if any, is the message_payload TLV).
//   - submit_sm_resp, deliver_sm_resp, data_sm_resp: MessageID (data_sm_resp
//     also TLVs).
//   - enquire_link, unbind, generic_nack and their responses: header only.
//
// Other commands are decoded as header only; their body is skipped.
type PDU struct {
	ID     CommandID
	Status Status
	Seq    uint32

	SystemID         string
	Password         string
	SystemType       string
	InterfaceVersion byte
	AddrTON          byte
	AddrNPI          byte
	AddressRange     string

	ServiceType          string
	Source               Address
	Dest                 Address
	ESMClass             byte
	ProtocolID           byte
	PriorityFlag         byte
	ScheduleDeliveryTime string
	ValidityPeriod       string
	RegisteredDelivery   byte
	ReplaceIfPresent     byte
	DataCoding           byte
	SMDefaultMsgID       byte
	// ShortMessage is an octet string: 0x00 (GSM '@') is a valid octet.
	ShortMessage []byte

	MessageID string

	// TLVs holds the optional parameters this package knows, in wire order;
	// unknown tags are skipped when decoding.
	TLVs TLVs
}

// bodyKind says which mandatory fields a command carries.
type bodyKind int

const (
	bodyNone bodyKind = iota
	bodyBind
	bodyBindResp
	bodyOutbind
	bodySM
	bodyDataSM
	bodyMessageID
)

func kindOf(id CommandID) bodyKind {
	switch id {
	case BindReceiver, BindTransmitter, BindTransceiver:
		return bodyBind
	case BindReceiverResp, BindTransmitterResp, BindTransceiverResp:
		return bodyBindResp
	case Outbind:
		return bodyOutbind
	case SubmitSM, DeliverSM:
		return bodySM
	case DataSM:
		return bodyDataSM
	case SubmitSMResp, DeliverSMResp, DataSMResp:
		return bodyMessageID
	}
	return bodyNone
}

// hasTLVs reports whether TLVs follow the mandatory fields of the command.
func hasTLVs(k bodyKind, id CommandID) bool {
	return k == bodySM || k == bodyDataSM || k == bodyBindResp || id == DataSMResp
}

// Decode decodes one whole PDU (command_length included). The result does not
// alias b. Malformed input returns an error wrapping ErrMalformed or
// ErrFraming; it never panics.
func Decode(b []byte) (*PDU, error) {
	p := new(PDU)
	if err := p.decode(b); err != nil {
		return nil, err
	}
	return p, nil
}

// decode fills p from b, resetting every field first so a PDU value can be
// reused by the reader.
func (p *PDU) decode(b []byte) error {
	*p = PDU{}
	if len(b) < HeaderLen {
		return fmt.Errorf("%w: %d octets, shorter than a header", ErrFraming, len(b))
	}
	n := binary.BigEndian.Uint32(b)
	if n < HeaderLen || n > MaxPDULen {
		return fmt.Errorf("%w: command_length %d", ErrFraming, n)
	}
	if int(n) != len(b) {
		return fmt.Errorf("%w: command_length %d but %d octets", ErrMalformed, n, len(b))
	}
	p.ID = CommandID(binary.BigEndian.Uint32(b[4:]))
	p.Status = Status(binary.BigEndian.Uint32(b[8:]))
	p.Seq = binary.BigEndian.Uint32(b[12:])

	body := b[HeaderLen:]
	if p.ID.IsResponse() && (len(body) == 0 || p.Status != StatusOK) {
		// Errors may come without a body, or with a partial one (SMPP.md
		// §11.7): take what decodes and drop the rest rather than lose the
		// status, which is all the caller needs.
		if len(body) > 0 {
			id, st, seq := p.ID, p.Status, p.Seq
			if p.decodeBody(body) != nil {
				*p = PDU{ID: id, Status: st, Seq: seq}
			}
		}
		return nil
	}
	return p.decodeBody(body)
}

func (p *PDU) decodeBody(body []byte) error {
	d := decoder{b: body}
	k := kindOf(p.ID)
	switch k {
	case bodyBind:
		p.SystemID = d.cstring()
		p.Password = d.cstring()
		p.SystemType = d.cstring()
		p.InterfaceVersion = d.octet()
		p.AddrTON = d.octet()
		p.AddrNPI = d.octet()
		p.AddressRange = d.cstring()
	case bodyBindResp:
		p.SystemID = d.cstring()
	case bodyOutbind:
		p.SystemID = d.cstring()
		p.Password = d.cstring()
	case bodySM:
		p.decodeHead(&d)
		p.ProtocolID = d.octet()
		p.PriorityFlag = d.octet()
		p.ScheduleDeliveryTime = d.cstring()
		p.ValidityPeriod = d.cstring()
		p.RegisteredDelivery = d.octet()
		p.ReplaceIfPresent = d.octet()
		p.DataCoding = d.octet()
		p.SMDefaultMsgID = d.octet()
		smLen := d.octet()
		if sm := d.octets(int(smLen)); sm != nil {
			p.ShortMessage = append([]byte(nil), sm...)
		}
	case bodyDataSM:
		// Some SMSCs send receipts as data_sm (SMPP 3.4 §4.7): the same
		// addresses and esm_class as deliver_sm, the rest in TLVs.
		p.decodeHead(&d)
		p.RegisteredDelivery = d.octet()
		p.DataCoding = d.octet()
	case bodyMessageID:
		p.MessageID = d.cstring()
	default:
		// Header-only commands, and commands this package does not
		// decode: any body is ignored.
		return nil
	}
	if d.err != nil {
		return fmt.Errorf("%w: %s: %v", ErrMalformed, p.ID, d.err)
	}
	if !hasTLVs(k, p.ID) {
		return nil
	}
	tlvs, err := decodeTLVs(body[d.off:])
	if err != nil && !p.ID.IsResponse() {
		return fmt.Errorf("%w: %s: %v", ErrMalformed, p.ID, err)
	}
	// A response keeps the TLVs that parsed: past its mandatory fields it
	// is taken with any trailing octets (SMPP.md §11.7), and what it
	// carries there only informs.
	p.TLVs = tlvs
	return nil
}

// decodeHead reads the fields submit_sm, deliver_sm and data_sm begin
// with: service_type, the source and destination addresses, esm_class.
func (p *PDU) decodeHead(d *decoder) {
	p.ServiceType = d.cstring()
	p.Source.TON = d.octet()
	p.Source.NPI = d.octet()
	p.Source.Addr = d.cstring()
	p.Dest.TON = d.octet()
	p.Dest.NPI = d.octet()
	p.Dest.Addr = d.cstring()
	p.ESMClass = d.octet()
}

// decoder reads fields off a body with a sticky error, so the field lists
// above read like the specification's tables.
type decoder struct {
	b   []byte
	off int
	err error
}

var (
	errShort       = errors.New("body ends inside a field")
	errUnterminate = errors.New("C-octet string without its NUL")
)

func (d *decoder) octet() byte {
	if d.err != nil {
		return 0
	}
	if d.off >= len(d.b) {
		d.err = errShort
		return 0
	}
	v := d.b[d.off]
	d.off++
	return v
}

func (d *decoder) octets(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n > len(d.b)-d.off {
		d.err = errShort
		return nil
	}
	v := d.b[d.off : d.off+n]
	d.off += n
	return v
}

func (d *decoder) cstring() string {
	if d.err != nil {
		return ""
	}
	for i := d.off; i < len(d.b); i++ {
		if d.b[i] == 0 {
			s := string(d.b[d.off:i])
			d.off = i + 1
			return s
		}
	}
	d.err = errUnterminate
	return ""
}

// Field size limits, NUL included, from the specification's tables.
const (
	maxSystemID     = 16
	maxPassword     = 9
	maxSystemType   = 13
	maxAddressRange = 41
	maxServiceType  = 6
	maxAddr         = 21
	maxMessageID    = 65
)

// MarshalBinary encodes p; see AppendBinary.
func (p *PDU) MarshalBinary() ([]byte, error) { return p.AppendBinary(nil) }

// AppendBinary appends the encoding of p to b, command_length included. It
// refuses fields the specification does not allow (a C-octet string that is
// too long or holds a NUL, a time field that is neither empty nor 16
// characters, a short_message over 254 octets), so a bad PDU fails here and
// not at the SMSC.
func (p *PDU) AppendBinary(b []byte) ([]byte, error) {
	start := len(b)
	b = binary.BigEndian.AppendUint32(b, 0) // command_length, patched below
	b = binary.BigEndian.AppendUint32(b, uint32(p.ID))
	b = binary.BigEndian.AppendUint32(b, uint32(p.Status))
	b = binary.BigEndian.AppendUint32(b, p.Seq)
	e := encoder{b: b}
	k := kindOf(p.ID)
	switch k {
	case bodyBind:
		e.cstring("system_id", p.SystemID, maxSystemID)
		e.cstring("password", p.Password, maxPassword)
		e.cstring("system_type", p.SystemType, maxSystemType)
		e.b = append(e.b, p.InterfaceVersion, p.AddrTON, p.AddrNPI)
		e.cstring("address_range", p.AddressRange, maxAddressRange)
	case bodyBindResp:
		e.cstring("system_id", p.SystemID, maxSystemID)
	case bodyOutbind:
		e.cstring("system_id", p.SystemID, maxSystemID)
		e.cstring("password", p.Password, maxPassword)
	case bodySM:
		p.encodeHead(&e)
		e.b = append(e.b, p.ProtocolID, p.PriorityFlag)
		e.timeField("schedule_delivery_time", p.ScheduleDeliveryTime)
		e.timeField("validity_period", p.ValidityPeriod)
		e.b = append(e.b, p.RegisteredDelivery, p.ReplaceIfPresent, p.DataCoding, p.SMDefaultMsgID)
		if len(p.ShortMessage) > MaxShortMessage {
			e.fail("short_message of %d octets, more than %d", len(p.ShortMessage), MaxShortMessage)
		}
		e.b = append(e.b, byte(len(p.ShortMessage)))
		e.b = append(e.b, p.ShortMessage...)
	case bodyDataSM:
		p.encodeHead(&e)
		e.b = append(e.b, p.RegisteredDelivery, p.DataCoding)
	case bodyMessageID:
		e.cstring("message_id", p.MessageID, maxMessageID)
	}
	if hasTLVs(k, p.ID) {
		for _, t := range p.TLVs {
			if len(t.Value) > 0xFFFF {
				e.fail("TLV 0x%04X of %d octets", uint16(t.Tag), len(t.Value))
				break
			}
			e.b = binary.BigEndian.AppendUint16(e.b, uint16(t.Tag))
			e.b = binary.BigEndian.AppendUint16(e.b, uint16(len(t.Value)))
			e.b = append(e.b, t.Value...)
		}
	}
	if e.err != nil {
		return b[:start], e.err
	}
	n := len(e.b) - start
	if n > MaxPDULen {
		return b[:start], fmt.Errorf("smpp: encode %s: %d octets, more than %d", p.ID, n, MaxPDULen)
	}
	binary.BigEndian.PutUint32(e.b[start:], uint32(n))
	return e.b, nil
}

// encodeHead writes what decodeHead reads.
func (p *PDU) encodeHead(e *encoder) {
	e.cstring("service_type", p.ServiceType, maxServiceType)
	e.b = append(e.b, p.Source.TON, p.Source.NPI)
	e.cstring("source_addr", p.Source.Addr, maxAddr)
	e.b = append(e.b, p.Dest.TON, p.Dest.NPI)
	e.cstring("destination_addr", p.Dest.Addr, maxAddr)
	e.b = append(e.b, p.ESMClass)
}

type encoder struct {
	b   []byte
	err error
}

func (e *encoder) fail(format string, args ...any) {
	if e.err == nil {
		e.err = fmt.Errorf("smpp: encode: "+format, args...)
	}
}

func (e *encoder) cstring(name, s string, max int) {
	if len(s) >= max {
		// The value is not quoted: the field may be the password.
		e.fail("%s of %d characters, more than %d", name, len(s), max-1)
		return
	}
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			e.fail("%s holds a NUL", name)
			return
		}
	}
	e.b = append(e.b, s...)
	e.b = append(e.b, 0)
}

func (e *encoder) timeField(name, s string) {
	if s != "" && len(s) != 16 {
		e.fail("%s %q is not 16 characters", name, s)
		return
	}
	e.cstring(name, s, 17)
}

// ReadFrame reads one PDU from r into buf (grown as needed) and returns it,
// command_length included. A command_length below 16 or above MaxPDULen
// returns an error wrapping ErrFraming: the stream can no longer be trusted
// and must be closed.
func ReadFrame(r *bufio.Reader, buf []byte) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return buf[:0], err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n < HeaderLen || n > MaxPDULen {
		return buf[:0], fmt.Errorf("%w: command_length %d", ErrFraming, n)
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n, max(int(n), 512))
	}
	buf = buf[:n]
	copy(buf, hdr[:])
	if _, err := io.ReadFull(r, buf[4:]); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return buf[:0], err
	}
	return buf, nil
}
