package nshttp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"syscall"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-netns/caddy-netns/kernel/nsenter"
	"github.com/caddy-netns/caddy-netns/modules/nsmatch"
)

// Placeholders set on a request's replacer by the netns matcher and the
// netns transport, named like their layer4 counterparts {l4.netns.*}.
const (
	// PlaceholderName is the namespace the request arrived in, as the
	// listen address wrote it (a bare name for namespaces under
	// /var/run/netns); empty for a listener outside netns addresses.
	PlaceholderName = "http.request.netns.name"
	// PlaceholderInode is the inode number of that namespace.
	PlaceholderInode = "http.request.netns.inode"
	// PlaceholderID is device:inode, the namespace's full identity.
	PlaceholderID = "http.request.netns.id"
)

// ErrNoConn is returned for requests whose connection is not known: HTTP/3
// requests, or servers in which no module of this package was provisioned.
var ErrNoConn = errors.New("connection of the request unknown")

type connKey struct{}

// connInfo is kept in each connection's context; the namespace is asked of
// the kernel once per connection, when first needed.
type connInfo struct {
	conn net.Conn
	once sync.Once
	a    nsmatch.Arrival
	err  error
}

var tracked sync.Map // *caddyhttp.Server → struct{}

// track makes the connection under each request of the server being
// provisioned with ctx known to Arrival. It is registered once per server.
func track(ctx caddy.Context) {
	srv, ok := ctx.Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server)
	if !ok || srv == nil {
		return
	}
	if _, loaded := tracked.LoadOrStore(srv, struct{}{}); loaded {
		return
	}
	ctx.OnCancel(func() { tracked.Delete(srv) })
	srv.RegisterConnContext(func(ctx context.Context, c net.Conn) context.Context {
		return context.WithValue(ctx, connKey{}, &connInfo{conn: c})
	})
}

// Arrival returns the network namespace r arrived in and sets the
// {http.request.netns.*} placeholders on its replacer.
func Arrival(r *http.Request) (nsmatch.Arrival, error) {
	ci, ok := r.Context().Value(connKey{}).(*connInfo)
	if !ok {
		return nsmatch.Arrival{}, ErrNoConn
	}
	ci.once.Do(func() {
		ci.a, ci.err = lookup(ci.conn)
	})
	if ci.err != nil {
		return nsmatch.Arrival{}, ci.err
	}
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		repl.Set(PlaceholderName, ci.a.Name)
		repl.Set(PlaceholderInode, strconv.FormatUint(ci.a.ID.Ino, 10))
		repl.Set(PlaceholderID, ci.a.ID.String())
	}
	return ci.a, nil
}

func lookup(c net.Conn) (nsmatch.Arrival, error) {
	sc, err := socket(c)
	if err != nil {
		return nsmatch.Arrival{}, err
	}
	id, err := nsenter.SocketID(sc)
	if err != nil {
		return nsmatch.Arrival{}, fmt.Errorf("arrival namespace of connection from %s: %w", c.RemoteAddr(), err)
	}
	return nsmatch.Named(id), nil
}

// socket finds the kernel socket under an HTTP connection, looking through
// crypto/tls (NetConn) and PROXY protocol (Raw) wrappers.
func socket(c net.Conn) (syscall.Conn, error) {
	var cur net.Conn = c
	for range 16 {
		switch v := cur.(type) {
		case syscall.Conn:
			return v, nil
		case interface{ NetConn() net.Conn }:
			cur = v.NetConn()
		case interface{ Raw() net.Conn }:
			cur = v.Raw()
		default:
			return nil, fmt.Errorf("%w (%T)", nsmatch.ErrNoSocket, c)
		}
	}
	return nil, fmt.Errorf("%w (%T)", nsmatch.ErrNoSocket, c)
}
