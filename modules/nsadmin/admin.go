// Package nsadmin adds the admin API endpoint GET /netns/listeners, which
// lists every socket the netns network holds open in a namespace (sets
// included), and Prometheus metrics per namespace listener on the admin
// /metrics endpoint.
package nsadmin

import (
	"errors"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/caddy-netns/caddy-netns/modules/nsnetwork"
)

func init() {
	caddy.RegisterModule(Admin{})
}

// Admin is the admin API module admin.api.netns. It is not configured:
// Caddy mounts every admin.api module on its admin endpoint.
//
//	GET /netns/listeners                      every namespace listener and the namespaces sets wait for
//	GET /netns/listeners?connections=kernel   open TCP connections counted by the kernel, for every
//	                                          TCP socket listed (a few milliseconds per socket)
//	GET /netns/listeners?limit=N              at most N entries (1 to MaxLimit), and "next" when
//	                                          more follow
//	GET /netns/listeners?limit=N&after=C      the page after cursor C (a "next" from the page before)
//	GET /netns/listeners?netns=<glob>         only namespaces whose name matches the glob (path.Match:
//	                                          * ? [...]; e.g. tenant-1*)
//	GET /netns/listeners?set=<address>        only members of the set with that address (as in a
//	                                          listener's "sets") and the namespaces it waits for
//
// The parameters combine; any other parameter is refused (400). The
// listing is one ordered sequence: every listener by namespace, network,
// address and namespace identity, then every waiting namespace by
// namespace and set. A page holds the next N entries of it that match the
// filters (listeners first, then waiting ones) and, when more follow,
// "next": pass it as after= with the same filters for the page after. A
// cursor names a position, not an index, so sockets that open or close
// between pages neither repeat nor shift the others: every entry present
// through the whole walk is listed exactly once. Without limit the
// response lists everything, as before paging existed; either way the body
// is streamed entry by entry, never encoded whole in memory.
//
// It also registers the caddy_netns_* metrics (see Collector) with the
// config's metrics registry, which the admin /metrics endpoint serves,
// with the per-namespace settings of the config's netns app ("metrics").
type Admin struct{}

// CaddyModule returns the Caddy module information.
func (Admin) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.netns",
		New: func() caddy.Module { return new(Admin) },
	}
}

// Provision registers the metrics, with the per-namespace settings of the
// config's netns app when it has one. The admin endpoint is provisioned
// before the config's apps, so this loads the netns app (Caddy loads each
// app once per config; the config then starts the same one).
func (a *Admin) Provision(ctx caddy.Context) error {
	reg := ctx.GetMetricsRegistry()
	if reg == nil {
		return nil
	}
	c := Collector{PerNamespace: true}
	app, err := ctx.AppIfConfigured(nsnetwork.PolicyApp)
	switch {
	case err == nil:
		// Found by name and asked through an interface, like
		// nsnetwork.PolicyFor, so this module does not import the app.
		if m, ok := app.(interface{ NamespaceMetrics() (bool, int) }); ok {
			c.PerNamespace, c.MaxNamespaceSeries = m.NamespaceMetrics()
		}
	case !errors.Is(err, caddy.ErrNotConfigured):
		return err
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return err
		}
	}
	return nil
}

// Routes returns the /netns/listeners route.
func (a *Admin) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{Pattern: "/netns/listeners", Handler: caddy.AdminHandlerFunc(a.listeners)}}
}

// Listener is one entry of GET /netns/listeners.
type Listener struct {
	// Namespace as named in the listen address (a bare name for
	// /var/run/netns), its inode and full identity (device:inode).
	Namespace string `json:"namespace"`
	Inode     uint64 `json:"inode"`
	ID        string `json:"id"`
	Network   string `json:"network"`
	Address   string `json:"address"`
	// Since is when the socket was opened.
	Since time.Time `json:"since"`
	// Handles is how many configs and sets hold the socket.
	Handles int `json:"handles"`
	// Sets are the set addresses this socket is a member of.
	Sets []string `json:"sets,omitempty"`
	// OpenConnections is the number of connections accepted through a
	// set from this socket and still open (with connections=kernel: the
	// kernel's count of TCP connections to this port in the namespace);
	// absent when unknown (UDP, or a socket outside sets).
	OpenConnections *int `json:"open_connections,omitempty"`
	// Counters of set members (see nsnetwork.ListenerInfo).
	Accepted   uint64 `json:"accepted"`
	Errors     uint64 `json:"errors"`
	PacketsIn  uint64 `json:"packets_in"`
	PacketsOut uint64 `json:"packets_out"`
	BytesIn    uint64 `json:"bytes_in"`
	BytesOut   uint64 `json:"bytes_out"`
}

// Waiting is a namespace a set matches but does not listen in yet.
type Waiting struct {
	Set       string    `json:"set"`
	Namespace string    `json:"namespace"`
	Since     time.Time `json:"since"`
	Retry     time.Time `json:"retry"`
	Error     string    `json:"error"`
}

// Response is the body of GET /netns/listeners.
type Response struct {
	Listeners []Listener `json:"listeners"`
	Waiting   []Waiting  `json:"waiting"`
	// Next is the cursor of the page after this one (pass it as
	// after=); absent on the last page and without limit.
	Next string `json:"next,omitempty"`
}

// Interface guards
var (
	_ caddy.Provisioner = (*Admin)(nil)
	_ caddy.AdminRouter = (*Admin)(nil)
)
