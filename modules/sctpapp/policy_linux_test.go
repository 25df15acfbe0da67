//go:build linux && !386

package sctpapp

import (
	"context"
	"errors"
	"testing"

	"github.com/caddy-netns/caddy-netns/allow"
	"github.com/caddy-netns/caddy-netns/kernel/sctpnet"
)

// An upstream in a namespace outside the config's allow list is not
// opened: the dial fails before any socket exists.
func TestDialChecksAllowList(t *testing.T) {
	l, err := allow.Compile("this config's netns allow list", []string{"ran-*"})
	if err != nil {
		t.Fatal(err)
	}
	pol, err := allow.New(l)
	if err != nil {
		t.Fatal(err)
	}
	tgt, err := parseTarget("netns/core/sctp/10.0.0.1:38412")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dial(context.Background(), pol, tgt, sctpnet.Config{}); !errors.Is(err, allow.ErrNotAllowed) {
		t.Fatalf("dial: %v, want refused by the allow list", err)
	}
}

// Caddy's own namespace needs the allow list like any other: an upstream
// namespace from placeholders (values a client may influence) or from a
// generated config cannot reach it through /proc/self/ns/net.
func TestDialIntoOwnNamespaceNeedsTheList(t *testing.T) {
	l, err := allow.Compile("this config's netns allow list", []string{"ran-*"})
	if err != nil {
		t.Fatal(err)
	}
	pol, err := allow.New(l)
	if err != nil {
		t.Fatal(err)
	}
	tgt, err := parseTarget("netns//proc/self/ns/net/sctp/127.0.0.1:38412")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dial(context.Background(), pol, tgt, sctpnet.Config{}); !errors.Is(err, allow.ErrNotAllowed) {
		t.Fatalf("dial: %v, want refused by the allow list", err)
	}
}
