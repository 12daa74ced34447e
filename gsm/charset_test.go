package gsm

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseCharset(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]Charset{"gsm": CharsetGSM, "ascii": CharsetASCII, "latin1": CharsetLatin1} {
		cs, err := ParseCharset(name)
		if err != nil || cs != want {
			t.Errorf("ParseCharset(%q) = %v, %v; want %v", name, cs, err, want)
		}
		if cs.String() != name {
			t.Errorf("%v.String() = %q, want %q", cs, cs.String(), name)
		}
	}
	for _, name := range []string{"", "GSM", "ASCII", "latin-1", "iso-8859-1", "utf8", "ucs2"} {
		if cs, err := ParseCharset(name); err == nil {
			t.Errorf("ParseCharset(%q) = %v, want an error", name, cs)
		} else if !strings.Contains(err.Error(), "gsm, ascii or latin1") {
			t.Errorf("ParseCharset(%q): %v does not say what is allowed", name, err)
		}
	}
	if got := Charset(9).String(); got != "Charset(9)" {
		t.Errorf("Charset(9).String() = %q", got)
	}
}

func TestCharsetEncode(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		cs     Charset
		text   string
		coding Coding
		want   []byte
		units  int // what Analyze counts
	}{
		// Under GSM, '@' is 0x00, '$' 0x02 and '_' 0x11: unchanged.
		{"GSM", CharsetGSM, "@$_{", GSM7, []byte{0x00, 0x02, 0x11, 0x1B, 0x28}, 5},
		{"GSMPound", CharsetGSM, "£", GSM7, []byte{0x01}, 1},

		// Under ASCII they are their ASCII octets.
		{"ASCII", CharsetASCII, "Code @ $5_", GSM7, []byte("Code @ $5_"), 10},
		{"ASCIIExtensionCountsTwo", CharsetASCII, "a{b}[c]~\\|^", GSM7, []byte("a{b}[c]~\\|^"), 19},
		{"ASCIICRLF", CharsetASCII, "a\r\nb", GSM7, []byte("a\r\nb"), 4},
		{"ASCIIAllPrintable", CharsetASCII, " !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_abcdefghijklmnopqrstuvwxyz{|}~",
			// 94 characters ('`' is missing), the 8 extension ones counting two.
			GSM7, []byte(" !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_abcdefghijklmnopqrstuvwxyz{|}~"), 94 + 8},
		{"ASCIIEmpty", CharsetASCII, "", GSM7, []byte{}, 0},
		// '`' is ASCII but has no GSM mapping; '£' and '€' are GSM but not
		// ASCII; a tab and a form feed are not printable: all go UCS-2.
		{"ASCIIBacktick", CharsetASCII, "a`", UCS2, []byte{0x00, 0x61, 0x00, 0x60}, 2},
		{"ASCIIPound", CharsetASCII, "£5", UCS2, []byte{0x00, 0xA3, 0x00, 0x35}, 2},
		{"ASCIIEuro", CharsetASCII, "€", UCS2, []byte{0x20, 0xAC}, 1},
		{"ASCIITab", CharsetASCII, "a\tb", UCS2, []byte{0x00, 0x61, 0x00, 0x09, 0x00, 0x62}, 3},
		{"ASCIIFormFeed", CharsetASCII, "\f", UCS2, []byte{0x00, 0x0C}, 1},
		{"ASCIIEmoji", CharsetASCII, "a🙂", UCS2, []byte{0x00, 0x61, 0xD8, 0x3D, 0xDE, 0x42}, 3},

		// Latin-1 octets, '`' and '¤' included, one unit each.
		{"Latin1", CharsetLatin1, "Café £5 ¿ñ? @$_`{¤}", GSM7,
			[]byte{'C', 'a', 'f', 0xE9, ' ', 0xA3, '5', ' ', 0xBF, 0xF1, '?', ' ', '@', '$', '_', '`', '{', 0xA4, '}'}, 19},
		{"Latin1Top", CharsetLatin1, "\u00A0ÿ\r\n", GSM7, []byte{0xA0, 0xFF, 0x0D, 0x0A}, 4},
		{"Latin1Euro", CharsetLatin1, "€5", UCS2, []byte{0x20, 0xAC, 0x00, 0x35}, 2},
		{"Latin1Cyrillic", CharsetLatin1, "Ж", UCS2, []byte{0x04, 0x16}, 1},
		{"Latin1C1Control", CharsetLatin1, "a\u0085", UCS2, []byte{0x00, 0x61, 0x00, 0x85}, 2},
		{"Latin1Delete", CharsetLatin1, "\x7F", UCS2, []byte{0x00, 0x7F}, 1},
	} {
		c, b := tc.cs.Encode(tc.text)
		if c != tc.coding || !bytes.Equal(b, tc.want) {
			t.Errorf("%s: %v.Encode(%q) = %v % X, want %v % X", tc.name, tc.cs, tc.text, c, b, tc.coding, tc.want)
		}
		if c, n := tc.cs.Analyze(tc.text); c != tc.coding || n != tc.units {
			t.Errorf("%s: %v.Analyze(%q) = %v %d, want %v %d", tc.name, tc.cs, tc.text, c, n, tc.coding, tc.units)
		}
		if got, err := tc.cs.Decode(c, b); err != nil || got != tc.text {
			t.Errorf("%s: %v.Decode(% X) = %q, %v; want %q", tc.name, tc.cs, b, got, err, tc.text)
		}
	}
}

