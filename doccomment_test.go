package workpool_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strings"
	"testing"
)

// TestDocComments checks that every exported identifier of the package has
// a doc comment that starts with its name (after an optional "A", "An" or
// "The"), as godoc and the style guide expect. A constant or variable in a
// documented group may rely on the group's comment.
func TestDocComments(t *testing.T) {
	fset := token.NewFileSet()
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	check := func(pos token.Pos, name string, doc, group *ast.CommentGroup) {
		t.Helper()
		if doc == nil {
			if group == nil {
				t.Errorf("%s: %s has no doc comment", fset.Position(pos), name)
			}
			return
		}
		text := doc.Text()
		for _, article := range []string{"A ", "An ", "The "} {
			text = strings.TrimPrefix(text, article)
		}
		if rest, ok := strings.CutPrefix(text, name); !ok || rest == "" || !strings.ContainsAny(rest[:1], " ,:.") {
			first, _, _ := strings.Cut(doc.Text(), "\n")
			t.Errorf("%s: doc comment of %s starts %q; want it to start with %s", fset.Position(pos), name, first, name)
		}
	}
	for _, f := range files {
		for _, decl := range f.Decls {
			switch d := decl.(type) {
			case *ast.FuncDecl:
				if d.Name.IsExported() && exportedReceiver(d) {
					check(d.Pos(), d.Name.Name, d.Doc, nil)
				}
			case *ast.GenDecl:
				checkGenDecl(d, check)
			}
		}
	}
}

func checkGenDecl(d *ast.GenDecl, check func(token.Pos, string, *ast.CommentGroup, *ast.CommentGroup)) {
	docOf := func(own *ast.CommentGroup) *ast.CommentGroup {
		if own == nil && len(d.Specs) == 1 {
			return d.Doc // type T struct{...} documents its single spec
		}
		return own
	}
	for _, spec := range d.Specs {
		switch s := spec.(type) {
		case *ast.TypeSpec:
			if s.Name.IsExported() {
				check(s.Pos(), s.Name.Name, docOf(s.Doc), nil)
			}
		case *ast.ValueSpec:
			for _, n := range s.Names {
				if n.IsExported() {
					check(n.Pos(), n.Name, docOf(s.Doc), d.Doc)
				}
			}
		}
	}
}

// exportedReceiver reports whether d is a function or a method of an
// exported type.
func exportedReceiver(d *ast.FuncDecl) bool {
	if d.Recv == nil {
		return true
	}
	t := d.Recv.List[0].Type
	if star, ok := t.(*ast.StarExpr); ok {
		t = star.X
	}
	switch x := t.(type) {
	case *ast.IndexExpr:
		t = x.X
	case *ast.IndexListExpr:
		t = x.X
	}
	id, ok := t.(*ast.Ident)
	return ok && id.IsExported()
}
