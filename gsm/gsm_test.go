package gsm

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// The basic table as 3GPP TS 23.038 prints it, row by row from septet 0x00,
// with ESC (0x1B) as '\x1b'. Kept as one string here so the test does not
// share the package's table literal.
const basicTable = "@£$¥èéùìòÇ\nØø\rÅå" + "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ" + " !\"#¤%&'()*+,-./" + "0123456789:;<=>?" +
	"¡ABCDEFGHIJKLMNO" + "PQRSTUVWXYZÄÖÑÜ§" + "¿abcdefghijklmno" + "pqrstuvwxyzäöñüà"

func TestBasicTableRoundTrips(t *testing.T) {
	t.Parallel()
	runes := []rune(basicTable)
	if len(runes) != 128 {
		t.Fatalf("test table has %d characters", len(runes))
	}
	for septet, r := range runes {
		if septet == esc {
			continue
		}
		c, b := Encode(string(r))
		if c != GSM7 || !bytes.Equal(b, []byte{byte(septet)}) {
			t.Errorf("Encode(%q) = %v % X, want GSM7 %02X", r, c, b, septet)
		}
		got, err := Decode(GSM7, []byte{byte(septet)})
		if err != nil || got != string(r) {
			t.Errorf("Decode(%02X) = %q, %v; want %q", septet, got, err, r)
		}
	}
	// The whole table at once, as one text.
	all := strings.Replace(basicTable, "\x1b", "", 1)
	c, b := Encode(all)
	if c != GSM7 || len(b) != 127 {
		t.Fatalf("Encode(basic table) = %v, %d octets", c, len(b))
	}
	if got, err := Decode(c, b); err != nil || got != all {
		t.Fatalf("Decode(Encode(basic table)) = %q, %v", got, err)
	}
}

func TestExtensionTableRoundTrips(t *testing.T) {
	t.Parallel()
	want := map[rune]byte{'\f': 0x0A, '^': 0x14, '{': 0x28, '}': 0x29, '\\': 0x2F, '[': 0x3C, '~': 0x3D, ']': 0x3E, '|': 0x40, '€': 0x65}
	for r, s := range want {
		c, b := Encode(string(r))
		if c != GSM7 || !bytes.Equal(b, []byte{0x1B, s}) {
			t.Errorf("Encode(%q) = %v % X, want GSM7 1B %02X", r, c, b, s)
		}
		if _, n := Analyze(string(r)); n != 2 {
			t.Errorf("Analyze(%q) counts %d septets, want 2", r, n)
		}
		if got, err := Decode(GSM7, []byte{0x1B, s}); err != nil || got != string(r) {
			t.Errorf("Decode(1B %02X) = %q, %v", s, got, err)
		}
	}
	if len(extension) != len(want) || len(extensionSeptet) != len(want) {
		t.Fatalf("extension tables have %d and %d entries, want %d", len(extension), len(extensionSeptet), len(want))
	}
}

func TestEncode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, text string
		coding     Coding
		want       []byte
	}{
		{"AtIsZero", "@", GSM7, []byte{0x00}},
		{"DollarIs02", "$", GSM7, []byte{0x02}},
		{"CurrencySignIs24", "¤", GSM7, []byte{0x24}},
		{"EuroIsEscaped", "€", GSM7, []byte{0x1B, 0x65}},
		{"Code", "Your code is 123456", GSM7, []byte("Your code is 123456")},
		{"Newline", "a\nb", GSM7, []byte{'a', 0x0A, 'b'}},
		{"Empty", "", GSM7, []byte{}},
		{"BacktickIsNotGSM", "`", UCS2, []byte{0x00, 0x60}},
		{"Cyrillic", "Код", UCS2, []byte{0x04, 0x1A, 0x04, 0x3E, 0x04, 0x34}},
		{"LowercaseCCedillaIsNotGSM", "ç", UCS2, []byte{0x00, 0xE7}},
		{"EmojiIsASurrogatePair", "😀", UCS2, []byte{0xD8, 0x3D, 0xDE, 0x00}},
		{"OneUCS2CharacterTurnsAll", "€1 😀", UCS2, []byte{0x20, 0xAC, 0x00, 0x31, 0x00, 0x20, 0xD8, 0x3D, 0xDE, 0x00}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, b := Encode(tt.text)
			if c != tt.coding || !bytes.Equal(b, tt.want) {
				t.Fatalf("Encode(%q) = %v % X, want %v % X", tt.text, c, b, tt.coding, tt.want)
			}
			got, err := Decode(c, b)
			if err != nil || got != tt.text {
				t.Fatalf("Decode(Encode(%q)) = %q, %v", tt.text, got, err)
			}
		})
	}
}

