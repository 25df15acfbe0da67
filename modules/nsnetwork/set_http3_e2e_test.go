package nsnetwork_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/caddy-netns/caddy-netns/internal/testenv/e2e"
	"github.com/caddy-netns/caddy-netns/internal/testenv/nstest"
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

	for _, ns := range nss {
		expectHTTP2AndHTTP3(t, ns, "127.0.0.1:8443")
	}
}
