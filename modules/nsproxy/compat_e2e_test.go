package nsproxy_test

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"

	"github.com/caddy-netns/caddy-netns/internal/testenv/e2e"
	"github.com/caddy-netns/caddy-netns/internal/testenv/nstest"
	"github.com/caddy-netns/caddy-netns/kernel/nsenter"
)

// caddy-l4's proxy configs, with only the handler name and the addresses
// changed, reach backends that exist only in another namespace: the JSON
// form (dial as an array, health checks, load balancing, TLS to the
// upstream) and the Caddyfile form of caddy-l4's own adapt test
// (gd_handler_proxy_health_rise_fall, with the upstream dialed inside the
// namespace).
func TestCaddyL4ProxyConfigsRunWithUpstreamsInNamespace(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	nss := nstest.Add(t, 2)
	client, back := nss[0], nss[1]
	startBackend(t, back, "127.0.0.1:9000", "plain")
	startTLSBackend(t, back, "127.0.0.1:9443", "tls")

	admin.MustLoad(t, layer4JSON(admin, map[string]string{
		"rr": proxyServer([]string{"netns/" + client + "/tcp/127.0.0.1:8000"}, `{
			"handler": "netns_proxy",
			"health_checks": {
				"active": {"interval": "1s", "timeout": "2s", "fall": 2, "rise": 1},
				"passive": {"fail_duration": "5s", "max_fails": 10, "unhealthy_connection_count": 5}
			},
			"load_balancing": {"selection": {"policy": "round_robin"}, "try_duration": "5s", "try_interval": "250ms"},
			"upstreams": [
				{"dial": ["netns/`+back+`/tcp/127.0.0.1:9000"]},
				{"dial": ["netns/`+back+`/tcp/127.0.0.1:9443"], "tls": {"insecure_skip_verify": true}, "max_connections": 2}
			]
		}`),
	}), "json")
	seen := map[string]int{}
	for i := range 6 {
		got, err := ask(client, "tcp", "127.0.0.1:8000", fmt.Sprint("line ", i))
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		tag, _, _ := strings.Cut(got, ":")
		seen[tag]++
	}
	if seen["plain"] != 3 || seen["tls"] != 3 {
		t.Errorf("round robin over a plain and a TLS upstream in %s: %v", back, seen)
	}

	// caddy-l4's gd_handler_proxy_health_rise_fall, proxy renamed and the
	// addresses put in namespaces.
	admin.MustLoad(t, fmt.Sprintf(`{
	admin %s
	layer4 {
		netns/%s/tcp/127.0.0.1:8001 {
			route {
				netns_proxy {
					health_interval 1s
					health_timeout 2s
					health_fall 2
					health_rise 3
					upstream netns/%s/tcp/127.0.0.1:9000
				}
			}
		}
	}
}
`, strings.TrimPrefix(admin.URL, "http://"), client, back), "caddyfile")
	expectAnswer(t, client, "tcp", "127.0.0.1:8001", "plain")
}

// With proxy_protocol v2 and proxy_protocol_netns, netns_proxy sends the
// client's address and the namespace the connection arrived in (NETNS
// TLV, type 0x30) to an upstream inside another namespace.
func TestProxyProtocolV2CarriesArrivalNamespace(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	nss := nstest.Add(t, 2)
	client, back := nss[0], nss[1]
	startPPBackend(t, back, "127.0.0.1:9000")
	admin.MustLoad(t, fmt.Sprintf(`{
	admin %s
	layer4 {
		netns/%s/tcp/127.0.0.1:8000 {
			route {
				netns_proxy netns/%s/tcp/127.0.0.1:9000 {
					proxy_protocol v2
					proxy_protocol_netns
				}
			}
		}
	}
}
`, strings.TrimPrefix(admin.URL, "http://"), client, back), "caddyfile")
	got, err := ask(client, "tcp", "127.0.0.1:8000", "hello")
	if want := "netns=" + client + " src=127.0.0.1 hello"; err != nil || got != want {
		t.Errorf("got %q, %v; want %q", got, err, want)
	}
}

// startPPBackend reads a PROXY header on each connection and answers each
// line with "netns=<NETNS TLV> src=<source IP> <line>".
func startPPBackend(t testing.TB, ns, addr string) {
	t.Helper()
	ln := nstest.Listen(t, ns, "tcp", addr)
	nstest.AcceptEach(t, ln, func(c net.Conn) {
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		r := bufio.NewReader(c)
		h, err := proxyproto.Read(r)
		if err != nil {
			fmt.Fprintf(c, "no PROXY header: %v\n", err)
			return
		}
		netns := ""
		tlvs, _ := h.TLVs()
		for _, tlv := range tlvs {
			if tlv.Type == 0x30 {
				netns = string(tlv.Value)
			}
		}
		src, _, _ := net.SplitHostPort(h.SourceAddr.String())
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			fmt.Fprintf(c, "netns=%s src=%s %s\n", netns, src, sc.Text())
		}
	})
}

// startTLSBackend is startBackend over TLS (TCP only), with a throwaway
// self-signed certificate.
func startTLSBackend(t testing.TB, ns, addr, tag string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: tag},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	n := openNS(t, ns)
	ln, err := nsenter.Listen(n, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := nsenter.ListenPacket(n, "udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	tln := tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}})
	nstest.Serve(t, tag, tln, pc)
}
