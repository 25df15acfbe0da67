package nstest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// HAProxy runs Debian's haproxy in the foreground with the given proxy
// sections (frontend, backend, namespace_list ...) in mode tcp, and stops
// it when the test ends. It fails the test, saying how to install it,
// when haproxy is missing. It returns haproxy's process id.
func HAProxy(t testing.TB, sections string) int {
	t.Helper()
	path, err := exec.LookPath("haproxy")
	if err != nil {
		t.Fatal("haproxy is not installed: apt-get install haproxy (the interop tests need Debian's HAProxy, built with namespace support)")
	}
	cfg := filepath.Join(t.TempDir(), "haproxy.cfg")
	conf := "global\n\tlog stderr format raw local0 warning\n" +
		"defaults\n\tmode tcp\n\tlog global\n\ttimeout connect 5s\n\ttimeout client 30s\n\ttimeout server 30s\n" + sections
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(path, "-db", "-f", cfg)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd.Process.Pid
}
