package phone

import (
	"errors"
	"strings"
	"testing"

	"verifyd"
)

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, raw, country string
		want               verifyd.Number
	}{
		{"UKMobile", "447123123456", "", verifyd.Number{Digits: "447123123456", Region: "GB", LineType: verifyd.LineMobile}},
		{"SeedNumber", "447979080215", "", verifyd.Number{Digits: "447979080215", Region: "GB", LineType: verifyd.LineMobile}},
		{"Plus", "+447123123456", "", verifyd.Number{Digits: "447123123456", Region: "GB", LineType: verifyd.LineMobile}},
		{"DoubleZero", "00447123123456", "", verifyd.Number{Digits: "447123123456", Region: "GB", LineType: verifyd.LineMobile}},
		{"Punctuation", "+44 (0) 7123-123.456", "", verifyd.Number{Digits: "447123123456", Region: "GB", LineType: verifyd.LineMobile}},
		{"OtherWhitespace", "\t+44 7123\u00a0123456\n", "", verifyd.Number{Digits: "447123123456", Region: "GB", LineType: verifyd.LineMobile}},
		{"PlusInsideParentheses", "(+44) 7123 123456", "", verifyd.Number{Digits: "447123123456", Region: "GB", LineType: verifyd.LineMobile}},
		{"UKLandline", "+44 121 234 5678", "", verifyd.Number{Digits: "441212345678", Region: "GB", LineType: verifyd.LineFixed}},
		{"US", "+1 (201) 555-0123", "", verifyd.Number{Digits: "12015550123", Region: "US", LineType: verifyd.LineFixedOrMobile}},
		{"USTollFree", "18002345678", "", verifyd.Number{Digits: "18002345678", Region: "US", LineType: verifyd.LineTollFree}},
		{"Canada", "+1 506 234 5678", "", verifyd.Number{Digits: "15062345678", Region: "CA", LineType: verifyd.LineFixedOrMobile}},
		{"France", "+33 6 12 34 56 78", "", verifyd.Number{Digits: "33612345678", Region: "FR", LineType: verifyd.LineMobile}},
		{"Germany", "0049 1512 3456789", "", verifyd.Number{Digits: "4915123456789", Region: "DE", LineType: verifyd.LineMobile}},
		{"India", "+91 81234 56789", "", verifyd.Number{Digits: "918123456789", Region: "IN", LineType: verifyd.LineMobile}},
		{"ItalyKeepsLeadingZero", "+39 02 1234 5678", "", verifyd.Number{Digits: "390212345678", Region: "IT", LineType: verifyd.LineFixed}},
		{"Kosovo", "+383 43 201 234", "XKX", verifyd.Number{Digits: "38343201234", Region: "XK", LineType: verifyd.LineMobile}},
		{"NationalWithCountry", "07123 123456", "GBR", verifyd.Number{Digits: "447123123456", Region: "GB", LineType: verifyd.LineMobile}},
		{"NationalCountryLowercase", "07123123456", "gbr", verifyd.Number{Digits: "447123123456", Region: "GB", LineType: verifyd.LineMobile}},
		{"NationalFrance", "06 12 34 56 78", "FRA", verifyd.Number{Digits: "33612345678", Region: "FR", LineType: verifyd.LineMobile}},
		{"NationalUS", "(201) 555-0123", "USA", verifyd.Number{Digits: "12015550123", Region: "US", LineType: verifyd.LineFixedOrMobile}},
		{"NationalGermany", "01512 3456789", "DEU", verifyd.Number{Digits: "4915123456789", Region: "DE", LineType: verifyd.LineMobile}},
		{"InternationalWithCountry", "447123123456", "GBR", verifyd.Number{Digits: "447123123456", Region: "GB", LineType: verifyd.LineMobile}},
		{"InternationalOfAnotherCountry", "+33612345678", "GBR", verifyd.Number{Digits: "33612345678", Region: "FR", LineType: verifyd.LineMobile}},
		{"BarePlusLessOfAnotherCountry", "33612345678", "USA", verifyd.Number{Digits: "33612345678", Region: "FR", LineType: verifyd.LineMobile}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Parse(tt.raw, tt.country)
			if err != nil {
				t.Fatalf("Parse(%q, %q): %v", tt.raw, tt.country, err)
			}
			if got != tt.want {
				t.Fatalf("Parse(%q, %q) = %+v, want %+v", tt.raw, tt.country, got, tt.want)
			}
		})
	}
}

