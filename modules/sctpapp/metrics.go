package sctpapp

import (
	"github.com/prometheus/client_golang/prometheus"
)

// collector exports the sctp app's counts, per server (label server, the
// server's name in the config):
//
//	caddy_sctp_associations_open                   associations accepted and not yet ended
//	caddy_sctp_associations_total                  associations accepted
//	caddy_sctp_aborts_total                        associations that ended with an error (abort, no route, no upstream)
//
// and per server and upstream (label upstream, the dial address as
// configured, placeholders and all):
//
//	caddy_sctp_upstream_associations_open          associations relayed to the upstream now
//	caddy_sctp_upstream_associations_total         associations relayed to it
//	caddy_sctp_upstream_aborts_total               of those, ended with an error
//	caddy_sctp_upstream_dial_failures_total        failed attempts to set up an association to it
//	caddy_sctp_upstream_messages_total{direction}  messages forwarded, up (to it) or down (from it)
//	caddy_sctp_upstream_bytes_total{direction}     their bytes
type collector struct{}

var (
	srvLabels = []string{"server"}
	upLabels  = []string{"server", "upstream"}
	dirLabels = []string{"server", "upstream", "direction"}

	descOpen     = prometheus.NewDesc("caddy_sctp_associations_open", "SCTP associations accepted and not yet ended.", srvLabels, nil)
	descTotal    = prometheus.NewDesc("caddy_sctp_associations_total", "SCTP associations accepted.", srvLabels, nil)
	descAborts   = prometheus.NewDesc("caddy_sctp_aborts_total", "SCTP associations that ended with an error (abort, no route, no upstream).", srvLabels, nil)
	descUpOpen   = prometheus.NewDesc("caddy_sctp_upstream_associations_open", "SCTP associations relayed to the upstream now.", upLabels, nil)
	descUpTotal  = prometheus.NewDesc("caddy_sctp_upstream_associations_total", "SCTP associations relayed to the upstream.", upLabels, nil)
	descUpAborts = prometheus.NewDesc("caddy_sctp_upstream_aborts_total", "SCTP associations relayed to the upstream that ended with an error.", upLabels, nil)
	descUpDials  = prometheus.NewDesc("caddy_sctp_upstream_dial_failures_total", "Failed attempts to set up an SCTP association to the upstream.", upLabels, nil)
	descUpMsgs   = prometheus.NewDesc("caddy_sctp_upstream_messages_total", "SCTP messages forwarded to (up) and from (down) the upstream.", dirLabels, nil)
	descUpBytes  = prometheus.NewDesc("caddy_sctp_upstream_bytes_total", "Bytes of SCTP messages forwarded to (up) and from (down) the upstream.", dirLabels, nil)
	allDescs     = []*prometheus.Desc{descOpen, descTotal, descAborts, descUpOpen, descUpTotal, descUpAborts, descUpDials, descUpMsgs, descUpBytes}
)

// Describe sends the descriptors.
func (collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
}

// Collect sends the current values.
func (collector) Collect(ch chan<- prometheus.Metric) {
	ms := snapshot()
	gauge, counter := prometheus.GaugeValue, prometheus.CounterValue
	for name, s := range ms.srv {
		ch <- prometheus.MustNewConstMetric(descOpen, gauge, float64(s.open), name)
		ch <- prometheus.MustNewConstMetric(descTotal, counter, float64(s.total), name)
		ch <- prometheus.MustNewConstMetric(descAborts, counter, float64(s.aborts), name)
	}
	for k, u := range ms.ups {
		ch <- prometheus.MustNewConstMetric(descUpOpen, gauge, float64(u.open), k.server, k.upstream)
		ch <- prometheus.MustNewConstMetric(descUpTotal, counter, float64(u.total), k.server, k.upstream)
		ch <- prometheus.MustNewConstMetric(descUpAborts, counter, float64(u.aborts), k.server, k.upstream)
		ch <- prometheus.MustNewConstMetric(descUpDials, counter, float64(u.dialFailures), k.server, k.upstream)
		ch <- prometheus.MustNewConstMetric(descUpMsgs, counter, float64(u.up.Messages), k.server, k.upstream, "up")
		ch <- prometheus.MustNewConstMetric(descUpMsgs, counter, float64(u.down.Messages), k.server, k.upstream, "down")
		ch <- prometheus.MustNewConstMetric(descUpBytes, counter, float64(u.up.Bytes), k.server, k.upstream, "up")
		ch <- prometheus.MustNewConstMetric(descUpBytes, counter, float64(u.down.Bytes), k.server, k.upstream, "down")
	}
}

var _ prometheus.Collector = collector{}
