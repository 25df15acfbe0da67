package caddynetns_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// defaultRule is what the comment of every config field must say: its
// default ("Default: ...", "default ...") or that it is required. The
// field comments are the JSON docs (caddyserver.com/docs/json reads them),
// so a field whose default is not written there is undocumented.
var defaultRule = regexp.MustCompile(`(?i)\bdefault\b|\brequired\b`)

// TestConfigFieldsDocumentDefaults checks every exported, JSON-visible field
// of every Caddy module struct under modules/ (a type with a CaddyModule
// method) and of the struct types those fields use from the same package.
func TestConfigFieldsDocumentDefaults(t *testing.T) {
	dirs, err := filepath.Glob("modules/*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no module packages under modules/: %v", err)
	}
	var modules int
	for _, dir := range dirs {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			continue
		}
		structs, roots := parseStructs(t, dir)
		modules += len(roots)
		seen := map[string]bool{}
		var check func(name string)
		check = func(name string) {
			if seen[name] {
				return
			}
			seen[name] = true
			st, ok := structs[name]
			if !ok {
				return
			}
			for _, f := range st.Fields.List {
				tag := ""
				if f.Tag != nil {
					tag = reflect.StructTag(strings.Trim(f.Tag.Value, "`")).Get("json")
				}
				if tag == "-" {
					continue
				}
				for _, n := range f.Names {
					if !n.IsExported() {
						continue
					}
					if !defaultRule.MatchString(f.Doc.Text()) {
						t.Errorf("%s: field %s.%s: its comment does not state its default (or that it is required)", dir, name, n.Name)
					}
				}
				for _, used := range typeNames(f.Type) {
					check(used)
				}
			}
		}
		for _, r := range roots {
			check(r)
		}
	}
	if modules < 7 {
		t.Errorf("found %d module types under modules/, want at least 7", modules)
	}
}

// parseStructs returns the struct types of the package in dir and the
// names of those with a CaddyModule method.
func parseStructs(t *testing.T, dir string) (map[string]*ast.StructType, []string) {
	t.Helper()
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, dir, func(fi os.FileInfo) bool {
		return !strings.HasSuffix(fi.Name(), "_test.go")
	}, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	structs := map[string]*ast.StructType{}
	var roots []string
	for _, p := range pkgs {
		for _, f := range p.Files {
			for _, d := range f.Decls {
				switch d := d.(type) {
				case *ast.GenDecl:
					for _, s := range d.Specs {
						if ts, ok := s.(*ast.TypeSpec); ok {
							if st, ok := ts.Type.(*ast.StructType); ok {
								structs[ts.Name.Name] = st
							}
						}
					}
				case *ast.FuncDecl:
					if d.Recv != nil && d.Name.Name == "CaddyModule" && len(d.Recv.List) == 1 {
						if names := typeNames(d.Recv.List[0].Type); len(names) == 1 {
							roots = append(roots, names[0])
						}
					}
				}
			}
		}
	}
	sort.Strings(roots)
	return structs, roots
}

// typeNames returns the package-local type names an expression uses.
func typeNames(e ast.Expr) []string {
	switch e := e.(type) {
	case *ast.Ident:
		return []string{e.Name}
	case *ast.StarExpr:
		return typeNames(e.X)
	case *ast.ArrayType:
		return typeNames(e.Elt)
	case *ast.MapType:
		return typeNames(e.Value)
	}
	return nil
}
