package caddynetns_test

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/caddy-netns/caddy-netns"

// layer is one row of ARCHITECTURE.md: the packages it covers (a path
// relative to the module, "x/" for everything below x) and what they may
// import from this module. caddyFree layers may not depend on Caddy or
// caddy-l4 at all, directly or not.
type layer struct {
	pkgs      string
	mayImport []string
	caddyFree bool
}

// layers is the picture of ARCHITECTURE.md; the first row that covers a
// package applies. Keep the two in step.
var layers = []layer{
	{pkgs: "kernel/nsset", mayImport: []string{"kernel/"}, caddyFree: true},
	{pkgs: "kernel/targets", mayImport: []string{"kernel/nsenter"}, caddyFree: true},
	{pkgs: "kernel/", mayImport: []string{"kernel/"}, caddyFree: true},
	{pkgs: "address", mayImport: []string{"kernel/"}, caddyFree: true},
	{pkgs: "allow", mayImport: []string{"kernel/"}, caddyFree: true},
	{pkgs: "modules/nsnetwork", mayImport: []string{"kernel/", "address", "allow"}},
	{pkgs: "modules/nsmatch", mayImport: []string{"kernel/", "address", "allow", "modules/nsnetwork"}},
	{pkgs: "modules/", mayImport: []string{"kernel/", "address", "allow", "modules/nsnetwork", "modules/nsmatch"}},
	{pkgs: "internal/testenv/", mayImport: []string{"kernel/", "internal/testenv/"}},
	{pkgs: "examples/", mayImport: []string{"kernel/", "address"}},
	{pkgs: "caddyfile", mayImport: nil},
	{pkgs: "", mayImport: []string{"modules/"}}, // the root: imports.go
}

// testMayImport is what tests may import on top of their layer's set: the
// test-support tree, and (outside the Caddy-free layers) every module, to
// run a Caddy with all of them.
var testMayImport = []string{"internal/testenv/"}
var testMayImportModules = []string{"", "modules/"}

var caddyPrefixes = []string{"github.com/caddyserver/", "github.com/mholt/caddy-l4"}

type pkg struct {
	ImportPath                         string
	Imports, TestImports, XTestImports []string
	Deps                               []string
}

func TestLayering(t *testing.T) {
	pkgs := listPackages(t)
	byPath := map[string]pkg{}
	for _, p := range pkgs {
		byPath[p.ImportPath] = p
	}
	for _, p := range pkgs {
		rel, _ := relative(p.ImportPath)
		l, ok := layerOf(rel)
		if !ok {
			t.Errorf("package %s is in no layer of ARCHITECTURE.md (add it to layers)", p.ImportPath)
			continue
		}
		check := func(imports []string, extra ...[]string) {
			for _, imp := range imports {
				r, ours := relative(imp)
				if !ours || r == rel {
					continue
				}
				allowed := covers(l.mayImport, r)
				for _, e := range extra {
					allowed = allowed || covers(e, r)
				}
				if !allowed {
					t.Errorf("%s imports %s, outside what its layer %q may import %q (see ARCHITECTURE.md)", p.ImportPath, imp, l.pkgs, l.mayImport)
				}
				if l.caddyFree {
					if dep, ok := byPath[imp]; ok {
						if c := caddyDep(dep); c != "" {
							t.Errorf("%s (Caddy-free) imports %s, which depends on %s", p.ImportPath, imp, c)
						}
					}
				}
			}
		}
		check(p.Imports)
		if l.caddyFree {
			check(append(p.TestImports, p.XTestImports...), testMayImport)
			if c := caddyDep(p); c != "" {
				t.Errorf("%s (Caddy-free) depends on %s", p.ImportPath, c)
			}
		} else {
			check(append(p.TestImports, p.XTestImports...), testMayImport, testMayImportModules)
		}
	}
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-e", "-json=ImportPath,Imports,TestImports,XTestImports,Deps", "./...")
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v (the layering test needs the go command on PATH)", err)
	}
	var pkgs []pkg
	for dec := json.NewDecoder(strings.NewReader(string(out))); ; {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	return pkgs
}

// relative returns path relative to the module ("" for the root) and
// whether it is in the module at all.
func relative(path string) (string, bool) {
	if path == module {
		return "", true
	}
	r, ok := strings.CutPrefix(path, module+"/")
	return r, ok
}

func layerOf(rel string) (layer, bool) {
	for _, l := range layers {
		if covers([]string{l.pkgs}, rel) {
			return l, true
		}
	}
	return layer{}, false
}

// covers reports whether one of pats covers rel: "x/" covers everything
// below x, anything else only itself.
func covers(pats []string, rel string) bool {
	for _, p := range pats {
		if strings.HasSuffix(p, "/") && strings.HasPrefix(rel, p) || rel == p {
			return true
		}
	}
	return false
}

func caddyDep(p pkg) string {
	for _, d := range p.Deps {
		for _, c := range caddyPrefixes {
			if strings.HasPrefix(d, c) {
				return d
			}
		}
	}
	return ""
}
