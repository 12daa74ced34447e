package otp

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/iotest"
)

// seeded returns a deterministic stream of random bytes, so statistical
// tests give the same answer on every run and never flake.
func seeded(seed byte) io.Reader {
	var s [32]byte
	s[0] = seed
	return rand.NewChaCha8(s)
}

func TestDrawLengths(t *testing.T) {
	t.Parallel()
	r := seeded(1)
	for n := MinLength; n <= MaxLength; n++ {
		code, err := Draw(r, n)
		if err != nil {
			t.Fatalf("Draw(%d): %v", n, err)
		}
		if len(code) != n || strings.Trim(code, "0123456789") != "" {
			t.Fatalf("Draw(%d) = %q", n, code)
		}
	}
}

func TestDrawErrBadLength(t *testing.T) {
	t.Parallel()
	for _, n := range []int{-1, 0, 3, 11, 100} {
		if code, err := Draw(seeded(1), n); err == nil {
			t.Errorf("Draw(%d) = %q, want an error", n, code)
		}
	}
}

func TestDrawErrReader(t *testing.T) {
	t.Parallel()
	broken := errors.New("no entropy")
	if code, err := Draw(iotest.ErrReader(broken), 6); !errors.Is(err, broken) || code != "" {
		t.Fatalf("Draw(broken reader) = %q, %v", code, err)
	}
	// A reader that runs dry after some bytes is an error too, not a
	// shorter code.
	if code, err := Draw(bytes.NewReader([]byte{1, 2, 3}), 6); err == nil {
		t.Fatalf("Draw(3 bytes) = %q, want an error", code)
	}
}

func TestDrawRejectsBiasedBytes(t *testing.T) {
	t.Parallel()
	// 250 to 255 would be 0 to 5 under byte % 10: they must be skipped,
	// even when a whole read is made of them.
	stream := append(bytes.Repeat([]byte{250, 251, 252, 253, 254, 255}, 3), 9, 255, 18, 0, 249, 123, 7, 7, 7)
	code, err := Draw(bytes.NewReader(stream), 6)
	if err != nil {
		t.Fatalf("Draw: %v", err)
	}
	if code != "980937" {
		t.Fatalf("Draw = %q, want 980937", code)
	}
}

// chiSquare returns Pearson's statistic of counts against a uniform
// distribution over its cells.
func chiSquare(counts []int) float64 {
	total := 0
	for _, c := range counts {
		total += c
	}
	want := float64(total) / float64(len(counts))
	x := 0.0
	for _, c := range counts {
		d := float64(c) - want
		x += d * d / want
	}
	return x
}

// chi2Bound is the chi-square critical value for 9 degrees of freedom at
// p = 0.001: a uniform source exceeds it one time in a thousand.
const chi2Bound = 27.877

// uniformDigits draws n codes of the longest length with draw and reports
// the first digit position (or the pooled counts, position -1) whose
// distribution is not uniform, with its statistic.
func uniformDigits(t *testing.T, draw func(io.Reader, int) (string, error), r io.Reader, n int) (int, float64, bool) {
	t.Helper()
	var counts [MaxLength][10]int
	pooled := make([]int, 10)
	for range n {
		code, err := draw(r, MaxLength)
		if err != nil {
			t.Fatalf("draw: %v", err)
		}
		for i := range MaxLength {
			counts[i][code[i]-'0']++
			pooled[code[i]-'0']++
		}
	}
	for i := range MaxLength {
		if x := chiSquare(counts[i][:]); x > chi2Bound {
			return i, x, false
		}
	}
	if x := chiSquare(pooled); x > chi2Bound {
		return -1, x, false
	}
	return 0, 0, true
}

func TestDrawIsUniform(t *testing.T) {
	t.Parallel()
	if pos, x, ok := uniformDigits(t, Draw, seeded(42), 100_000); !ok {
		t.Fatalf("digit position %d is not uniform: chi-square %.1f > %.1f", pos, x, chi2Bound)
	}
}

// The uniformity test must be able to fail: the textbook mistake, byte % 10
// with no rejection, has to be caught by the same bound on the same stream.
func TestDrawUniformityTestCatchesModuloBias(t *testing.T) {
	t.Parallel()
	biased := func(r io.Reader, length int) (string, error) {
		b := make([]byte, length)
		if _, err := io.ReadFull(r, b); err != nil {
			return "", err
		}
		for i := range b {
			b[i] = '0' + b[i]%10
		}
		return string(b), nil
	}
	if _, _, ok := uniformDigits(t, biased, seeded(42), 100_000); ok {
		t.Fatal("byte % 10 passed the uniformity test")
	}
}
