package sctpapp_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/caddy-netns/caddy-netns/internal/testenv/sctptest"
)

// Where the kernel has no SCTP, a config that listens on sctp fails to
// load with an error that says so, and the config running before keeps
// serving. This runs on hosts without SCTP (the build machines).
func TestLoadWithoutKernelSCTPFailsClearly(t *testing.T) {
	if sctptest.Supported() == nil {
		sctptest.SkipElsewhere(t, "the kernel has SCTP: this test of the error on kernels without SCTP runs on hosts without it, such as CI's")
	}
	a := startCaddy(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	httpAddr := l.Addr().String()
	l.Close()
	httpApp := fmt.Sprintf(`"http":{"servers":{"s":{"listen":[%q],"routes":[{"handle":[{"handler":"static_response","body":"still here"}]}]}}}`, httpAddr)
	a.mustLoad(t, fmt.Sprintf(`{%s,"apps":{%s}}`, a.adminJSON(), httpApp))
	get := func() string {
		t.Helper()
		c := &http.Client{Timeout: 10 * time.Second}
		resp, err := c.Get("http://" + httpAddr + "/")
		if err != nil {
			t.Fatalf("GET after the failed load: %v", err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if got := get(); got != "still here" {
		t.Fatalf("before: %q", got)
	}

	listens := []string{"sctp/127.0.0.1:38412", "sctp6/[::1]:38412"}
	if os.Geteuid() == 0 {
		ns, err := sctptest.CreateNetns("")
		if err != nil {
			t.Fatal(err)
		}
		defer ns.Delete()
		listens = append(listens, "netns/"+ns.Name+"/sctp/:38412")
	}
	for _, listen := range listens {
		cfg := a.sctpConfig(map[string]string{"n2": proxyServer([]string{listen}, "sctp/127.0.0.1:38413")}, httpApp)
		err := a.load(cfg)
		if err == nil {
			t.Fatalf("%s: load succeeded without kernel SCTP", listen)
		}
		t.Logf("%s: %v", listen, err)
		for _, want := range []string{"no SCTP support", "protocol not supported", listen} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: load error %q does not mention %q", listen, err, want)
			}
		}
		if got := get(); got != "still here" {
			t.Fatalf("%s: after the failed load: %q", listen, got)
		}
	}
}
