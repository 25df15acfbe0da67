package sctptest

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// VethEnd describes one end of a veth pair.
type VethEnd struct {
	NS    *Netns         // namespace for this end; nil: the current one
	Name  string         // interface name, at most 15 bytes
	Addrs []netip.Prefix // addresses to add, e.g. 10.99.0.1/24, fd00:99::1/64
}

// AddVeth creates a veth pair with ends a and b, adds their addresses (IPv6
// ones without duplicate address detection, so they are usable at once) and
// brings both up. The pair goes away with its namespaces.
func AddVeth(t testing.TB, a, b VethEnd) {
	t.Helper()
	RequireRoot(t)
	if err := CreateVeth(a, b); err != nil {
		t.Fatal(err)
	}
}

// CreateVeth is AddVeth without the testing.TB.
func CreateVeth(a, b VethEnd) error {
	fdA, closeA, err := nsFD(a.NS)
	if err != nil {
		return err
	}
	defer closeA()
	fdB, closeB, err := nsFD(b.NS)
	if err != nil {
		return err
	}
	defer closeB()

	la := netlink.NewLinkAttrs()
	la.Name = a.Name
	veth := &netlink.Veth{LinkAttrs: la, PeerName: b.Name}
	if fdA >= 0 {
		veth.Namespace = netlink.NsFd(fdA)
	}
	if fdB >= 0 {
		veth.PeerNamespace = netlink.NsFd(fdB)
	}
	if err := netlink.LinkAdd(veth); err != nil {
		return fmt.Errorf("veth %q-%q: creating: %w", a.Name, b.Name, err)
	}
	for _, end := range []VethEnd{a, b} {
		err := end.NS.Do(func() error {
			// No duplicate address detection: the link-local address would
			// stay tentative for about 2 s and delay IPv6 traffic.
			dad := "/proc/sys/net/ipv6/conf/" + end.Name + "/accept_dad"
			if err := os.WriteFile(dad, []byte("0"), 0o644); err != nil && !os.IsNotExist(err) {
				return err
			}
			for _, p := range end.Addrs {
				if err := AddAddr(end.Name, p); err != nil {
					return err
				}
			}
			return LinkUp(end.Name)
		})
		if err != nil {
			return fmt.Errorf("veth %q-%q: %w", a.Name, b.Name, err)
		}
	}
	// The kernel activates a link's queue only when its link watcher runs,
	// up to a second after carrier-on; until then packets are dropped and
	// the first connection attempt waits for a retransmission. Wait for
	// IFF_RUNNING on both ends (bounded).
	for _, end := range []VethEnd{a, b} {
		err := end.NS.Do(func() error { return waitRunning(end.Name, 5*time.Second) })
		if err != nil {
			return fmt.Errorf("veth %q-%q: %w", a.Name, b.Name, err)
		}
	}
	return nil
}

func waitRunning(name string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		flags, err := linkFlags(name)
		if err != nil {
			return err
		}
		if flags&unix.IFF_RUNNING != 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("link %q: not running after %v", name, limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// nsFD opens a namespace for IFLA_NET_NS_FD; -1 means the current one.
func nsFD(ns *Netns) (int, func(), error) {
	if ns == nil {
		return -1, func() {}, nil
	}
	f, err := os.Open(ns.Path)
	if err != nil {
		return -1, nil, fmt.Errorf("netns %q: %w", ns.Name, err)
	}
	return int(f.Fd()), func() { f.Close() }, nil
}

// AddAddr adds an address to an interface of the calling thread's namespace
// (call it inside Netns.Do). IPv6 addresses skip duplicate address detection.
func AddAddr(ifname string, p netip.Prefix) error {
	link, err := netlink.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("link %q: %w", ifname, err)
	}
	ip := p.Addr().Unmap()
	addr := &netlink.Addr{
		IPNet: &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(p.Bits(), ip.BitLen())},
		Flags: unix.IFA_F_NODAD,
	}
	if err := netlink.AddrAdd(link, addr); err != nil {
		return fmt.Errorf("link %q: adding address %s: %w", ifname, p, err)
	}
	return nil
}
