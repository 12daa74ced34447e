package phone

import "testing"

func BenchmarkParse(b *testing.B) {
	for b.Loop() {
		if _, err := Parse("447123123456", ""); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseNationalFallback(b *testing.B) {
	for b.Loop() {
		if _, err := Parse("33612345678", "USA"); err != nil {
			b.Fatal(err)
		}
	}
}
