package main

import (
	"slices"
	"testing"
)

// A developer who serves --dev on a dotted name (--addr devbox.lan:8080)
// opens the inbox by that name: the inbox, which answers only to names a
// browser reaches the machine by directly, takes it too. An address adds
// nothing: IP literals are taken anyway.
func TestInboxHostsOfAddr(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string][]string{
		"devbox.lan:8080": {"devbox.lan"},
		"127.0.0.1:8080":  nil,
		"[::1]:8080":      nil,
		":8080":           nil,
		"localhost:8080":  {"localhost"},
		"nonsense":        nil,
	} {
		if got := inboxHosts(addr); !slices.Equal(got, want) {
			t.Errorf("inboxHosts(%q) = %q, want %q", addr, got, want)
		}
	}
}
