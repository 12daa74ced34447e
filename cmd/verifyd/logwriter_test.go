package main

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestLineWriter(t *testing.T) {
	t.Parallel()

	t.Run("EveryLineWholeAndInOrder", func(t *testing.T) {
		t.Parallel()
		var out syncBuffer
		lw := newLineWriter(&out)
		var wg sync.WaitGroup
		for g := range 16 {
			wg.Go(func() {
				for i := range 500 {
					fmt.Fprintf(lw, "writer %d line %d %s\n", g, i, strings.Repeat("x", i%300))
				}
			})
		}
		wg.Wait()
		lw.Close()
		next := map[int]int{}
		lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
		if len(lines) != 16*500 {
			t.Fatalf("%d lines, want %d", len(lines), 16*500)
		}
		for _, l := range lines {
			var g, i int
			var xs string
			if _, err := fmt.Sscanf(l, "writer %d line %d %s", &g, &i, &xs); err != nil && i%300 != 0 {
				t.Fatalf("torn line %q: %v", l, err)
			}
			if i != next[g] || len(xs) != i%300 {
				t.Fatalf("writer %d: line %d after %d, or torn: %q", g, i, next[g]-1, l)
			}
			next[g]++
		}
	})

	t.Run("AnIdleLineIsWrittenWithoutClose", func(t *testing.T) {
		t.Parallel()
		var out syncBuffer
		lw := newLineWriter(&out)
		defer lw.Close()
		lw.Write([]byte("listening\n"))
		deadline := time.Now().Add(10 * time.Second)
		for out.String() != "listening\n" {
			if time.Now().After(deadline) {
				t.Fatal("a line written to an idle writer never came out")
			}
			time.Sleep(time.Millisecond)
		}
	})

	t.Run("AfterCloseLinesPassStraightThrough", func(t *testing.T) {
		t.Parallel()
		var out syncBuffer
		lw := newLineWriter(&out)
		lw.Write([]byte("one\n"))
		lw.Close()
		lw.Close()
		lw.Write([]byte("two\n"))
		if got := out.String(); got != "one\ntwo\n" {
			t.Fatalf("wrote %q", got)
		}
	})

	t.Run("CloseWhileOthersWrite", func(t *testing.T) {
		t.Parallel()
		var out syncBuffer
		lw := newLineWriter(&out)
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for range 2000 {
					lw.Write([]byte("line\n"))
				}
			})
		}
		time.Sleep(time.Millisecond)
		lw.Close()
		wg.Wait()
		if n := strings.Count(out.String(), "line\n"); n != 8*2000 {
			t.Fatalf("%d lines written, want %d", n, 8*2000)
		}
	})

	t.Run("AFullBufferIsWrittenByTheCaller", func(t *testing.T) {
		t.Parallel()
		var out syncBuffer
		lw := newLineWriter(&out)
		defer lw.Close()
		big := bytes.Repeat([]byte("y"), maxPending)
		lw.Write(big)
		if n := len(out.String()); n != maxPending {
			t.Fatalf("%d bytes written by the time Write returned, want %d", n, maxPending)
		}
	})
}
