package netnslistener_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/caddy-netns/caddy-netns/netnslistener/internal/e2e"
	"github.com/caddy-netns/caddy-netns/netnslistener/internal/nstest"
	"github.com/caddy-netns/caddy-netns/netnslistener/nsenter"
)

// An HTTPS site bound on a set serves HTTP/2 and HTTP/3 in every member:
// the QUIC socket is a UDP set whose replies leave from each member.
func TestSetHTTPSAndHTTP3(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	prefix := setPrefix()
	nss := []string{prefix + "a", prefix + "b"}
	addNamed(t, nss...)
	admin.MustLoad(t, fmt.Sprintf(`{
	admin %s
	storage file_system %s
	local_certs
	skip_install_trust
	auto_https disable_redirects
}
https://localhost:8443 {
	bind netns/%s*/tcp/127.0.0.1
	respond "hello over {http.request.proto}"
}
`, strings.TrimPrefix(admin.URL, "http://"), t.TempDir(), prefix), "caddyfile")

	tlsConf := &tls.Config{ServerName: "localhost", InsecureSkipVerify: true}
	for _, ns := range nss {
		h2 := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig:   tlsConf,
			ForceAttemptHTTP2: true,
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return dialIn(ns, network, "127.0.0.1:8443")
			},
		}}
		expectBody(t, h2, "https://localhost:8443/", "hello over HTTP/2.0")

		nsh, err := nsenter.Open(ns)
		if err != nil {
			t.Fatal(err)
		}
		defer nsh.Close()
		h3 := &http.Client{Timeout: 10 * time.Second, Transport: &http3.Transport{
			TLSClientConfig: tlsConf,
			Dial: func(ctx context.Context, addr string, tlsCfg *tls.Config, cfg *quic.Config) (*quic.Conn, error) {
				pc, err := nsenter.ListenPacket(nsh, "udp", "127.0.0.1:0")
				if err != nil {
					return nil, err
				}
				raddr, err := net.ResolveUDPAddr("udp", "127.0.0.1:8443")
				if err != nil {
					return nil, err
				}
				return quic.DialEarly(ctx, pc, raddr, tlsCfg, cfg)
			},
		}}
		defer h3.Transport.(*http3.Transport).Close()
		expectBody(t, h3, "https://localhost:8443/", "hello over HTTP/3.0")
	}
}
