package nshttp

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/pires/go-proxyproto"

	"github.com/caddy-netns/caddy-netns/modules/nsmatch"
)

// writeProxyHeader sends the PROXY header (v1 or v2) for the request's
// client, as Caddy's http transport does; with v2 and a namespace, the
// NETNS TLV too. The destination is not known and is sent as zeros.
func writeProxyHeader(conn net.Conn, version string, dr *dialReq) error {
	src, err := netip.ParseAddrPort(dr.client)
	if err != nil {
		return fmt.Errorf("client address %q: %w", dr.client, err)
	}
	var v byte
	switch version {
	case "v1":
		v = 1
	case "v2":
		v = 2
	default:
		return fmt.Errorf("unknown PROXY protocol version %q", version)
	}
	dst := &net.TCPAddr{IP: net.IPv4zero}
	if src.Addr().Is6() && !src.Addr().Is4In6() {
		dst.IP = net.IPv6zero
	}
	h := proxyproto.HeaderProxyFromAddrs(v, net.TCPAddrFromAddrPort(src), dst)
	if v == 2 && dr.netns != "" {
		if err := h.SetTLVs([]proxyproto.TLV{{Type: nsmatch.TLVTypeNetns, Value: []byte(dr.netns)}}); err != nil {
			return err
		}
	}
	_, err = h.WriteTo(conn)
	return err
}
