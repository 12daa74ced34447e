package gsm

import "fmt"

// Charset is the character set an SMSC reads data_coding 0, the "SMSC
// default alphabet", in. SMPP leaves that to the SMSC: most read GSM 03.38
// unpacked, but some (US aggregators among them) read ASCII or Latin-1, and
// a text written for one arrives garbled by the others ('@' is 0x00 in GSM
// 03.38 and 0x40 in ASCII, '$' 0x02 and 0x24). Whatever the charset, a text
// it cannot hold goes out in UCS-2, data_coding 8, as Encode writes it.
//
// Charset's methods are the package's functions for an SMSC that reads
// data_coding 0 in that charset; on CharsetGSM they are the package's
// functions themselves. A value other than the three constants acts as
// CharsetGSM.
type Charset int

// The charsets an SMSC reads data_coding 0 in.
const (
	// CharsetGSM is GSM 03.38 unpacked, one septet per octet (the
	// default): see Encode.
	CharsetGSM Charset = iota
	// CharsetASCII is ASCII octets. The SMSC turns them into GSM-7 for the
	// air, so a text goes out so only when every character is printable
	// ASCII, CR or LF and has a place in GSM 03.38 ('`' has none), and it
	// is sized in septets as on the air: 160 in one SMS, 153 per part, an
	// extension character ('{', '}', '[', ']', '~', '\\', '|', '^')
	// counting two.
	CharsetASCII
	// CharsetLatin1 is ISO 8859-1 octets, one per character: a text goes
	// out so when every character is a graphic character of ISO 8859-1, CR
	// or LF. It is sized as 8-bit data, 140 octets in one SMS and 134 per
	// part, since the SMSC may send it on that way.
	CharsetLatin1
)

// Capacities of one SMS of 8-bit data (CharsetLatin1), in octets: a part of
// a long text gives up 6 to its concatenation header.
const (
	Latin1Single = 140
	Latin1Part   = 134
)

// ParseCharset reads a charset by its name: gsm, ascii or latin1.
func ParseCharset(name string) (Charset, error) {
	for _, cs := range []Charset{CharsetGSM, CharsetASCII, CharsetLatin1} {
		if name == cs.String() {
			return cs, nil
		}
	}
	return 0, fmt.Errorf("gsm: unknown charset %q, want gsm, ascii or latin1", name)
}

// String is the charset's name, as ParseCharset reads it.
func (cs Charset) String() string {
	switch cs {
	case CharsetGSM:
		return "gsm"
	case CharsetASCII:
		return "ascii"
	case CharsetLatin1:
		return "latin1"
	}
	return fmt.Sprintf("Charset(%d)", int(cs))
}

// octets says whether cs writes data_coding 0 one octet per character
// (ASCII, Latin-1) rather than as GSM 03.38.
func (cs Charset) octets() bool {
	return cs == CharsetASCII || cs == CharsetLatin1
}

// weight is what character r costs in data_coding 0 under cs (ASCII or
// Latin-1): septets on the air for ASCII, octets for Latin-1; 0 when cs
// cannot hold r.
func (cs Charset) weight(r rune) int {
	if cs == CharsetLatin1 {
		if r == '\n' || r == '\r' || r >= 0x20 && r <= 0x7E || r >= 0xA0 && r <= 0xFF {
			return 1
		}
		return 0
	}
	if r != '\n' && r != '\r' && (r < 0x20 || r > 0x7E) {
		return 0
	}
	if _, ok := basicSeptet[r]; ok {
		return 1
	}
	if _, ok := extensionSeptet[r]; ok {
		return 2
	}
	return 0
}

// Analyze returns the coding text is sent in and its length in the units
// it is sized in: for ASCII, septets on the air (an extension character
// counts two); for Latin-1, octets; for UCS-2, UTF-16 units. CharsetGSM
// gives what the package's Analyze does.
func (cs Charset) Analyze(text string) (Coding, int) {
	if !cs.octets() {
		return Analyze(text)
	}
	n := 0
	for _, r := range text {
		w := cs.weight(r)
		if w == 0 {
			return UCS2, ucs2Len(text)
		}
		n += w
	}
	return GSM7, n
}

