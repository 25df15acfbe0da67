package sctpapp_test

import (
	"testing"

	"github.com/caddy-netns/caddy-netns/internal/testenv/sctptest"
	"github.com/caddy-netns/caddy-netns/internal/testenv/sctpvm"
)

// guestPackages are the packages whose tests need SCTP. Where the host
// kernel has none, TestSCTPGuest runs them inside a qemu guest that has it.
// Add a package here when its tests call sctptest.RequireSCTP.
var guestPackages = []string{
	".",
	"github.com/caddy-netns/caddy-netns/internal/testenv/sctptest",
	"github.com/caddy-netns/caddy-netns/kernel/sctpnet",
	"github.com/caddy-netns/caddy-netns/kernel/sctprelay",
}

// TestSCTPGuest runs the SCTP test packages inside the qemu guest when the
// host kernel has no SCTP. Where it has, those tests ran on the host and
// this one skips. Without qemu, the cloud kernel or busybox-static it
// fails, naming the command that installs them.
func TestSCTPGuest(t *testing.T) {
	if sctptest.InGuest() {
		sctptest.SkipElsewhere(t, "already inside the guest")
	}
	if err := sctptest.Supported(); err == nil {
		sctptest.SkipElsewhere(t, "the host kernel has SCTP: the SCTP tests run on the host")
	}
	sctpvm.Run(t, sctpvm.Config{Packages: guestPackages})
}
