package nsproxy_test

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"

	"github.com/caddy-netns/caddy-netns/internal/testenv/e2e"
	"github.com/caddy-netns/caddy-netns/internal/testenv/nstest"
	"github.com/caddy-netns/caddy-netns/modules/nsmatch"
)

// A namespace that reaches a dial address through a placeholder is a
// value a client may control: here the NETNS TLV of a PROXY v2 header
// ({l4.proxy_protocol.netns}). With an allow list naming only the tenant,
// no value may steer the dial anywhere else, and in particular not into
// Caddy's own namespace (whose loopback services the operator never meant
// to expose) through a path such as /proc/self/ns/net: the exception that
// lets a config reach its own namespace is for what the operator wrote,
// not for values substituted per connection.
func TestPlaceholderCannotSteerIntoOwnNamespace(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	tenant := nstest.Add(t, 1)[0]
	port := nstest.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	startBackend(t, tenant, addr, "in-tenant")
	startBackend(t, "", addr, "in-caddys-own") // Caddy's own namespace
	caddyPort := nstest.FreePort(t)
	admin.MustLoad(t, fmt.Sprintf(`{
	admin %s
	netns {
		allow %s
	}
	layer4 {
		127.0.0.1:%d {
			route {
				proxy_protocol
			}
			route {
				netns_proxy netns/{l4.proxy_protocol.netns}/tcp/%s {
					dial_timeout 2s
				}
			}
		}
	}
}
`, strings.TrimPrefix(admin.URL, "http://"), tenant, caddyPort, addr), "caddyfile")
	caddyAddr := fmt.Sprintf("127.0.0.1:%d", caddyPort)

	if got, err := askWithNetnsTLV(caddyAddr, tenant, "hello"); err != nil || got != "in-tenant: hello" {
		t.Fatalf("TLV %q (allowed): got %q, %v; want the tenant's backend", tenant, got, err)
	}
	for _, v := range []string{
		"/proc/self/ns/net",
		"/proc/thread-self/ns/net",
		"/proc/1/ns/net",
		"/var/run/netns/" + tenant + "/../../../../proc/self/ns/net",
	} {
		got, err := askWithNetnsTLV(caddyAddr, v, "hello")
		if err == nil || got != "" {
			t.Errorf("TLV %q: reached %q; a value from a placeholder must not open a namespace the allow list does not name", v, got)
		}
	}
}

// askWithNetnsTLV connects to addr, sends a PROXY v2 header whose NETNS
// TLV is netns, then line, and returns the answer.
func askWithNetnsTLV(addr, netns, line string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	h := proxyproto.HeaderProxyFromAddrs(2, c.LocalAddr(), c.RemoteAddr())
	if err := h.SetTLVs([]proxyproto.TLV{{Type: nsmatch.TLVTypeNetns, Value: []byte(netns)}}); err != nil {
		return "", err
	}
	if _, err := h.WriteTo(c); err != nil {
		return "", err
	}
	if _, err := fmt.Fprintf(c, "%s\n", line); err != nil {
		return "", err
	}
	s, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(s), err
}
