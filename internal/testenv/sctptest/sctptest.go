// Package sctptest holds helpers for tests that need SCTP: it tells whether
// the running kernel has SCTP, whether the test runs inside the qemu guest
// that internal/testenv/sctpvm boots, and (on Linux) it makes throwaway
// network namespaces and veth pairs without iproute2, because the guest's
// busybox `ip` cannot: through vishvananda/netlink, which works in the
// guest's static test binaries like anywhere else.
package sctptest

import (
	"fmt"
	"os"
	"testing"
)

// GuestEnv is set to "1" by the sctpvm guest's init for every test binary
// it runs. Tests read it through InGuest.
const GuestEnv = "NETNS_SCTP_GUEST"

// InGuest reports whether the test runs inside the sctpvm qemu guest.
func InGuest() bool { return os.Getenv(GuestEnv) == "1" }

// InCI reports whether the test runs in CI (CI=true), where a skipped
// privileged test must fail the run instead.
func InCI() bool { return os.Getenv("CI") == "true" }

// Elsewhere marks the message of a skip whose test runs elsewhere in the
// same `go test ./...` (on the host or in the sctpvm guest). test.sh fails
// on every skip without it.
const Elsewhere = "[runs elsewhere]"

// SkipElsewhere skips a test that the same test command runs elsewhere,
// saying where.
func SkipElsewhere(t testing.TB, where string) {
	t.Helper()
	t.Skip(where + " " + Elsewhere)
}

// RequireSCTP skips the test when the kernel has no SCTP. Inside the sctpvm
// guest, where SCTP must be there, it fails the test instead. On a host
// without SCTP the skip is expected: sctpapp's TestSCTPGuest runs the same
// tests inside the guest (and fails if it cannot).
func RequireSCTP(t testing.TB) {
	t.Helper()
	err := Supported()
	if err == nil {
		return
	}
	if InGuest() {
		t.Fatalf("SCTP missing inside the sctpvm guest: %v", err)
	}
	SkipElsewhere(t, fmt.Sprintf("kernel has no SCTP (%v): this test runs in the qemu guest through modules/sctpapp's TestSCTPGuest", err))
}

// RequireRoot skips the test when not running as root, or fails it in CI
// or in the guest, where a skip would hide a privileged test.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if InGuest() || InCI() {
		t.Fatal("test needs root (CI=true or guest run: not skipping)")
	}
	t.Skip("test needs root")
}
