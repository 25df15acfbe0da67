package nsadmin

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/caddy-netns/caddy-netns/modules/nsnetwork"
)

// Collector exports the caddy_netns_* metrics. Per namespace socket
// (labels netns, netns_inode, network, address), unless turned off or
// capped (PerNamespace, MaxNamespaceSeries):
//
//	caddy_netns_listener_info                  1 for every open socket
//	caddy_netns_connections_open               TCP connections accepted through a set and still open
//	caddy_netns_connections_accepted_total     TCP connections accepted through a set
//	caddy_netns_errors_total                   failed accepts, reads and writes through a set
//	caddy_netns_packets_total{direction}       UDP datagrams through a set, in (from clients) or out
//	caddy_netns_bytes_total{direction}         their payload bytes
//
// That is 4 series for a TCP member of a set (info, open, accepted,
// errors), 6 for a UDP member (info, errors, packets and bytes in and
// out), 1 for a socket outside sets.
//
// Always, without namespace labels, summed over the sockets of every
// namespace that have the same network and address (labels network,
// address):
//
//	caddy_netns_sockets                                open sockets
//	caddy_netns_address_connections_open               as above, summed
//	caddy_netns_address_connections_accepted_total
//	caddy_netns_address_errors_total
//	caddy_netns_address_packets_total{direction}
//	caddy_netns_address_bytes_total{direction}
//
// and per set (label set, the set's address) and overall:
//
//	caddy_netns_set_members                    namespaces the set listens in
//	caddy_netns_set_waiting                    namespaces the set matches but does not listen in yet
//	caddy_netns_listeners_omitted              sockets whose per-namespace series this scrape left out
//
// Counters cover set members (the set sees every accept and datagram);
// TCP payload bytes are not counted, since that would take the kernel's
// splice path away from the proxy. A member that goes away takes its
// counts out of the sums, which Prometheus reads as a counter reset.
type Collector struct {
	// PerNamespace exports the series labelled with a namespace.
	PerNamespace bool
	// MaxNamespaceSeries caps them per scrape (0: no cap): sockets in
	// listing order get all their series until the next would pass it.
	MaxNamespaceSeries int
}

var (
	labels   = []string{"netns", "netns_inode", "network", "address"}
	dirLabel = append(append([]string(nil), labels...), "direction")
	aggLabel = []string{"network", "address"}
	aggDir   = []string{"network", "address", "direction"}

	descInfo     = prometheus.NewDesc("caddy_netns_listener_info", "A socket the netns network holds open in a namespace.", labels, nil)
	descOpen     = prometheus.NewDesc("caddy_netns_connections_open", "TCP connections accepted through a namespace set and still open.", labels, nil)
	descAccepted = prometheus.NewDesc("caddy_netns_connections_accepted_total", "TCP connections accepted through a namespace set.", labels, nil)
	descErrors   = prometheus.NewDesc("caddy_netns_errors_total", "Failed accepts, reads and writes through a namespace set.", labels, nil)
	descPackets  = prometheus.NewDesc("caddy_netns_packets_total", "UDP datagrams through a namespace set.", dirLabel, nil)
	descBytes    = prometheus.NewDesc("caddy_netns_bytes_total", "UDP payload bytes through a namespace set.", dirLabel, nil)

	descSockets     = prometheus.NewDesc("caddy_netns_sockets", "Sockets the netns network holds open in namespaces, per network and address.", aggLabel, nil)
	descAggOpen     = prometheus.NewDesc("caddy_netns_address_connections_open", "TCP connections accepted through namespace sets and still open, per network and address.", aggLabel, nil)
	descAggAccepted = prometheus.NewDesc("caddy_netns_address_connections_accepted_total", "TCP connections accepted through namespace sets, per network and address.", aggLabel, nil)
	descAggErrors   = prometheus.NewDesc("caddy_netns_address_errors_total", "Failed accepts, reads and writes through namespace sets, per network and address.", aggLabel, nil)
	descAggPackets  = prometheus.NewDesc("caddy_netns_address_packets_total", "UDP datagrams through namespace sets, per network and address.", aggDir, nil)
	descAggBytes    = prometheus.NewDesc("caddy_netns_address_bytes_total", "UDP payload bytes through namespace sets, per network and address.", aggDir, nil)
	descSetMembers  = prometheus.NewDesc("caddy_netns_set_members", "Namespaces a namespace set listens in.", []string{"set"}, nil)
	descSetWaiting  = prometheus.NewDesc("caddy_netns_set_waiting", "Namespaces a namespace set matches but does not listen in yet.", []string{"set"}, nil)
	descOmitted     = prometheus.NewDesc("caddy_netns_listeners_omitted", "Sockets whose per-namespace series this scrape left out (per_namespace off or its cap).", nil, nil)

	allDescs = []*prometheus.Desc{descInfo, descOpen, descAccepted, descErrors, descPackets, descBytes,
		descSockets, descAggOpen, descAggAccepted, descAggErrors, descAggPackets, descAggBytes,
		descSetMembers, descSetWaiting, descOmitted}
)

// Describe sends the descriptors.
func (Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
}

// seriesOf is how many per-namespace series Collect sends for li.
func seriesOf(li *nsnetwork.ListenerInfo) int {
	n := 1
	if li.OpenConns >= 0 {
		n++
	}
	switch {
	case len(li.Sets) == 0:
	case isUDP(li.Network):
		n += 5
	default:
		n += 2
	}
	return n
}

