package nstest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

// HAProxySendingNetns returns the sections of an HAProxy that listens on
// 127.0.0.1:port inside each namespace of nss (bind ... namespace X) and
// sends every connection to 127.0.0.1:to with a PROXY v2 header whose
// NETNS TLV names the namespace the client connected in.
func HAProxySendingNetns(nss []string, port, to int) string {
	var b strings.Builder
	b.WriteString("\nfrontend fe\n")
	for _, ns := range nss {
		fmt.Fprintf(&b, "\tbind 127.0.0.1:%d namespace %s\n", port, ns)
	}
	fmt.Fprintf(&b, "\tdefault_backend be\nbackend be\n\tserver caddy 127.0.0.1:%d send-proxy-v2\n", to)
	return b.String()
}

// HAProxyDialingNetns returns the sections of an HAProxy that accepts
// connections with a PROXY header on 127.0.0.1:port and dials addr inside
// the namespace the header's NETNS TLV names (server ... namespace *),
// which must be one of nss.
func HAProxyDialingNetns(nss []string, port int, addr string) string {
	var b strings.Builder
	b.WriteString("\nnamespace_list\n")
	for _, ns := range nss {
		fmt.Fprintf(&b, "\tnamespace %s\n", ns)
	}
	fmt.Fprintf(&b, "frontend fe\n\tbind 127.0.0.1:%d accept-proxy\n\tdefault_backend be\nbackend be\n\tserver ns %s namespace *\n", port, addr)
	return b.String()
}
