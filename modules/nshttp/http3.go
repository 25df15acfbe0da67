// Package nshttp holds the HTTP pieces of netns: the HTTP/3 (QUIC) socket
// of a netns listener of Caddy's http app.
package nshttp

import (
	"context"
	"net"
	"strconv"
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
//
// Caddy calls it only from NetworkAddress.ListenQUIC, when its listener
// pool has no QUIC listener for the address yet, with the context of the
// config that asks first. The QUIC listener it builds on the handle is
// then shared by every later config naming the address, across reloads,
// and Caddy closes the handle itself when the last of them lets go. So
// the handle is not closed when its first config ends, as other handles
// are, but only if by then Caddy's pool holds no QUIC listener on it: if
// building the QUIC listener failed, or the configs that shared it are all
// gone (then Caddy has already closed it and this is a no-op).
func listenHTTP3(ctx context.Context, network, host, portRange string, portOffset uint, _ net.ListenConfig) (any, error) {
	key := quicKey(host, portRange, portOffset)
	if i := strings.LastIndexByte(host, '/'); i > 0 {
		rest, h := host[:i], host[i:]
		if j := strings.LastIndexByte(rest, '/'); j >= 0 {
			inner := strings.Replace(strings.ToLower(rest[j+1:]), "tcp", "udp", 1)
			host = rest[:j+1] + inner + h
		}
	}
	h, err := nsnetwork.Open(ctx, host, portRange, portOffset)
	if err != nil {
		return nil, err
	}
	nsnetwork.CloseWhenDone(ctx, h, func() bool { return caddy.ListenerUsage("quic"+network, key) > 0 })
	return h, nil
}

// quicKey is the address under which Caddy's ListenQUIC keeps the QUIC
// listener for host and the port at portOffset of portRange
// (NetworkAddress.JoinHostPort).
func quicKey(host, portRange string, portOffset uint) string {
	start, _, _ := strings.Cut(portRange, "-")
	port, err := strconv.ParseUint(start, 10, 16)
	if err != nil {
		return "" // parse refuses it too
	}
	return net.JoinHostPort(host, strconv.FormatUint(port+uint64(portOffset), 10))
}
