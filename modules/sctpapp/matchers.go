package sctpapp

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"

	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/ishidawataru/sctp"

	"github.com/caddy-netns/caddy-netns/kernel/nsenter"
	"github.com/caddy-netns/caddy-netns/kernel/sctpnet"
	"github.com/caddy-netns/caddy-netns/modules/nsmatch"
)

func init() {
	caddy.RegisterModule(MatchNetns{})
	caddy.RegisterModule(MatchRemoteIP{})
	caddy.RegisterModule(MatchLocalPort{})
	caddy.RegisterModule(MatchPPID{})
}

// Matcher decides whether a route takes an association. Modules in the
// sctp.matchers namespace implement it.
type Matcher interface {
	MatchSCTP(a *Association) (bool, error)
}

// Association is an accepted association being routed.
type Association struct {
	Conn *sctpnet.Conn

	arrival    *nsmatch.Arrival
	first      [][]byte
	firstInfo  sctpnet.Info
	firstErr   error
	firstTaken bool
	entry      *entry // in the registry of live associations
}

// Arrival is the network namespace the association arrived in, asked of
// the kernel on its socket (SIOCGSKNS) and named as the listen addresses
// name it.
func (a *Association) Arrival() (nsmatch.Arrival, error) {
	if a.arrival == nil {
		id, err := nsenter.SocketID(a.Conn)
		if err != nil {
			return nsmatch.Arrival{}, fmt.Errorf("arrival namespace: %w", err)
		}
		arr := nsmatch.Named(id)
		a.arrival = &arr
	}
	return *a.arrival, nil
}

// FirstMessage reads the association's first message, once, and holds it
// until the route is chosen (release puts it back for the handler).
func (a *Association) FirstMessage() (sctpnet.Info, error) {
	if !a.firstTaken {
		a.firstTaken = true
		a.first, a.firstInfo, a.firstErr = a.Conn.ReadMessagePieces(nil)
	}
	return a.firstInfo, a.firstErr
}

// release hands a held first message back to the Conn, unchanged.
func (a *Association) release() {
	if a.first != nil {
		a.Conn.Unread(a.first, a.firstInfo)
	}
	a.first = nil
}

// Placeholders of an association, usable in upstream dial addresses.
const (
	// PlaceholderNetnsName is the arrival namespace as the listen address
	// named it (a bare name under /var/run/netns), empty outside netns
	// addresses.
	PlaceholderNetnsName = "sctp.netns.name"
	// PlaceholderNetnsInode is the arrival namespace's inode number.
	PlaceholderNetnsInode = "sctp.netns.inode"
	// PlaceholderNetnsID is the arrival namespace's device:inode.
	PlaceholderNetnsID = "sctp.netns.id"
	// PlaceholderRemoteIP and PlaceholderRemotePort are the client's
	// primary address.
	PlaceholderRemoteIP   = "sctp.remote_ip"
	PlaceholderRemotePort = "sctp.remote_port"
	// PlaceholderLocalPort is the port the association arrived on.
	PlaceholderLocalPort = "sctp.local_port"
	// PlaceholderPPID is the PPID number of the first message, which is
	// read (and held for the handler) when the placeholder is used.
	PlaceholderPPID = "sctp.ppid"
)

// Replacer returns a replacer with the association's placeholders.
func (a *Association) Replacer() *caddy.Replacer {
	repl := caddy.NewReplacer()
	repl.Map(func(key string) (any, bool) {
		switch key {
		case PlaceholderNetnsName, PlaceholderNetnsInode, PlaceholderNetnsID:
			arr, err := a.Arrival()
			if err != nil {
				return "", true
			}
			switch key {
			case PlaceholderNetnsName:
				return arr.Name, true
			case PlaceholderNetnsInode:
				return strconv.FormatUint(arr.ID.Ino, 10), true
			}
			return strconv.FormatUint(arr.ID.Dev, 10) + ":" + strconv.FormatUint(arr.ID.Ino, 10), true
		case PlaceholderRemoteIP, PlaceholderRemotePort:
			ra, ok := a.Conn.RemoteAddr().(*sctp.SCTPAddr)
			if !ok || ra == nil || len(ra.IPAddrs) == 0 {
				return "", true
			}
			if key == PlaceholderRemotePort {
				return strconv.Itoa(ra.Port), true
			}
			return ra.IPAddrs[0].IP.String(), true
		case PlaceholderLocalPort:
			if la, ok := a.Conn.LocalAddr().(*sctp.SCTPAddr); ok && la != nil {
				return strconv.Itoa(la.Port), true
			}
			return "", true
		case PlaceholderPPID:
			info, err := a.FirstMessage()
			if err != nil {
				return "", true
			}
			return strconv.FormatUint(uint64(info.PPIDNumber()), 10), true
		}
		return nil, false
	})
	return repl
}

// AssociationHandler is a Handler that also wants what routing learned
// about the association (its arrival namespace, a held first message) and
// its placeholders. The server calls HandleAssociation instead of
// HandleSCTP where a handler has it.
type AssociationHandler interface {
	HandleAssociation(a *Association) error
}

