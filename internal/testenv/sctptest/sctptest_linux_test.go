package sctptest

import (
	"net/netip"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestSupportedInGuest(t *testing.T) {
	err := Supported()
	t.Logf("kernel SCTP: %v (guest: %v)", err, InGuest())
	if InGuest() && err != nil {
		t.Fatalf("no SCTP inside the guest: %v", err)
	}
}

func TestGuestSetup(t *testing.T) {
	if !InGuest() {
		SkipElsewhere(t, "checks the sctpvm guest's init: runs in the guest")
	}
	for _, c := range []struct{ path, want string }{
		{"/proc/sys/net/core/rmem_max", "16777216\n"},
		{"/proc/sys/net/core/wmem_max", "16777216\n"},
	} {
		b, err := os.ReadFile(c.path)
		if err != nil || string(b) != c.want {
			t.Errorf("%s = %q, %v; want %q", c.path, b, err, c.want)
		}
	}
	if fi, err := os.Stat(NetnsDir); err != nil || !fi.IsDir() {
		t.Errorf("%s: %v", NetnsDir, err)
	}
}

// TestNetnsVeth makes two namespaces joined by a veth pair and sends a TCP
// (or, where the kernel has it, SCTP) connection across it, over IPv4 and
// IPv6.
func TestNetnsVeth(t *testing.T) {
	a := NewNetns(t, "")
	b := NewNetns(t, "")
	AddVeth(t,
		VethEnd{NS: a, Name: "va", Addrs: []netip.Prefix{netip.MustParsePrefix("10.99.0.1/24"), netip.MustParsePrefix("fd00:99::1/64")}},
		VethEnd{NS: b, Name: "vb", Addrs: []netip.Prefix{netip.MustParsePrefix("10.99.0.2/24"), netip.MustParsePrefix("fd00:99::2/64")}},
	)
	proto := unix.IPPROTO_TCP
	if Supported() == nil {
		proto = unix.IPPROTO_SCTP
	}
	for _, c := range []struct {
		domain int
		sa     unix.Sockaddr
	}{
		{unix.AF_INET, &unix.SockaddrInet4{Port: 9999, Addr: [4]byte{10, 99, 0, 2}}},
		{unix.AF_INET6, &unix.SockaddrInet6{Port: 9999, Addr: netip.MustParseAddr("fd00:99::2").As16()}},
	} {
		lfd, err := b.Socket(c.domain, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, proto)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(lfd)
		if err := unix.Bind(lfd, c.sa); err != nil {
			t.Fatal(err)
		}
		if err := unix.Listen(lfd, 8); err != nil {
			t.Fatal(err)
		}
		cfd, err := a.Socket(c.domain, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, proto)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(cfd)
		tv := unix.NsecToTimeval(int64(10 * time.Second))
		unix.SetsockoptTimeval(cfd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv)
		if err := unix.Connect(cfd, c.sa); err != nil {
			t.Fatalf("connect %v across veth (proto %d): %v", c.sa, proto, err)
		}
		afd, _, err := unix.Accept(lfd)
		if err != nil {
			t.Fatal(err)
		}
		unix.Close(afd)
	}
	// A namespace made by the test is not the one the test runs in.
	if _, err := os.Stat(a.Path); err != nil {
		t.Fatal(err)
	}
}