func TestAnalyze(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, text string
		coding     Coding
		n          int
	}{
		{"Empty", "", GSM7, 0},
		{"ASCII", "Your verification code is 123456", GSM7, 32},
		{"ExtensionCountsTwo", "{€}", GSM7, 6},
		{"Accents", "èéùìò", GSM7, 5},
		{"UCS2Units", "Ваш код", UCS2, 7},
		{"EmojiCountsTwo", "a😀", UCS2, 3},
		{"InvalidUTF8IsReplaced", "a\xff", UCS2, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, n := Analyze(tt.text)
			if c != tt.coding || n != tt.n {
				t.Fatalf("Analyze(%q) = %v, %d; want %v, %d", tt.text, c, n, tt.coding, tt.n)
			}
		})
	}
}

func TestSegments(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		text string
		want int
	}{
		{"Empty", "", 1},
		{"GSM160", strings.Repeat("a", 160), 1},
		{"GSM161", strings.Repeat("a", 161), 2},
		{"GSM306", strings.Repeat("a", 306), 2},
		{"GSM307", strings.Repeat("a", 307), 3},
		{"Euro80", strings.Repeat("€", 80), 1},
		{"Euro80Plus1", strings.Repeat("€", 80) + "a", 2},
		// 153 septets in a part would cut the 77th '€' in half: the first
		// part takes 152, and the rest (160-152 = 8 more) a second part.
		{"EscapeShiftsTheCut", strings.Repeat("€", 77) + strings.Repeat("a", 7), 2},
		{"UCS2At70", strings.Repeat("ж", 70), 1},
		{"UCS2At71", strings.Repeat("ж", 71), 2},
		{"UCS2At134", strings.Repeat("ж", 134), 2},
		{"UCS2At135", strings.Repeat("ж", 135), 3},
		{"Emoji35", strings.Repeat("😀", 35), 1},
		{"Emoji36", strings.Repeat("😀", 36), 2},
		// 67 units would end inside the 34th emoji: parts of 66 units.
		{"Emoji66", strings.Repeat("😀", 66), 2},
		{"Emoji67", strings.Repeat("😀", 67), 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := Segments(tt.text); got != tt.want {
				t.Fatalf("Segments = %d, want %d", got, tt.want)
			}
			if _, parts := Split(tt.text); len(parts) != tt.want {
				t.Fatalf("Split made %d parts, want %d", len(parts), tt.want)
			}
		})
	}
}