// MatchNetns matches associations by the network namespace they arrived
// in, with the semantics of the layer4 netns matcher: each entry is a name
// under /var/run/netns or an absolute path (the same file is the same
// entry), and * or ? make a pattern (tenant-*). Associations on listeners
// outside netns addresses match no entry.
//
// JSON: "netns": ["ns1", "/var/run/netns/ns2"]
type MatchNetns []string

// CaddyModule returns the Caddy module information.
func (MatchNetns) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "sctp.matchers.netns", New: func() caddy.Module { return new(MatchNetns) }}
}

// Provision checks every entry.
func (m *MatchNetns) Provision(caddy.Context) error {
	return nsmatch.ValidateEntries("netns", *m)
}

// MatchSCTP reports whether the association arrived in one of the
// namespaces.
func (m MatchNetns) MatchSCTP(a *Association) (bool, error) {
	arr, err := a.Arrival()
	if err != nil {
		return false, err
	}
	return arr.IsAny(m), nil
}

// MatchRemoteIP matches associations by the client's primary address, an
// IP address or a CIDR range each.
//
// JSON: "remote_ip": {"ranges": ["10.0.0.0/8", "fd00::1"]}
type MatchRemoteIP struct {
	// Ranges are IP addresses or CIDR prefixes. Required: at least one.
	Ranges []string `json:"ranges,omitempty"`

	prefixes []netip.Prefix
}

// CaddyModule returns the Caddy module information.
func (MatchRemoteIP) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "sctp.matchers.remote_ip", New: func() caddy.Module { return new(MatchRemoteIP) }}
}

// Provision parses the ranges.
func (m *MatchRemoteIP) Provision(caddy.Context) error {
	if len(m.Ranges) == 0 {
		return errors.New("remote_ip matcher: no ranges")
	}
	m.prefixes = m.prefixes[:0]
	for _, r := range m.Ranges {
		var p netip.Prefix
		var err error
		if strings.Contains(r, "/") {
			p, err = netip.ParsePrefix(r)
		} else {
			var ip netip.Addr
			if ip, err = netip.ParseAddr(r); err == nil {
				p = netip.PrefixFrom(ip, ip.BitLen())
			}
		}
		if err != nil {
			return fmt.Errorf("remote_ip matcher: range %q: %w", r, err)
		}
		m.prefixes = append(m.prefixes, p.Masked())
	}
	return nil
}

// MatchSCTP reports whether the client's address is in one of the ranges.
func (m *MatchRemoteIP) MatchSCTP(a *Association) (bool, error) {
	ra, ok := a.Conn.RemoteAddr().(*sctp.SCTPAddr)
	if !ok || ra == nil || len(ra.IPAddrs) == 0 {
		return false, nil
	}
	ip, ok := netip.AddrFromSlice(ra.IPAddrs[0].IP)
	if !ok {
		return false, nil
	}
	ip = ip.Unmap()
	for _, p := range m.prefixes {
		if p.Contains(ip) {
			return true, nil
		}
	}
	return false, nil
}

// MatchLocalPort matches associations by the port they arrived on.
//
// JSON: "local_port": [38412, 36412]
type MatchLocalPort []int

// CaddyModule returns the Caddy module information.
func (MatchLocalPort) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "sctp.matchers.local_port", New: func() caddy.Module { return new(MatchLocalPort) }}
}

// Provision checks the ports.
func (m *MatchLocalPort) Provision(caddy.Context) error {
	if len(*m) == 0 {
		return errors.New("local_port matcher: no ports")
	}
	for _, p := range *m {
		if p < 1 || p > 65535 {
			return fmt.Errorf("local_port matcher: port %d is outside 1 to 65535", p)
		}
	}
	return nil
}

// MatchSCTP reports whether the association's local port is listed.
func (m MatchLocalPort) MatchSCTP(a *Association) (bool, error) {
	la, ok := a.Conn.LocalAddr().(*sctp.SCTPAddr)
	if !ok || la == nil {
		return false, nil
	}
	for _, p := range m {
		if la.Port == p {
			return true, nil
		}
	}
	return false, nil
}

// MatchPPID matches associations by the payload protocol identifier of
// their first message (as IANA numbers it: NGAP 60, S1AP 18, Diameter 46).
// The first message is read and held until a route is chosen, then
// forwarded unchanged; an association that sends nothing waits here.
//
// JSON: "ppid": [60]
type MatchPPID []uint32

// CaddyModule returns the Caddy module information.
func (MatchPPID) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "sctp.matchers.ppid", New: func() caddy.Module { return new(MatchPPID) }}
}

// Provision checks that there is a PPID.
func (m *MatchPPID) Provision(caddy.Context) error {
	if len(*m) == 0 {
		return errors.New("ppid matcher: no PPIDs")
	}
	return nil
}

// MatchSCTP reports whether the first message's PPID is listed.
func (m MatchPPID) MatchSCTP(a *Association) (bool, error) {
	info, err := a.FirstMessage()
	if err != nil {
		return false, fmt.Errorf("reading the first message: %w", err)
	}
	for _, p := range m {
		if info.PPIDNumber() == p {
			return true, nil
		}
	}
	return false, nil
}

// Interface guards
var (
	_ Matcher = MatchNetns(nil)
	_ Matcher = (*MatchRemoteIP)(nil)
	_ Matcher = MatchLocalPort(nil)
	_ Matcher = MatchPPID(nil)
)