// Encode returns text in the coding Analyze picks. Under CharsetASCII and
// CharsetLatin1, GSM7 means data_coding 0 holding the text's ASCII or
// Latin-1 octets, one per character; UCS-2 is big-endian as ever.
// CharsetGSM gives what the package's Encode does.
func (cs Charset) Encode(text string) (Coding, []byte) {
	if !cs.octets() {
		return Encode(text)
	}
	c, n := cs.Analyze(text)
	if c == UCS2 {
		return UCS2, appendUCS2(make([]byte, 0, 2*n), text)
	}
	b := make([]byte, 0, len(text))
	for _, r := range text {
		b = append(b, byte(r)) // weight said r <= 0xFF
	}
	return GSM7, b
}

// Split returns text encoded as Encode does, cut into the parts of a
// concatenated SMS: one part when it fits a single SMS, else parts of at
// most 153 septets (ASCII, counted as on the air, so an extension
// character is never the 154th), 134 octets (Latin-1) or 67 UTF-16 units
// (UCS-2, never cutting a surrogate pair). CharsetGSM gives what the
// package's Split does. The caller adds the concatenation header.
func (cs Charset) Split(text string) (Coding, [][]byte) {
	if !cs.octets() {
		return Split(text)
	}
	c, b := cs.Encode(text)
	single := cs.fits(c, b)
	var parts [][]byte
	for start := 0; ; {
		end := len(b)
		if !single {
			end = cs.cut(c, b, start)
		}
		// The capacity stops at end, so appending to one part cannot
		// overwrite the next.
		parts = append(parts, b[start:end:end])
		if end == len(b) {
			return c, parts
		}
		start = end
	}
}

// Segments returns how many SMS text takes under cs.
func (cs Charset) Segments(text string) int {
	if !cs.octets() {
		return Segments(text)
	}
	_, parts := cs.Split(text)
	return len(parts)
}

// fits says whether b, text encoded by cs (ASCII or Latin-1), fits in a
// single SMS.
func (cs Charset) fits(c Coding, b []byte) bool {
	switch {
	case c == UCS2:
		return len(b) <= 2*UCS2Single
	case cs == CharsetLatin1:
		return len(b) <= Latin1Single
	}
	septets := 0
	for _, o := range b {
		septets += cs.weight(rune(o))
	}
	return septets <= GSM7Single
}

// cut returns where the part of b (text encoded by cs, ASCII or Latin-1,
// too long for a single SMS) that begins at start ends.
func (cs Charset) cut(c Coding, b []byte, start int) int {
	switch {
	case c == UCS2:
		return cut(UCS2, b, start)
	case cs == CharsetLatin1:
		return min(start+Latin1Part, len(b))
	}
	n := 0
	for i := start; i < len(b); i++ {
		n += cs.weight(rune(b[i]))
		if n > GSM7Part {
			return i
		}
	}
	return len(b)
}

// Decode is the inverse of Encode under cs. It refuses (ErrInvalid) what
// Encode never writes, in data_coding 0 an octet that is not one of the
// charset's characters listed on CharsetASCII and CharsetLatin1 (under
// ASCII, '`' and the control characters but CR and LF). CharsetGSM gives
// what the package's Decode does.
func (cs Charset) Decode(c Coding, b []byte) (string, error) {
	if !cs.octets() || c != GSM7 {
		return Decode(c, b)
	}
	out := make([]rune, 0, len(b))
	for i, o := range b {
		if cs.weight(rune(o)) == 0 {
			return "", fmt.Errorf("%w: octet %d is 0x%02X, not a character of charset %s", ErrInvalid, i, o, cs)
		}
		out = append(out, rune(o))
	}
	return string(out), nil
}
