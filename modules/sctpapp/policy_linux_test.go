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

// An upstream namespace that came from placeholders (values a client may
// influence) is opened strictly: Caddy's own namespace, allowed to the
// config's own addresses, is refused unless the list names it.
func TestDialFromPlaceholdersIsStrict(t *testing.T) {
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
	tgt.strict = true
	if _, err := dial(context.Background(), pol, tgt, sctpnet.Config{}); !errors.Is(err, allow.ErrNotAllowed) {
		t.Fatalf("dial: %v, want refused by the allow list", err)
	}
}
