package main

import (
	"runtime"
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"version"}, {"--version"}} {
		code, stdout, stderr := runMain(t, nil, args...)
		if code != 0 || stderr != "" || !strings.HasPrefix(stdout, "verifyd ") ||
			!strings.HasSuffix(stdout, " "+runtime.Version()+"\n") || strings.Count(stdout, "\n") != 1 {
			t.Errorf("verifyd %q: exit %d, stdout %q, stderr %q; want one line naming the build and %s", args, code, stdout, stderr, runtime.Version())
		}
	}
	if code, _, stderr := runMain(t, nil, "version", "extra"); code != 2 || stderr != "verifyd: version takes no arguments\n" {
		t.Errorf("version extra: exit %d, %q; want 2 and that it takes no arguments", code, stderr)
	}
	if code, stdout, _ := runMain(t, nil, "help"); code != 0 || !strings.Contains(stdout, "\n  version ") {
		t.Errorf("help does not list version: %q", stdout)
	}
}
