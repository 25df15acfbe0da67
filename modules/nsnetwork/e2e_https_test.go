package nsnetwork_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/caddy-netns/caddy-netns/internal/testenv/e2e"
	"github.com/caddy-netns/caddy-netns/internal/testenv/nstest"
	"github.com/caddy-netns/caddy-netns/kernel/nsenter"
	"github.com/caddy-netns/caddy-netns/modules/nsnetwork"
)

// An HTTPS site bound inside a namespace with Caddy's default protocols
// serves HTTP/1.1, HTTP/2 and HTTP/3; the QUIC socket is opened in the same
// namespace.
func TestHTTPSAndHTTP3InNamespace(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	ns := nstest.Add(t, 1)[0]
	admin.MustLoad(t, httpsConfig(t, admin, "netns/"+ns+"/tcp/127.0.0.1"), "caddyfile")

	var udp bool
	for _, s := range nsnetwork.Sockets() {
		if s.Namespace == ns && s.Network == "udp" && s.Address == "127.0.0.1:8443" {
			udp = true
		}
	}
	if !udp {
		t.Fatalf("no QUIC socket in the namespace: %+v", nsnetwork.Sockets())
	}

	expectHTTP2AndHTTP3(t, ns, "127.0.0.1:8443")
}

// httpsConfig is a Caddyfile whose sites, one for each bind address in
// turn, answer "hello over <protocol>" on https://localhost:8443,
// https://localhost:8444, ..., with local certificates kept in a directory
// of the test.
func httpsConfig(t testing.TB, admin *e2e.Admin, binds ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "{\n\tadmin %s\n\tstorage file_system %s\n\tlocal_certs\n\tskip_install_trust\n\tauto_https disable_redirects\n}\n",
		strings.TrimPrefix(admin.URL, "http://"), t.TempDir())
	for i, bind := range binds {
		fmt.Fprintf(&b, "https://localhost:%d {\n\tbind %s\n\trespond \"hello over {http.request.proto}\"\n}\n", 8443+i, bind)
	}
	return b.String()
}

// expectHTTP2AndHTTP3 asks https://localhost:<port>/ over HTTP/2 (TCP) and
// HTTP/3 (QUIC), with both clients' sockets inside ns and addr as the
// server's address there; the site answers with its protocol.
func expectHTTP2AndHTTP3(t *testing.T, ns, addr string) {
	t.Helper()
	url := siteURL(t, addr)
	h2 := http2Client(ns, addr)
	defer h2.CloseIdleConnections()
	expectBody(t, h2, url, "hello over HTTP/2.0")

	h3, done, err := http3Client(ns, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	expectBody(t, h3, url, "hello over HTTP/3.0")
}

// siteURL is https://localhost:<port of addr>/.
func siteURL(t *testing.T, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return "https://localhost:" + port + "/"
}

var siteTLS = &tls.Config{ServerName: "localhost", InsecureSkipVerify: true}

// http2Client connects over TCP from inside ns to addr.
func http2Client(ns, addr string) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   siteTLS,
		ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialIn(ns, network, addr)
		},
	}}
}

// http3Client connects over QUIC from a UDP socket inside ns to addr; done
// closes its connections.
func http3Client(ns, addr string) (c *http.Client, done func(), err error) {
	nsh, err := nsenter.Open(ns)
	if err != nil {
		return nil, nil, err
	}
	var (
		mu  sync.Mutex
		pcs []net.PacketConn // quic-go does not close a conn it did not open
	)
	tr := &http3.Transport{
		TLSClientConfig: siteTLS,
		Dial: func(ctx context.Context, _ string, tlsCfg *tls.Config, cfg *quic.Config) (*quic.Conn, error) {
			pc, err := nsenter.ListenPacket(nsh, "udp", "127.0.0.1:0")
			if err != nil {
				return nil, err
			}
			mu.Lock()
			pcs = append(pcs, pc)
			mu.Unlock()
			raddr, err := net.ResolveUDPAddr("udp", addr)
			if err != nil {
				pc.Close()
				return nil, err
			}
			conn, err := quic.DialEarly(ctx, pc, raddr, tlsCfg, cfg)
			if err != nil {
				pc.Close()
			}
			return conn, err
		},
	}
	done = func() {
		tr.Close()
		mu.Lock()
		for _, pc := range pcs {
			pc.Close()
		}
		mu.Unlock()
		nsh.Close()
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: tr}, done, nil
}

// expectBody GETs url, retrying for a few seconds while Caddy is still
// issuing its certificate.
func expectBody(t *testing.T, c *http.Client, url, want string) {
	t.Helper()
	var resp *http.Response
	var err error
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		resp, err = c.Get(url)
		if err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if string(body) != want {
		t.Fatalf("GET %s: %q, want %q", url, body, want)
	}
}