// CharsetGSM, and any value that is not a charset, is the package's own
// behaviour byte for byte.
func TestCharsetGSMIsThePackageDefault(t *testing.T) {
	t.Parallel()
	for _, text := range []string{"", "Your code is 123456 @ $ _", "{€}", "`", strings.Repeat("a", 152) + "€ b",
		strings.Repeat("ж", 66) + "🙂 x", strings.Repeat("Code 1234. ", 40)} {
		for _, cs := range []Charset{CharsetGSM, Charset(42)} {
			c1, b1 := cs.Encode(text)
			c2, b2 := Encode(text)
			if c1 != c2 || !bytes.Equal(b1, b2) {
				t.Errorf("%v.Encode(%q) differs from Encode", cs, text)
			}
			c1, p1 := cs.Split(text)
			c2, p2 := Split(text)
			if c1 != c2 || !slices.EqualFunc(p1, p2, bytes.Equal) {
				t.Errorf("%v.Split(%q) differs from Split", cs, text)
			}
			if cs.Segments(text) != Segments(text) {
				t.Errorf("%v.Segments(%q) differs from Segments", cs, text)
			}
		}
	}
}

func TestCharsetSplit(t *testing.T) {
	t.Parallel()
	a := func(n int) string { return strings.Repeat("a", n) }
	for _, tc := range []struct {
		name   string
		cs     Charset
		text   string
		coding Coding
		sizes  []int // octets of each part
	}{
		{"ASCII160", CharsetASCII, a(160), GSM7, []int{160}},
		{"ASCII161", CharsetASCII, a(161), GSM7, []int{153, 8}},
		// 150 characters, 160 septets: one SMS.
		{"ASCII160SeptetsWithExtensions", CharsetASCII, strings.Repeat("{", 10) + a(140), GSM7, []int{150}},
		// 151 characters but 161 septets: two parts, the first holding
		// 153 septets in 143 octets.
		{"ASCII161SeptetsIn151Characters", CharsetASCII, strings.Repeat("{", 10) + a(141), GSM7, []int{143, 8}},
		// 161 characters: the '{' that would be septets 153 and 154 opens
		// the second part.
		{"ASCII161CharactersExtensionOnTheBoundary", CharsetASCII, a(152) + "{" + strings.Repeat("b", 8), GSM7, []int{152, 9}},
		{"ASCII161CharactersExtensionBeforeTheBoundary", CharsetASCII, a(151) + "{" + strings.Repeat("b", 9), GSM7, []int{152, 9}},
		{"ASCIIFourParts", CharsetASCII, strings.Repeat("[x]", 100), GSM7, []int{92, 91, 92, 25}},
		// Not ASCII: UCS-2, the surrogate pair moved whole to part two.
		{"ASCIIToUCS2", CharsetASCII, "`" + a(65) + "🙂" + a(5), UCS2, []int{132, 14}},

		{"Latin1_140", CharsetLatin1, strings.Repeat("é", 140), GSM7, []int{140}},
		{"Latin1_141", CharsetLatin1, strings.Repeat("é", 140) + "!", GSM7, []int{134, 7}},
		// 141 characters that GSM would fit in one SMS.
		{"Latin1_141Plain", CharsetLatin1, a(141), GSM7, []int{134, 7}},
		{"Latin1ToUCS2", CharsetLatin1, "€" + a(70), UCS2, []int{134, 8}},
	} {
		c, parts := tc.cs.Split(tc.text)
		var sizes []int
		for _, p := range parts {
			sizes = append(sizes, len(p))
		}
		if c != tc.coding || !slices.Equal(sizes, tc.sizes) {
			t.Errorf("%s: %v.Split = %v parts of %v octets, want %v %v", tc.name, tc.cs, c, sizes, tc.coding, tc.sizes)
			continue
		}
		if n := tc.cs.Segments(tc.text); n != len(tc.sizes) {
			t.Errorf("%s: Segments = %d, want %d", tc.name, n, len(tc.sizes))
		}
		// Each part decodes alone, and they join into the text.
		var joined strings.Builder
		for i, p := range parts {
			s, err := tc.cs.Decode(c, p)
			if err != nil {
				t.Errorf("%s: part %d does not decode: %v", tc.name, i+1, err)
			}
			joined.WriteString(s)
		}
		if joined.String() != tc.text {
			t.Errorf("%s: parts join into %q", tc.name, joined.String())
		}
		// Appending to a part must not overwrite the next.
		if len(parts) > 1 {
			next := parts[1][0]
			_ = append(parts[0], 0xEE)
			if parts[1][0] != next {
				t.Errorf("%s: appending to part 1 overwrote part 2", tc.name)
			}
		}
	}
}

