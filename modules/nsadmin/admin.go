// Package nsadmin adds the admin API endpoint GET /netns/listeners, which
// lists every socket the netns network holds open in a namespace (sets
// included), and Prometheus metrics per namespace listener on the admin
// /metrics endpoint.
package nsadmin

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
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
//	                                          TCP socket (a few milliseconds per socket)
//
// It also registers the caddy_netns_* metrics (see Collector) with the
// config's metrics registry, which the admin /metrics endpoint serves.
type Admin struct{}

// CaddyModule returns the Caddy module information.
func (Admin) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.netns",
		New: func() caddy.Module { return new(Admin) },
	}
}

// Provision registers the metrics.
func (a *Admin) Provision(ctx caddy.Context) error {
	reg := ctx.GetMetricsRegistry()
	if reg == nil {
		return nil
	}
	if err := reg.Register(Collector{}); err != nil {
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
}

func (a *Admin) listeners(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: errors.New("method not allowed")}
	}
	kernel := false
	switch q := r.URL.Query().Get("connections"); q {
	case "", "tracked":
	case "kernel":
		kernel = true
	default:
		return caddy.APIError{HTTPStatus: http.StatusBadRequest,
			Err: fmt.Errorf("connections=%q: want tracked (the default) or kernel", q)}
	}
	lis, waits := nsnetwork.Listeners(kernel)
	resp := Response{Listeners: make([]Listener, 0, len(lis)), Waiting: make([]Waiting, 0, len(waits))}
	for _, li := range lis {
		l := Listener{
			Namespace: li.Namespace, Inode: li.NamespaceID.Ino, ID: li.NamespaceID.String(),
			Network: li.Network, Address: li.Address, Since: li.Since, Handles: li.Handles,
			Sets: li.Sets, Accepted: li.Accepted, Errors: li.Errors,
			PacketsIn: li.PacketsIn, PacketsOut: li.PacketsOut, BytesIn: li.BytesIn, BytesOut: li.BytesOut,
		}
		if li.OpenConns >= 0 {
			n := li.OpenConns
			l.OpenConnections = &n
		}
		resp.Listeners = append(resp.Listeners, l)
	}
	for _, wi := range waits {
		resp.Waiting = append(resp.Waiting, Waiting(wi))
	}
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(resp)
}

// Interface guards
var (
	_ caddy.Provisioner = (*Admin)(nil)
	_ caddy.AdminRouter = (*Admin)(nil)
)
