package nsadmin

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/caddy-netns/caddy-netns/modules/nsnetwork"
)

// Collector exports, per namespace listener (labels netns, netns_inode,
// network, address):
//
//	caddy_netns_listener_info                  1 for every open socket
//	caddy_netns_connections_open               TCP connections accepted through a set and still open
//	caddy_netns_connections_accepted_total     TCP connections accepted through a set
//	caddy_netns_errors_total                   failed accepts, reads and writes through a set
//	caddy_netns_packets_total{direction}       UDP datagrams through a set, in (from clients) or out
//	caddy_netns_bytes_total{direction}         their payload bytes
//
// Counters cover set members (the set sees every accept and datagram);
// TCP payload bytes are not counted, since that would take the kernel's
// splice path away from the proxy.
type Collector struct{}

var (
	labels   = []string{"netns", "netns_inode", "network", "address"}
	dirLabel = append(append([]string(nil), labels...), "direction")

	descInfo     = prometheus.NewDesc("caddy_netns_listener_info", "A socket the netns network holds open in a namespace.", labels, nil)
	descOpen     = prometheus.NewDesc("caddy_netns_connections_open", "TCP connections accepted through a namespace set and still open.", labels, nil)
	descAccepted = prometheus.NewDesc("caddy_netns_connections_accepted_total", "TCP connections accepted through a namespace set.", labels, nil)
	descErrors   = prometheus.NewDesc("caddy_netns_errors_total", "Failed accepts, reads and writes through a namespace set.", labels, nil)
	descPackets  = prometheus.NewDesc("caddy_netns_packets_total", "UDP datagrams through a namespace set.", dirLabel, nil)
	descBytes    = prometheus.NewDesc("caddy_netns_bytes_total", "UDP payload bytes through a namespace set.", dirLabel, nil)
)

// Describe sends the descriptors.
func (Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descInfo, descOpen, descAccepted, descErrors, descPackets, descBytes} {
		ch <- d
	}
}

// Collect sends the current values.
func (Collector) Collect(ch chan<- prometheus.Metric) {
	lis, _ := nsnetwork.Listeners(false)
	for _, li := range lis {
		lv := []string{li.Namespace, strconv.FormatUint(li.NamespaceID.Ino, 10), li.Network, li.Address}
		ch <- prometheus.MustNewConstMetric(descInfo, prometheus.GaugeValue, 1, lv...)
		if li.OpenConns >= 0 {
			ch <- prometheus.MustNewConstMetric(descOpen, prometheus.GaugeValue, float64(li.OpenConns), lv...)
		}
		if len(li.Sets) == 0 {
			continue
		}
		ch <- prometheus.MustNewConstMetric(descErrors, prometheus.CounterValue, float64(li.Errors), lv...)
		if li.Network[:3] == "udp" {
			ch <- prometheus.MustNewConstMetric(descPackets, prometheus.CounterValue, float64(li.PacketsIn), append(lv, "in")...)
			ch <- prometheus.MustNewConstMetric(descPackets, prometheus.CounterValue, float64(li.PacketsOut), append(lv, "out")...)
			ch <- prometheus.MustNewConstMetric(descBytes, prometheus.CounterValue, float64(li.BytesIn), append(lv, "in")...)
			ch <- prometheus.MustNewConstMetric(descBytes, prometheus.CounterValue, float64(li.BytesOut), append(lv, "out")...)
		} else {
			ch <- prometheus.MustNewConstMetric(descAccepted, prometheus.CounterValue, float64(li.Accepted), lv...)
		}
	}
}

var _ prometheus.Collector = Collector{}