func TestSplit(t *testing.T) {
	t.Parallel()
	t.Run("SingleIsOnePart", func(t *testing.T) {
		t.Parallel()
		text := strings.Repeat("x", 160)
		c, parts := Split(text)
		if c != GSM7 || len(parts) != 1 || string(parts[0]) != text {
			t.Fatalf("Split(160 x) = %v, %d parts", c, len(parts))
		}
	})
	t.Run("GSM7Parts", func(t *testing.T) {
		t.Parallel()
		text := strings.Repeat("0123456789", 40)
		_, parts := Split(text)
		sizes := partSizes(parts)
		if want := []int{153, 153, 94}; !equalInts(sizes, want) {
			t.Fatalf("part sizes %v, want %v", sizes, want)
		}
	})
	t.Run("ESCPairMovesToNextPart", func(t *testing.T) {
		t.Parallel()
		text := strings.Repeat("a", 152) + "€" + strings.Repeat("b", 20)
		_, parts := Split(text)
		if sizes := partSizes(parts); !equalInts(sizes, []int{152, 22}) {
			t.Fatalf("part sizes %v, want [152 22]", sizes)
		}
		if parts[1][0] != 0x1B || parts[1][1] != 0x65 {
			t.Fatalf("second part starts % X, want 1B 65", parts[1][:2])
		}
	})
	t.Run("ESCPairEndingAPartStays", func(t *testing.T) {
		t.Parallel()
		text := strings.Repeat("a", 151) + "€" + strings.Repeat("b", 20)
		_, parts := Split(text)
		if sizes := partSizes(parts); !equalInts(sizes, []int{153, 20}) {
			t.Fatalf("part sizes %v, want [153 20]", sizes)
		}
	})
	t.Run("UCS2Parts", func(t *testing.T) {
		t.Parallel()
		_, parts := Split(strings.Repeat("ж", 150))
		if sizes := partSizes(parts); !equalInts(sizes, []int{134, 134, 32}) {
			t.Fatalf("part sizes %v, want [134 134 32]", sizes)
		}
	})
	t.Run("SurrogatePairMovesToNextPart", func(t *testing.T) {
		t.Parallel()
		text := strings.Repeat("ж", 66) + "😀" + strings.Repeat("ж", 10)
		_, parts := Split(text)
		if sizes := partSizes(parts); !equalInts(sizes, []int{132, 24}) {
			t.Fatalf("part sizes %v, want [132 24]", sizes)
		}
		for i, p := range parts {
			if _, err := Decode(UCS2, p); err != nil {
				t.Fatalf("part %d does not decode alone: %v", i, err)
			}
		}
	})
	t.Run("PartsDoNotShareCapacity", func(t *testing.T) {
		t.Parallel()
		_, parts := Split(strings.Repeat("a", 200))
		_ = append(parts[0], 'X')
		if parts[1][0] != 'a' {
			t.Fatalf("appending to part 0 overwrote part 1")
		}
	})
}

// Every part of every long text must decode on its own: a cut inside an
// ESC pair or a surrogate pair would make a part undecodable.
func TestSplitPartsDecodeAlone(t *testing.T) {
	t.Parallel()
	units := []string{"a", "€", "😀", "ж", "[", "é"}
	for _, u1 := range units {
		for _, u2 := range units {
			for n := 140; n < 175; n++ {
				text := strings.Repeat(u1, n%3+1) + strings.Repeat(u2, n)
				c, parts := Split(text)
				_, whole := Encode(text)
				if !bytes.Equal(bytes.Join(parts, nil), whole) {
					t.Fatalf("%q x%d: parts do not join to the encoding", u2, n)
				}
				for i, p := range parts {
					if _, err := Decode(c, p); err != nil {
						t.Fatalf("%q+%q x%d: part %d: %v", u1, u2, n, i, err)
					}
					limit := GSM7Part
					if c == UCS2 {
						limit = 2 * UCS2Part
					}
					if len(parts) > 1 && len(p) > limit {
						t.Fatalf("part %d has %d octets", i, len(p))
					}
				}
			}
		}
	}
}

func TestDecodeInvalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		c    Coding
		b    []byte
		want error
	}{
		{"HighBit", GSM7, []byte{'a', 0x80}, ErrInvalid},
		{"TrailingESC", GSM7, []byte{'a', 0x1B}, ErrInvalid},
		{"UnknownExtension", GSM7, []byte{0x1B, 0x41}, ErrInvalid},
		{"DoubleESC", GSM7, []byte{0x1B, 0x1B, 0x65}, ErrInvalid},
		{"OddUCS2", UCS2, []byte{0x00, 0x41, 0x00}, ErrInvalid},
		{"LoneHighSurrogate", UCS2, []byte{0xD8, 0x3D, 0x00, 0x41}, ErrInvalid},
		{"TrailingHighSurrogate", UCS2, []byte{0x00, 0x41, 0xD8, 0x3D}, ErrInvalid},
		{"LoneLowSurrogate", UCS2, []byte{0xDE, 0x00}, ErrInvalid},
		{"UnknownCoding", Coding(4), []byte{'a'}, ErrCoding},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Decode(tt.c, tt.b)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Decode(%v, % X) = %q, %v; want %v", tt.c, tt.b, got, err, tt.want)
			}
		})
	}
}

