package otp

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// Keyring.Equal must compare in constant time. A timing test would be flaky
// (the difference is nanoseconds, lost in scheduler noise), so this test
// reads the source instead: Equal's body must call hmac.Equal or
// subtle.ConstantTimeCompare and must not compare anything with == or !=,
// which is what string(a) == string(b) or a byte loop that returns early does.
func TestKeyringEqualIsConstantTime(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var body *ast.BlockStmt
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			if fn, ok := d.(*ast.FuncDecl); ok && fn.Name.Name == "Equal" && fn.Recv != nil &&
				strings.Contains(recvType(fn.Recv), "Keyring") {
				body = fn.Body
			}
		}
	}
	if body == nil {
		t.Fatal("no method Keyring.Equal in the package source")
	}
	constantTime := false
	ast.Inspect(body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.CallExpr:
			if sel, ok := n.Fun.(*ast.SelectorExpr); ok {
				if pkg, ok := sel.X.(*ast.Ident); ok {
					switch pkg.Name + "." + sel.Sel.Name {
					case "hmac.Equal", "subtle.ConstantTimeCompare":
						constantTime = true
					}
				}
			}
		case *ast.BinaryExpr:
			if n.Op == token.EQL || n.Op == token.NEQ {
				t.Errorf("Keyring.Equal compares with %s at %s", n.Op, fset.Position(n.Pos()))
			}
		}
		return true
	})
	if !constantTime {
		t.Error("Keyring.Equal calls neither hmac.Equal nor subtle.ConstantTimeCompare")
	}
}

// recvType returns the receiver's type as written, such as "*Keyring".
func recvType(recv *ast.FieldList) string {
	var b strings.Builder
	for _, f := range recv.List {
		ast.Inspect(f.Type, func(n ast.Node) bool {
			if id, ok := n.(*ast.Ident); ok {
				b.WriteString(id.Name)
			}
			return true
		})
	}
	return b.String()
}
