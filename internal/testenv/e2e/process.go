package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// ProcessOptions says how StartProcessWith runs Caddy.
type ProcessOptions struct {
	// Wrapper prefixes the command, for example setpriv with the user and
	// capabilities to run as.
	Wrapper []string
	// Binary is the test binary to run. Default: this one (os.Args[0]).
	// Another user needs a copy it can read and execute: see
	// CopyExecutable.
	Binary string
	// Dir holds the initial config and is HOME. Default: a new t.TempDir().
	Dir string
	// Env is added to the environment.
	Env []string
}

// StartProcessWith runs Caddy in a child process as opts says and returns
// once its admin API answers, or fails the test when the process exits
// first or does not answer within 20s.
func StartProcessWith(t testing.TB, opts ProcessOptions) *Process {
	t.Helper()
	if opts.Binary == "" {
		opts.Binary = os.Args[0]
	}
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	admin := fmt.Sprintf("localhost:%d", port)
	cfg := filepath.Join(opts.Dir, "caddy.json")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`{"admin":{"listen":%q}}`, admin)), 0o644); err != nil {
		t.Fatal(err)
	}
	args := append(append([]string{}, opts.Wrapper...), opts.Binary, "run", "--config", cfg)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), RunCaddyEnv+"=1", "HOME="+opts.Dir,
		"XDG_CONFIG_HOME="+opts.Dir, "XDG_DATA_HOME="+opts.Dir)
	cmd.Env = append(cmd.Env, opts.Env...)
	p := &Process{Admin: Admin{URL: "http://" + admin}, cmd: cmd, out: new(bytes.Buffer)}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("caddy output:\n%s", p.out)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		if resp, err := http.Get(p.URL + "/config/"); err == nil {
			resp.Body.Close()
			return p
		}
		select {
		case <-exited:
			t.Fatalf("caddy exited: %v\n%s", cmd.ProcessState, p.out)
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("caddy did not start:\n%s", p.out)
	return nil
}

// CopyExecutable copies this test binary into a new directory that every
// user can read and enter, so that StartProcessWith can run it as another
// user; the directory is removed when the test ends. It returns the
// directory (also usable as ProcessOptions.Dir once chowned) and the copy.
func CopyExecutable(t testing.TB) (dir, binary string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "caddy-netns-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	binary = filepath.Join(dir, "caddy.test")
	dst, err := os.OpenFile(binary, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, binary
}

// Pid returns the process id of Caddy (the wrapper's, which execs Caddy).
func (p *Process) Pid() int { return p.cmd.Process.Pid }