func TestParseInvalid(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, raw, country string }{
		{"Empty", "", ""},
		{"OnlyPunctuation", " (-.) ", ""},
		{"OnlyPlus", "+", ""},
		{"SeedBadNumber", "4479790802150", ""},
		{"SeedBadNumberWithCountry", "4479790802150", "GBR"},
		{"TooShort", "44712312345", ""},
		{"TooLong", "4471231234567", ""},
		{"NationalWithoutCountry", "07123123456", ""},
		{"NationalOfAnotherCountry", "0612345678", "GBR"},
		{"UnknownCallingCode", "+999123456789", ""},
		{"NonGeographic", "+80012345678", ""},
		{"Letters", "+44 7123 ABC 456", ""},
		{"VanityLetters", "1-800-FLOWERS", "USA"},
		{"Emoji", "+44 7123 123456 📱", ""},
		{"Extension", "+44 121 234 5678 ext 12", ""},
		{"TwoPluses", "++447123123456", ""},
		{"PlusAfterDigits", "44+7123123456", ""},
		{"PlusBeforeDoubleZero", "+00447123123456", ""},
		{"Slash", "+44/7123123456", ""},
		{"TooManyDigits", "+4471231234561234567890", ""},
		{"Huge", strings.Repeat("7", 1000), ""},
		{"HugeSpaces", "+44" + strings.Repeat(" ", 1000) + "7123123456", ""},
		{"UnknownCountry", "07123123456", "XXX"},
		{"Alpha2Country", "07123123456", "GB"},
		{"FullWidthDigits", "+４４７１２３１２３４５６", ""},
		{"NUL", "+44\x007123123456", ""},
		{"InvalidUTF8", "+44\xff7123123456", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			n, err := Parse(tt.raw, tt.country)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse(%q, %q) = %+v, %v; want ErrInvalid", tt.raw, tt.country, n, err)
			}
			if n != (verifyd.Number{}) {
				t.Fatalf("Parse(%q, %q) returned %+v with its error", tt.raw, tt.country, n)
			}
		})
	}
}

func TestParseErrorNeverQuotesTheNumber(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{"4479790802150", "+44 7123 ABC 456", "07123123456"} {
		_, err := Parse(raw, "")
		if err == nil {
			t.Fatalf("Parse(%q) accepted", raw)
		}
		for _, part := range []string{"4479790", "7123", "ABC"} {
			if strings.Contains(err.Error(), part) {
				t.Fatalf("error %q quotes the number %q", err, raw)
			}
		}
	}
}

func TestNormalize(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, in, want string }{
		{"Digits", "447123123456", "447123123456"},
		{"Plus", "+447123123456", "447123123456"},
		{"DoubleZero", "00447123123456", "447123123456"},
		{"Punctuation", "+44 (0) 7123-123.456", "447123123456"},
		{"TrunkZeroAfterDoubleZero", "0044 (0)7979 080215", "447979080215"},
		{"TrunkZeroAfterBareCallingCode", "44 07979 080215", "447979080215"},
		{"InvalidKeepsItsDigits", "+44 (0) 12", "44012"},
		{"Partial", "7123", "7123"},
		{"National", "07123123456", "07123123456"},
		{"Empty", "", ""},
		{"OnlyPlus", "+", ""},
		{"Letters", "44abc", ""},
		{"Huge", strings.Repeat("4", 1000), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := Normalize(tt.in); got != tt.want {
				t.Fatalf("Normalize(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestNormalizeMatchesParse(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{"+44 7123 123456", "0044-7123-123456", "447123123456", "+1 (201) 555.0123",
		"+44 (0) 7123 123456", "0049 (0)151 23456789", "+7 8 912 345 6789", "+54 11 15 2345 6789"} {
		n, err := Parse(raw, "")
		if err != nil {
			t.Fatalf("Parse(%q): %v", raw, err)
		}
		if got := Normalize(raw); got != n.Digits {
			t.Fatalf("Normalize(%q) = %q, but Parse stores %q", raw, got, n.Digits)
		}
	}
}

func TestMask(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, in, want string }{
		{"UK", "447123123456", "44*******456"},
		{"US", "12015550123", "1*******123"},
		{"ThreeDigitCode", "38343201234", "383*****234"},
		{"ShortestShown", "12345678", "1****678"},
		{"TooShortToShow", "1234567", "*******"},
		{"ShortNumber", "24740123", "********"},
		{"UnknownCallingCode", "999123456789", "************"},
		{"Empty", "", ""},
		{"NotDigits", "+447123123456", "*************"},
		{"NotDigitsUnicode", "٤٤٧١٢٣١٢٣٤٥٦", "************"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := Mask(tt.in)
			if got != tt.want {
				t.Fatalf("Mask(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestMaskRevealsAtMostCallingCodeAndLastThree(t *testing.T) {
	t.Parallel()
	for _, d := range []string{"447123123456", "4915123456789", "918123456789", "33612345678", "12015550123", "3906123456"} {
		m := Mask(d)
		if len(m) != len(d) {
			t.Fatalf("Mask(%q) = %q changes the length", d, m)
		}
		shown := 0
		for i := range m {
			if m[i] != '*' {
				if m[i] != d[i] {
					t.Fatalf("Mask(%q) = %q alters a digit", d, m)
				}
				shown++
			}
		}
		if shown > callingCodeLen(d)+3 {
			t.Fatalf("Mask(%q) = %q shows %d digits", d, m, shown)
		}
	}
}
