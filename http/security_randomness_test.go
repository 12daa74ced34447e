package http

import (
	"crypto/rand"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Codes, request ids and secrets are drawn from crypto/rand (SECURITY.md).
// The source is injected so tests can be exact, which also means a wrong
// default would pass every other test: here the server's default is checked
// to be crypto/rand.Reader, and no package on the path from the command line
// to a code (cmd/verifyd, which passes the source in; http, which draws; otp
// and auth, which turn bytes into codes and secrets) may import math/rand.
func TestCodesAndIDsComeFromCryptoRand(t *testing.T) {
	t.Parallel()
	if s := NewServer(Config{}); s.cfg.Rand != rand.Reader {
		t.Fatalf("a server given no Rand draws from %T, want crypto/rand.Reader", s.cfg.Rand)
	}
	for _, dir := range []string{".", "../otp", "../auth", "../cmd/verifyd"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no Go files in %s: %v", dir, err)
		}
		for _, name := range files {
			if strings.HasSuffix(name, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range f.Imports {
				if p, _ := strconv.Unquote(imp.Path.Value); strings.HasPrefix(p, "math/rand") {
					t.Errorf("%s imports %s: a code or id drawn from it would be predictable", name, p)
				}
			}
		}
	}
}
