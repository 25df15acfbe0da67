// Package nshttp holds the HTTP pieces of netns: the HTTP/3 (QUIC) socket
// of a netns listener of Caddy's http app.
package nshttp

import (
	"context"
	"net"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-netns/caddy-netns/modules/nsnetwork"
)

// networkHTTP3 is the network Caddy's http app uses for the HTTP/3 (QUIC)
// socket of a netns listener: the same namespace and address, over UDP.
const networkHTTP3 = "netns-h3"

func init() {
	caddy.RegisterNetwork(networkHTTP3, listenHTTP3)
	caddyhttp.RegisterNetworkHTTP3(nsnetwork.Network, networkHTTP3)
}

// listenHTTP3 turns netns/ns1/tcp/:443 into netns/ns1/udp/:443.
func listenHTTP3(ctx context.Context, network, host, portRange string, portOffset uint, cfg net.ListenConfig) (any, error) {
	if i := strings.LastIndexByte(host, '/'); i > 0 {
		rest, h := host[:i], host[i:]
		if j := strings.LastIndexByte(rest, '/'); j >= 0 {
			inner := strings.Replace(strings.ToLower(rest[j+1:]), "tcp", "udp", 1)
			host = rest[:j+1] + inner + h
		}
	}
	return nsnetwork.ListenNetwork(ctx, network, host, portRange, portOffset, cfg)
}
