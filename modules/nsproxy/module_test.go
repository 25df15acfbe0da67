package nsproxy

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestParseTarget(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{in: "netns/ns2/tcp/10.0.0.2:80", want: "netns/ns2/tcp/10.0.0.2:80"},
		{in: "netns/ns2/udp/10.0.0.2:53", want: "netns/ns2/udp/10.0.0.2:53"},
		{in: "netns//var/run/netns/ns2/tcp4/127.0.0.1:80", want: "netns//var/run/netns/ns2/tcp4/127.0.0.1:80"},
		{in: "netns/[ns2/tcp6/::1]:80", want: "netns/[ns2/tcp6/::1]:80"},
		{in: "127.0.0.1:80", want: "tcp/127.0.0.1:80"},
		{in: "udp/127.0.0.1:53", want: "udp/127.0.0.1:53"},
		{in: "localhost:80", want: "tcp/localhost:80"},
		{in: "netns/ns2/tcp/backend:80", err: "must be an IP address"},
		{in: "netns/ns2/sctp/10.0.0.2:80", err: "sctp"},
		{in: "netns/ns2/tcp/10.0.0.2:80-81", err: "port ranges"},
		{in: "netns/ns2/tcp/10.0.0.2:0", err: "missing port"},
		{in: "netns/tcp/10.0.0.2:80", err: "missing namespace or network"},
		{in: "unix//run/x.sock", err: "cannot be dialed"},
		{in: "127.0.0.1:80-81", err: "port ranges"},
		{in: ":80", err: "missing host"},
	} {
		got, err := parseTarget(tc.in)
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", tc.in, err, tc.err)
			}
		case err != nil:
			t.Errorf("%q: %v", tc.in, err)
		case got.String() != tc.want:
			t.Errorf("%q: %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestUnmarshalCaddyfile(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{in: `netns_proxy netns/ns2/tcp/10.0.0.2:80`, want: `{"upstreams":[{"dial":"netns/ns2/tcp/10.0.0.2:80"}]}`},
		{in: `netns_proxy a:1 {
			upstream netns/{l4.netns.name}/tcp/127.0.0.1:9000 {
				max_connections 10
				weight 3
			}
			dial_timeout 2s
			lb_policy round_robin
			lb_try_duration 1s
			lb_try_interval 100ms
			health_interval 5s
			health_timeout 1s
			health_port 81
			health_rise 2
			health_fall 3
			fail_duration 10s
			max_fails 2
			unhealthy_connection_count 100
		}`, want: `{"upstreams":[{"dial":"a:1"},{"dial":"netns/{l4.netns.name}/tcp/127.0.0.1:9000","max_connections":10,"weight":3}],` +
			`"dial_timeout":2000000000,"load_balancing":{"selection":{"policy":"round_robin"},"try_duration":1000000000,"try_interval":100000000},` +
			`"health_checks":{"active":{"port":81,"interval":5000000000,"timeout":1000000000,"fall":3,"rise":2},` +
			`"passive":{"fail_duration":10000000000,"max_fails":2,"unhealthy_connection_count":100}}}`},
		{in: "netns_proxy {\n lb_policy random_choose 3\n upstream a:1\n}", want: `{"upstreams":[{"dial":"a:1"}],"load_balancing":{"selection":{"choose":3,"policy":"random_choose"}}}`},
		{in: "netns_proxy {\n upstream\n}", err: "at least one dial address"},
		{in: "netns_proxy {\n upstream a:1 b:2\n}", want: `{"upstreams":[{"dial":["a:1","b:2"]}]}`},
		{in: "netns_proxy {\n upstream {\n dial a:1 b:2\n local_addr 10.0.0.1 ::1\n }\n health_interval 2s\n close_if_unhealthy\n}",
			want: `{"upstreams":[{"dial":["a:1","b:2"],"local_address":["10.0.0.1","::1"]}],"health_checks":{"active":{"interval":2000000000,"close_if_unhealthy":true}}}`},
		{in: "netns_proxy {\n upstream a:1 {\n tls\n tls_server_name b\n }\n}", want: `{"upstreams":[{"dial":"a:1","tls":{"server_name":"b"}}]}`},
		{in: "netns_proxy {\n upstream a:1 {\n nosuch\n }\n}", err: `nosuch`},
		{in: "netns_proxy {\n dial_timeout soon\n}", err: "dial_timeout"},
		{in: "netns_proxy {\n max_fails x\n}", err: `max_fails`},
		{in: "netns_proxy {\n lb_policy nosuch\n}", err: "nosuch"},
		{in: "netns_proxy {\n proxy_protocol v2\n proxy_protocol_netns\n upstream a:1\n}", want: `{"upstreams":[{"dial":"a:1"}],"proxy_protocol":"v2","proxy_protocol_netns":true}`},
		{in: "netns_proxy {\n proxy_protocol_netns x\n}", err: `takes no arguments`},
		{in: "netns_proxy {\n dial_timeout\n}", err: `dial_timeout`},
		{in: "netns_proxy a:1 {\n udp_quarantine 3s\n udp_quarantine_max 100\n}", want: `{"upstreams":[{"dial":"a:1"}],"udp_quarantine":3000000000,"udp_quarantine_max":100}`},
		{in: "netns_proxy {\n udp_quarantine later\n}", err: `udp_quarantine`},
		{in: "netns_proxy {\n udp_quarantine_max many\n}", err: `udp_quarantine_max "many"`},
		{in: "netns_proxy {\n health_port 80 {\n x\n }\n}", err: "blocks are not supported"},
	} {
		var h Handler
		err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.in))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		got, _ := json.Marshal(&h)
		if string(got) != tc.want {
			t.Errorf("%q:\n got %s\nwant %s", tc.in, got, tc.want)
		}
	}
}