func TestCodingString(t *testing.T) {
	t.Parallel()
	for c, want := range map[Coding]string{GSM7: "GSM7", UCS2: "UCS2", Coding(3): "Coding(3)"} {
		if got := c.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(c), got, want)
		}
	}
}

// FuzzEncode checks, for any valid UTF-8 text, that Decode undoes Encode,
// that Split's parts join to Encode's octets and each fits its segment,
// and that Analyze and Segments agree with them.
func FuzzEncode(f *testing.F) {
	for _, s := range []string{"", "Your code is 123456", "€[]{}", "😀ж", strings.Repeat("a€", 90), strings.Repeat("ж😀", 40)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		if !utf8.ValidString(text) {
			t.Skip()
		}
		c, b := Encode(text)
		got, err := Decode(c, b)
		if err != nil || got != text {
			t.Fatalf("Decode(Encode(%q)) = %q, %v", text, got, err)
		}
		ac, n := Analyze(text)
		if ac != c || (c == GSM7 && n != len(b)) || (c == UCS2 && 2*n != len(b)) {
			t.Fatalf("Analyze(%q) = %v, %d; Encode gave %v, %d octets", text, ac, n, c, len(b))
		}
		sc, parts := Split(text)
		if sc != c || !bytes.Equal(bytes.Join(parts, nil), b) {
			t.Fatalf("Split(%q) parts do not join to Encode's octets", text)
		}
		if Segments(text) != len(parts) {
			t.Fatalf("Segments(%q) = %d, Split made %d", text, Segments(text), len(parts))
		}
		limit := GSM7Single
		if len(parts) > 1 {
			limit = GSM7Part
		}
		if c == UCS2 {
			limit = 2 * UCS2Single
			if len(parts) > 1 {
				limit = 2 * UCS2Part
			}
		}
		for i, p := range parts {
			if len(p) > limit {
				t.Fatalf("Split(%q) part %d has %d octets, limit %d", text, i, len(p), limit)
			}
			if _, err := Decode(c, p); err != nil {
				t.Fatalf("Split(%q) part %d does not decode alone: %v", text, i, err)
			}
		}
	})
}

func partSizes(parts [][]byte) []int {
	var s []int
	for _, p := range parts {
		s = append(s, len(p))
	}
	return s
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// FuzzDecode holds Decode to what hostile octets may not do: panic, or
// decode to a text that Encode would not give back octet for octet.
func FuzzDecode(f *testing.F) {
	f.Add(byte(0), []byte("hello"))
	f.Add(byte(0), []byte{0x1B, 0x65, 0x00, 0x7F})
	f.Add(byte(8), []byte{0xD8, 0x3D, 0xDE, 0x00})
	f.Add(byte(8), []byte{0xDE, 0x00})
	f.Fuzz(func(t *testing.T, coding byte, b []byte) {
		text, err := Decode(Coding(coding), b)
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrCoding) {
				t.Fatalf("Decode error %v is neither ErrInvalid nor ErrCoding", err)
			}
			return
		}
		c, enc := Encode(text)
		// A UCS-2 text of GSM characters comes back as GSM-7: only the
		// octets of the same coding must match.
		if c == Coding(coding) && !bytes.Equal(enc, b) {
			t.Fatalf("Decode(%v, % X) = %q, which encodes to % X", Coding(coding), b, text, enc)
		}
	})
}