func TestCharsetDecodeInvalid(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cs Charset
		c  Coding
		b  []byte
	}{
		{CharsetASCII, GSM7, []byte("a`")},
		{CharsetASCII, GSM7, []byte{0x00}},       // GSM '@', not an ASCII character
		{CharsetASCII, GSM7, []byte{0x1B}},       // ESC
		{CharsetASCII, GSM7, []byte{0x09}},       // tab
		{CharsetASCII, GSM7, []byte{0x7F}},       // DEL
		{CharsetASCII, GSM7, []byte{0xE9}},       // Latin-1 'é'
		{CharsetLatin1, GSM7, []byte{0x85}},      // C1 control
		{CharsetLatin1, GSM7, []byte{0x00}},      // NUL
		{CharsetLatin1, UCS2, []byte{0x00}},      // odd UCS-2
		{CharsetASCII, UCS2, []byte{0xD8, 0x3D}}, // unpaired surrogate
		{CharsetLatin1, Coding(3), []byte("x")},
	} {
		if got, err := tc.cs.Decode(tc.c, tc.b); err == nil {
			t.Errorf("%v.Decode(%v, % X) = %q, want an error", tc.cs, tc.c, tc.b, got)
		} else if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrCoding) {
			t.Errorf("%v.Decode(%v, % X): %v", tc.cs, tc.c, tc.b, err)
		}
	}
	// data_coding 0 read by each charset: the same octets, three texts.
	b := []byte{0x40, 0x24, 0x5F}
	for cs, want := range map[Charset]string{CharsetGSM: "¡¤§", CharsetASCII: "@$_", CharsetLatin1: "@$_"} {
		if got, err := cs.Decode(GSM7, b); err != nil || got != want {
			t.Errorf("%v.Decode(% X) = %q, %v; want %q", cs, b, got, err, want)
		}
	}
}

// FuzzCharsetSplit checks, for every charset, that the parts of any text
// decode back to it and stay within one SMS each.
func FuzzCharsetSplit(f *testing.F) {
	for _, s := range []string{"", "Code @ $5_", "a{b}", strings.Repeat("{", 10) + strings.Repeat("a", 141),
		strings.Repeat("é", 141), "`" + strings.Repeat("a", 65) + "🙂", "€£¥", "a\r\n\tb\f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		if !utf8.ValidString(text) {
			t.Skip()
		}
		for _, cs := range []Charset{CharsetGSM, CharsetASCII, CharsetLatin1} {
			c, parts := cs.Split(text)
			ac, _ := cs.Analyze(text)
			if ac != c {
				t.Fatalf("%v: Analyze says %v, Split %v", cs, ac, c)
			}
			var joined strings.Builder
			for _, p := range parts {
				s, err := cs.Decode(c, p)
				if err != nil {
					t.Fatalf("%v: part % X: %v", cs, p, err)
				}
				joined.WriteString(s)
				single, part, size := GSM7Single, GSM7Part, len(p)
				switch {
				case c == UCS2:
					single, part = 2*UCS2Single, 2*UCS2Part
				case cs == CharsetLatin1:
					single, part = Latin1Single, Latin1Part
				default:
					_, size = cs.Analyze(s) // septets, not octets, under ASCII
				}
				if limit := map[bool]int{true: single, false: part}[len(parts) == 1]; size > limit {
					t.Fatalf("%v: a part of %d, of %d parts, limit %d", cs, size, len(parts), limit)
				}
			}
			if joined.String() != text {
				t.Fatalf("%v: parts join into %q, want %q", cs, joined.String(), text)
			}
		}
	})
}
