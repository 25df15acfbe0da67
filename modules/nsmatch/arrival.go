// Package nsmatch tells which network namespace a layer4 connection arrived
// in: a matcher (layer4.matchers.netns) and the placeholders
// {l4.netns.name}, {l4.netns.inode}, {l4.netns.id} and
// {l4.netns.network}.
//
// The namespace is asked of the kernel (nsenter.SocketID, SIOCGSKNS) on the
// socket under the connection, so nothing is wrapped and TCP splicing is
// kept. For TCP that socket is the accepted connection. For UDP, caddy-l4
// hands handlers a per-client pseudo connection over the server's shared
// socket; that socket is the one the netns listener opened in the
// namespace, and it is found through the pseudo connection's embedded
// PacketConn. A namespace set (netns/<pattern>/... or a list) serves many
// namespaces through one fan-in socket; there the connection (a
// *fanin.Conn) or the datagram's remote address (a *fanin.Addr) is tagged
// with the member it came in on, which knows its namespace, and no system
// call is made. The identity (device, inode) is then named through the
// namespaces the netns listener pool knows.
package nsmatch

import (
	"errors"
	"fmt"
	"net"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/mholt/caddy-l4/layer4"

	"github.com/caddy-netns/caddy-netns/kernel/nsenter"
	"github.com/caddy-netns/caddy-netns/modules/nsnetwork"
)

// Placeholders set on a connection's replacer by Of.
const (
	// PlaceholderName is the namespace as written in the listen address
	// (a bare name for namespaces under /var/run/netns), empty for a
	// listener that is not in a netns address.
	PlaceholderName = "l4.netns.name"
	// PlaceholderInode is the inode number of the namespace.
	PlaceholderInode = "l4.netns.inode"
	// PlaceholderID is device:inode, the namespace's full identity.
	PlaceholderID = "l4.netns.id"
	// PlaceholderNetwork is the connection's network, tcp or udp, so one
	// upstream address can serve a server that listens on both.
	PlaceholderNetwork = "l4.netns.network"
)

// Arrival is the network namespace a connection arrived in.
type Arrival struct {
	// Name is the namespace as the listen address named it, a bare name
	// when it lives under /var/run/netns; empty when no netns listener is
	// open in it (for example the process's own namespace).
	Name string
	// Paths are the namespace files that listen addresses named it by.
	Paths []string
	// ID identifies the namespace.
	ID nsenter.ID
}

// Is reports whether the connection arrived in the namespace spec names (a
// bare name or a path), as the listen addresses wrote it. A spec with the
// wildcards * or ? is a pattern, as in set addresses (tenant-* matches
// every name under /var/run/netns that starts with tenant-).
func (a Arrival) Is(spec string) bool {
	p, err := nsenter.Path(spec)
	if err != nil {
		return false
	}
	glob := strings.ContainsAny(spec, "*?")
	for _, q := range a.Paths {
		if q == p {
			return true
		}
		if glob {
			if ok, _ := path.Match(p, q); ok {
				return true
			}
		}
	}
	return false
}

const varKey = "netns.arrival"

// Of returns the namespace cx arrived in. It asks the kernel once per
// connection, keeps the answer in the connection's variables and sets the
// placeholders on its replacer.
func Of(cx *layer4.Connection) (Arrival, error) {
	switch v := cx.GetVar(varKey).(type) {
	case Arrival:
		return v, nil
	case error:
		return Arrival{}, v
	}
	a, err := lookup(cx)
	if err != nil {
		cx.SetVar(varKey, err)
		return Arrival{}, err
	}
	cx.SetVar(varKey, a)
	repl := cx.Replacer()
	repl.Set(PlaceholderName, a.Name)
	repl.Set(PlaceholderInode, strconv.FormatUint(a.ID.Ino, 10))
	repl.Set(PlaceholderID, a.ID.String())
	repl.Set(PlaceholderNetwork, cx.LocalAddr().Network())
	return a, nil
}