func isUDP(network string) bool { return len(network) >= 3 && network[:3] == "udp" }

type aggKey struct{ network, address string }

type aggregate struct {
	sockets, open                            int
	hasOpen, inSet                           bool
	accepted, errors                         uint64
	packetsIn, packetsOut, bytesIn, bytesOut uint64
}

// Collect sends the current values.
func (c Collector) Collect(ch chan<- prometheus.Metric) {
	lis, waits := nsnetwork.Listeners()
	aggs := map[aggKey]*aggregate{}
	members := map[string]int{}
	series, omitted := 0, 0
	capped := false
	for i := range lis {
		li := &lis[i]
		k := aggKey{li.Network, li.Address}
		a := aggs[k]
		if a == nil {
			a = new(aggregate)
			aggs[k] = a
		}
		a.sockets++
		if li.OpenConns >= 0 {
			a.hasOpen = true
			a.open += li.OpenConns
		}
		if len(li.Sets) > 0 {
			a.inSet = true
			a.accepted += li.Accepted
			a.errors += li.Errors
			a.packetsIn += li.PacketsIn
			a.packetsOut += li.PacketsOut
			a.bytesIn += li.BytesIn
			a.bytesOut += li.BytesOut
		}
		for _, s := range li.Sets {
			members[s]++
		}
		if !c.PerNamespace || capped {
			omitted++
			continue
		}
		if c.MaxNamespaceSeries > 0 {
			n := seriesOf(li)
			if series+n > c.MaxNamespaceSeries {
				// Keep the listing order: the cap cuts the
				// tail, not whatever fits.
				capped = true
				omitted++
				continue
			}
			series += n
		}
		collectSocket(ch, li)
	}
	for k, a := range aggs {
		ch <- prometheus.MustNewConstMetric(descSockets, prometheus.GaugeValue, float64(a.sockets), k.network, k.address)
		if a.hasOpen {
			ch <- prometheus.MustNewConstMetric(descAggOpen, prometheus.GaugeValue, float64(a.open), k.network, k.address)
		}
		if !a.inSet {
			continue
		}
		ch <- prometheus.MustNewConstMetric(descAggErrors, prometheus.CounterValue, float64(a.errors), k.network, k.address)
		if isUDP(k.network) {
			ch <- prometheus.MustNewConstMetric(descAggPackets, prometheus.CounterValue, float64(a.packetsIn), k.network, k.address, "in")
			ch <- prometheus.MustNewConstMetric(descAggPackets, prometheus.CounterValue, float64(a.packetsOut), k.network, k.address, "out")
			ch <- prometheus.MustNewConstMetric(descAggBytes, prometheus.CounterValue, float64(a.bytesIn), k.network, k.address, "in")
			ch <- prometheus.MustNewConstMetric(descAggBytes, prometheus.CounterValue, float64(a.bytesOut), k.network, k.address, "out")
		} else {
			ch <- prometheus.MustNewConstMetric(descAggAccepted, prometheus.CounterValue, float64(a.accepted), k.network, k.address)
		}
	}
	waiting := map[string]int{}
	for _, w := range waits {
		waiting[w.Set]++
		if _, ok := members[w.Set]; !ok {
			members[w.Set] = 0
		}
	}
	for s, n := range members {
		ch <- prometheus.MustNewConstMetric(descSetMembers, prometheus.GaugeValue, float64(n), s)
		ch <- prometheus.MustNewConstMetric(descSetWaiting, prometheus.GaugeValue, float64(waiting[s]), s)
	}
	ch <- prometheus.MustNewConstMetric(descOmitted, prometheus.GaugeValue, float64(omitted))
}

// collectSocket sends the per-namespace series of li (seriesOf(li) of
// them).
func collectSocket(ch chan<- prometheus.Metric, li *nsnetwork.ListenerInfo) {
	lv := []string{li.Namespace, strconv.FormatUint(li.NamespaceID.Ino, 10), li.Network, li.Address}
	ch <- prometheus.MustNewConstMetric(descInfo, prometheus.GaugeValue, 1, lv...)
	if li.OpenConns >= 0 {
		ch <- prometheus.MustNewConstMetric(descOpen, prometheus.GaugeValue, float64(li.OpenConns), lv...)
	}
	if len(li.Sets) == 0 {
		return
	}
	ch <- prometheus.MustNewConstMetric(descErrors, prometheus.CounterValue, float64(li.Errors), lv...)
	if isUDP(li.Network) {
		ch <- prometheus.MustNewConstMetric(descPackets, prometheus.CounterValue, float64(li.PacketsIn), append(lv, "in")...)
		ch <- prometheus.MustNewConstMetric(descPackets, prometheus.CounterValue, float64(li.PacketsOut), append(lv, "out")...)
		ch <- prometheus.MustNewConstMetric(descBytes, prometheus.CounterValue, float64(li.BytesIn), append(lv, "in")...)
		ch <- prometheus.MustNewConstMetric(descBytes, prometheus.CounterValue, float64(li.BytesOut), append(lv, "out")...)
	} else {
		ch <- prometheus.MustNewConstMetric(descAccepted, prometheus.CounterValue, float64(li.Accepted), lv...)
	}
}

var _ prometheus.Collector = Collector{}
