package nspolicy

import (
	"fmt"
	"strconv"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// Metrics are the settings of the caddy_netns_* metrics, which the admin
// module admin.api.netns serves on the admin /metrics endpoint. Each open
// namespace socket has 1 to 6 series of its own, labelled with its
// namespace (netns, netns_inode, network, address): 4 for a TCP member of
// a set, 6 for a UDP one, 1 for a socket outside sets. The aggregate
// series, per network and address and per set, have no namespace labels
// and are always exported.
type Metrics struct {
	// PerNamespace exports the series labelled with a namespace; false
	// leaves only the aggregate series. Default: true.
	PerNamespace *bool `json:"per_namespace,omitempty"`

	// MaxNamespaceSeries caps how many series labelled with a namespace
	// one scrape exports: sockets in the order of GET /netns/listeners
	// get all their series until the next would pass the cap; the rest
	// are counted in caddy_netns_listeners_omitted. 0 is no cap.
	// Default: 0.
	MaxNamespaceSeries int `json:"max_namespace_series,omitempty"`
}

// NamespaceMetrics returns whether series labelled with a namespace are
// exported, and their cap per scrape (0: none). It is how the admin
// module finds the settings without importing this app.
func (a *App) NamespaceMetrics() (on bool, maxSeries int) {
	if a.Metrics == nil {
		return true, 0
	}
	return a.Metrics.PerNamespace == nil || *a.Metrics.PerNamespace, a.Metrics.MaxNamespaceSeries
}

func (m *Metrics) validate() error {
	if m != nil && m.MaxNamespaceSeries < 0 {
		return fmt.Errorf("netns metrics max_namespace_series %d: want 0 (no cap) or more", m.MaxNamespaceSeries)
	}
	return nil
}

// unmarshalCaddyfile reads the metrics block:
//
//	metrics {
//		per_namespace on|off|<max series>
//	}
func (m *Metrics) unmarshalCaddyfile(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "per_namespace":
			if !d.NextArg() {
				return d.ArgErr()
			}
			v := d.Val()
			if d.NextArg() {
				return d.ArgErr()
			}
			on := true
			switch v {
			case "on":
				m.MaxNamespaceSeries = 0
			case "off":
				on = false
				m.MaxNamespaceSeries = 0
			default:
				n, err := strconv.Atoi(v)
				if err != nil || n < 1 {
					return d.Errf("netns metrics per_namespace %q: want on, off or a number of series (1 or more)", v)
				}
				m.MaxNamespaceSeries = n
			}
			m.PerNamespace = &on
		default:
			return d.Errf("unknown netns metrics option %q", d.Val())
		}
	}
	return nil
}