// Provide makes the {l4.netns.*} placeholders available on cx's replacer
// without asking the kernel yet: the namespace is looked up (once, through
// Of) when one of them is first read, so a connection whose config uses
// none pays nothing. When that lookup fails the placeholders are empty and
// onErr, if not nil, is told once.
func Provide(cx *layer4.Connection, onErr func(error)) {
	cx.Replacer().Map(func(key string) (any, bool) {
		switch key {
		case PlaceholderName, PlaceholderInode, PlaceholderID, PlaceholderNetwork:
		case PlaceholderProxyNetns:
			ns, _ := ProxyNetns(ProxyHeader(cx))
			return ns, true
		default:
			return nil, false
		}
		looked := cx.GetVar(varKey) != nil
		if _, err := Of(cx); err != nil {
			if !looked && onErr != nil {
				onErr(err)
			}
			return "", true
		}
		// Of has set the values; the replacer reads them first from now on.
		v, _ := cx.Replacer().Get(key)
		return v, true
	})
}

func lookup(cx *layer4.Connection) (Arrival, error) {
	// From a namespace set: the connection (a *fanin.Conn) or the
	// datagram's address (a *fanin.Addr) is tagged with the member it
	// came in on, which knows its namespace: no system call.
	if id, ok := memberID(cx.RemoteAddr()); ok {
		return Named(id), nil
	}
	if id, ok := memberID(cx.Conn); ok {
		return Named(id), nil
	}
	sc, err := Socket(cx)
	if err != nil {
		return Arrival{}, err
	}
	id, err := nsenter.SocketID(sc)
	if err != nil {
		return Arrival{}, fmt.Errorf("arrival namespace of %s connection from %s: %w",
			cx.LocalAddr().Network(), cx.RemoteAddr(), err)
	}
	return Named(id), nil
}

// Named names the namespace id through the sockets the netns listener pool
// holds open in it. Name prefers a bare name under /var/run/netns.
func Named(id nsenter.ID) Arrival {
	a := Arrival{ID: id}
	for _, name := range nsnetwork.NamespaceNames(id) {
		if p, err := nsenter.Path(name); err == nil && !slices.Contains(a.Paths, p) {
			a.Paths = append(a.Paths, p)
		}
	}
	slices.Sort(a.Paths)
	for _, p := range a.Paths {
		if filepath.Dir(p) == filepath.Clean(nsenter.RunDir) {
			a.Name = filepath.Base(p)
			return a
		}
	}
	if len(a.Paths) > 0 {
		a.Name = a.Paths[0]
	}
	return a
}

// memberID returns the namespace of the set member that x (a connection,
// possibly wrapped, or an address) is tagged with.
func memberID(x any) (nsenter.ID, bool) {
	for range 16 {
		switch v := x.(type) {
		case interface{ NetnsID() nsenter.ID }:
			return v.NetnsID(), true
		case interface{ Tag() any }:
			x = v.Tag()
			continue
		case *layer4.Connection:
			x = v.Conn
			continue
		case interface{ NetConn() net.Conn }:
			x = v.NetConn()
			continue
		}
		break
	}
	return nsenter.ID{}, false
}

// ErrNoSocket is returned when no socket can be found under a connection.
var ErrNoSocket = errors.New("no socket under the connection")

// Socket returns the kernel socket under a layer4 connection without
// reading from it: the accepted socket for streams, the server's shared
// socket for caddy-l4's UDP pseudo connections. It looks through
// *layer4.Connection, wrappers with NetConn() (crypto/tls) and embedded
// PacketConn fields.
func Socket(c net.Conn) (syscall.Conn, error) {
	var cur any = c
	for range 16 {
		switch v := cur.(type) {
		case *layer4.Connection:
			cur = v.Conn
			continue
		case syscall.Conn:
			return v, nil
		case interface{ NetConn() net.Conn }:
			cur = v.NetConn()
			continue
		}
		if pc := embeddedPacketConn(cur); pc != nil {
			cur = pc
			continue
		}
		break
	}
	return nil, fmt.Errorf("%w (%T)", ErrNoSocket, c)
}

// embeddedPacketConn returns the net.PacketConn embedded in a struct such
// as caddy-l4's unexported UDP pseudo connection.
func embeddedPacketConn(x any) net.PacketConn {
	v := reflect.ValueOf(x)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return nil
	}
	f := v.Elem().FieldByName("PacketConn")
	if !f.IsValid() || !f.CanInterface() {
		return nil
	}
	pc, _ := f.Interface().(net.PacketConn)
	return pc
}
