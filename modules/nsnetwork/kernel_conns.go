package nsnetwork

import (
	"net"
	"os"
	"strconv"

	"github.com/caddy-netns/caddy-netns/kernel/nsenter"
)

// KernelOpenConns returns the kernel's count of TCP connections to the
// port of the pooled socket s (as Sockets or Listeners returned it) in its
// namespace: accepted or queued, not in TIME_WAIT. It costs a walk of the
// kernel's TCP hash table in that namespace (milliseconds), so callers
// that list many sockets ask for the few they show. ok is false for a
// socket that is not TCP; n is -1 when the count failed or the socket is
// gone.
func KernelOpenConns(s Socket) (n int, ok bool) {
	if !isTCP(s.Network) {
		return -1, false
	}
	pool.Lock()
	p := pool.m[poolKey{ns: s.NamespaceID, network: s.Network, address: s.Address}]
	var file *os.File
	if p != nil && p.opening == nil {
		file = p.file
	}
	pool.Unlock()
	if file == nil {
		return -1, true
	}
	_, port, err := net.SplitHostPort(s.Address)
	if err != nil {
		return -1, true
	}
	pn, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return -1, true
	}
	// The file may be closed meanwhile: then this fails and the count
	// stays unknown.
	c, err := nsenter.OpenTCPConns(file, uint16(pn))
	if err != nil {
		return -1, true
	}
	return c, true
}
