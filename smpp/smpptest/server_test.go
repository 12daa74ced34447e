package smpptest

import (
	"slices"
	"testing"
)

func TestReassembleJoinsPartsInOrderOnceComplete(t *testing.T) {
	t.Parallel()
	subs := []Submit{
		{Session: 1, Ref: 7, Total: 2, Part: 2, Text: "world"},
		{Session: 1, Text: "single"},
		{Session: 2, Ref: 7, Total: 2, Part: 1, Text: "other session"},
		{Session: 1, Ref: 7, Total: 2, Part: 1, Text: "hello "},
		{Session: 1, Ref: 9, Total: 3, Part: 1, Text: "incomplete"},
	}
	got := Reassemble(subs)
	if want := []string{"single", "hello world"}; !slices.Equal(got, want) {
		t.Fatalf("Reassemble = %q, want %q", got, want)
	}
}
