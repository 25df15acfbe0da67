//go:build !linux || 386

package sctpapp

import (
	"context"
	"fmt"
	"net"

	"github.com/caddy-netns/caddy-netns/allow"
	"github.com/caddy-netns/caddy-netns/kernel/sctpnet"
)

func registerInner() {}

func listenOwn(ctx context.Context, network, host, portRange string, portOffset uint, _ net.ListenConfig) (any, error) {
	return nil, fmt.Errorf("%s address %q: %w", network, net.JoinHostPort(host, portRange), sctpnet.ErrNotSupported)
}

func dial(ctx context.Context, pol *allow.Policy, t target, cfg sctpnet.Config) (*sctpnet.Conn, error) {
	return nil, sctpnet.ErrNotSupported
}
