package sctpapp

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/caddyserver/caddy/v2"
)

// ErrNoKernelSCTP is wrapped by listen and dial errors when the kernel
// refuses to create an SCTP socket (EPROTONOSUPPORT).
var ErrNoKernelSCTP = errors.New("the kernel has no SCTP support (load it with `modprobe sctp`; a kernel built without CONFIG_IP_SCTP cannot run the sctp app)")

// OwnNamespace is the namespace path that stands for Caddy's own network
// namespace in the socket pool, for listen addresses sctp/<host>:<port>.
const OwnNamespace = "/proc/self/ns/net"

// explain adds ErrNoKernelSCTP to the error of a socket call that the
// kernel refused for want of SCTP.
func explain(err error) error {
	if err != nil && errors.Is(err, syscall.EPROTONOSUPPORT) && !errors.Is(err, ErrNoKernelSCTP) {
		return fmt.Errorf("%w: %w", err, ErrNoKernelSCTP)
	}
	return err
}

func init() {
	for _, network := range []string{"sctp", "sctp4", "sctp6"} {
		caddy.RegisterNetwork(network, listenOwn)
	}
	registerInner()
}
