package sctpvm

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// testBinary is one package's test binary, built for the guest.
type testBinary struct {
	ImportPath string
	Name       string // unique name in the guest: /tests/NAME.test, /pkg/NAME
	Dir        string // package source directory on the host
	Path       string // built binary on the host
}

// guestEnv is the build environment for the guest: static amd64 binaries.
func guestEnv() []string {
	return append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
}

func goTool() (string, error) {
	// go test puts $GOROOT/bin first in the test's PATH.
	if p, err := exec.LookPath("go"); err == nil {
		return p, nil
	}
	if root := os.Getenv("GOROOT"); root != "" {
		p := filepath.Join(root, "bin", "go")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("go tool not found in PATH")
}

func runGo(ctx context.Context, args ...string) ([]byte, error) {
	gobin, err := goTool()
	if err != nil {
		return nil, err
	}
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, gobin, args...)
	cmd.Env = guestEnv()
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return out, nil
}

// listPackages resolves the packages (import paths or patterns relative to
// the current directory) and skips those without tests.
func listPackages(ctx context.Context, pkgs []string) ([]testBinary, error) {
	out, err := runGo(ctx, append([]string{"list", "-f",
		"{{.ImportPath}}\t{{.Name}}\t{{.Dir}}\t{{len .TestGoFiles}}\t{{len .XTestGoFiles}}"}, pkgs...)...)
	if err != nil {
		return nil, err
	}
	var bins []testBinary
	used := make(map[string]int)
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 5 {
			return nil, fmt.Errorf("go list: unexpected line %q", line)
		}
		if f[3] == "0" && f[4] == "0" {
			continue
		}
		name := f[1]
		if n := used[name]; n > 0 {
			name = fmt.Sprintf("%s%d", name, n+1)
		}
		used[f[1]]++
		bins = append(bins, testBinary{ImportPath: f[0], Name: name, Dir: f[2]})
	}
	return bins, nil
}

// recordInputs opens the source directories of the main module's packages
// that the guest's binaries are built from. Go's test cache records files
// and directories a test opens (with their entries' sizes and mtimes), so a
// cached result of the guest run is reused only while that source is
// unchanged; without this a stale PASS could be replayed after an edit.
func recordInputs(ctx context.Context, pkgs []string) error {
	out, err := runGo(ctx, append([]string{"list", "-deps", "-test", "-f",
		"{{if .Module}}{{if .Module.Main}}{{.Dir}}{{end}}{{end}}"}, pkgs...)...)
	if err != nil {
		return err
	}
	seen := make(map[string]bool)
	for _, dir := range strings.Fields(string(out)) {
		if seen[dir] {
			continue
		}
		seen[dir] = true
		if f, err := os.Open(dir); err == nil {
			f.Readdirnames(-1)
			f.Close()
		}
	}
	if out, err := runGo(ctx, "env", "GOMOD"); err == nil {
		if gomod := strings.TrimSpace(string(out)); gomod != "" && gomod != os.DevNull {
			os.ReadFile(gomod)
			os.ReadFile(strings.TrimSuffix(gomod, ".mod") + ".sum")
		}
	}
	return nil
}

// build compiles each package's test binary into dir.
func build(ctx context.Context, dir string, bins []testBinary) error {
	for i := range bins {
		b := &bins[i]
		b.Path = filepath.Join(dir, b.Name+".test")
		if _, err := runGo(ctx, "test", "-c", "-o", b.Path, b.ImportPath); err != nil {
			return err
		}
	}
	return nil
}
