package http

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The server must compare a code's MAC with the stored one only through
// Keyring.Equal, which is constant time. A timing test would be flaky, so
// this test reads the package source: validate must call Keyring.Equal on
// the MACs, and no other comparison (==, !=, bytes.Equal, bytes.Compare, a
// hand-rolled loop's ==) may touch anything named MAC.
func TestMACsComparedOnlyByKeyringEqual(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	// mentionsMAC reports whether e refers to a MAC: CodeMAC, Keyring.MAC(...),
	// a local named mac.
	mentionsMAC := func(e ast.Expr) bool {
		found := false
		ast.Inspect(e, func(n ast.Node) bool {
			if id, ok := n.(*ast.Ident); ok && strings.Contains(strings.ToLower(id.Name), "mac") {
				found = true
			}
			return !found
		})
		return found
	}
	fset := token.NewFileSet()
	keyringEqual := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.BinaryExpr:
				if (n.Op == token.EQL || n.Op == token.NEQ) && (mentionsMAC(n.X) || mentionsMAC(n.Y)) {
					t.Errorf("%s: a MAC compared with %s", fset.Position(n.Pos()), n.Op)
				}
			case *ast.CallExpr:
				sel, ok := n.Fun.(*ast.SelectorExpr)
				if !ok || !slices.ContainsFunc(n.Args, mentionsMAC) {
					return true
				}
				if x, ok := sel.X.(*ast.SelectorExpr); ok && x.Sel.Name == "Keyring" && sel.Sel.Name == "Equal" {
					keyringEqual++
					return true
				}
				switch sel.Sel.Name {
				case "Equal", "Compare", "ConstantTimeCompare", "EqualFold", "HasPrefix":
					t.Errorf("%s: a MAC compared with %s", fset.Position(n.Pos()), sel.Sel.Name)
				}
			}
			return true
		})
	}
	if keyringEqual == 0 {
		t.Error("no call of Keyring.Equal on a MAC: how does validate check a code?")
	}
}
