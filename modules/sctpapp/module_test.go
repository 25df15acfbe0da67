package sctpapp

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestParseTarget(t *testing.T) {
	for _, tc := range []struct {
		in                    string
		ns, network, hostport string
		err                   string
	}{
		{in: "sctp/127.0.0.1:38412", network: "sctp", hostport: "127.0.0.1:38412"},
		{in: "sctp6/[::1]:2905", network: "sctp6", hostport: "[::1]:2905"},
		{in: "SCTP4/gw.example:2905", network: "sctp4", hostport: "gw.example:2905"},
		{in: "netns/ns2/sctp/10.0.0.2:38412", ns: "ns2", network: "sctp", hostport: "10.0.0.2:38412"},
		{in: "netns//run/netns/x/sctp/10.0.0.2:1", ns: "/run/netns/x", network: "sctp", hostport: "10.0.0.2:1"},
		{in: "netns/[ns2/sctp6/fd00::2]:38412", ns: "ns2", network: "sctp6", hostport: "[fd00::2]:38412"},
		{in: "sctp/10.0.0.1,10.0.1.1:38412", network: "sctp", hostport: "10.0.0.1/10.0.1.1:38412"},
		{in: "netns/ns2/sctp/10.0.0.2,10.0.1.2:38412", ns: "ns2", network: "sctp", hostport: "10.0.0.2/10.0.1.2:38412"},
		{in: "netns/[ns2/sctp6/fd00::2,fd00:1::2]:38412", ns: "ns2", network: "sctp6", hostport: "[fd00::2]/[fd00:1::2]:38412"},
		{in: "netns/ns2/sctp/10.0.0.2,core.example:38412", err: `host "core.example" of a multi-homed upstream must be an IP address`},
		{in: "netns/ns2/sctp/10.0.0.2,:38412", err: `host "" of a multi-homed upstream`},
		{in: "127.0.0.1:38412", err: "missing network"},
		{in: "tcp/127.0.0.1:38412", err: `network "tcp" is not SCTP`},
		{in: "netns/ns2/tcp/10.0.0.2:80", err: `network "tcp" is not SCTP`},
		{in: "netns/ns2/sctp/gw.example:80", err: "must be an IP address"},
		{in: "sctp/:38412", err: "missing host"},
		{in: "sctp/127.0.0.1:1-2", err: "port ranges"},
		{in: "netns/ns2/sctp/10.0.0.2:1-2", err: "port ranges"},
		{in: "sctp/127.0.0.1", err: "127.0.0.1"},
	} {
		got, err := parseTarget(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("parseTarget(%q) = %+v, %v; want error with %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got.ns != tc.ns || got.network != tc.network || got.hostport != tc.hostport {
			t.Errorf("parseTarget(%q) = %+v, %v; want ns %q network %q hostport %q", tc.in, got, err, tc.ns, tc.network, tc.hostport)
		}
	}
}

func TestParseListenAddress(t *testing.T) {
	for _, tc := range []struct{ in, err string }{
		{in: "sctp/:38412"},
		{in: "sctp4/127.0.0.1:38412-38413"},
		{in: "sctp6/[::1]:38412"},
		{in: "netns/ns1/sctp/:38412"},
		{in: "netns/[ns1/sctp6/::1]:38412"},
		{in: ":38412", err: `network "tcp" is not SCTP`},
		{in: "udp/:38412", err: `network "udp" is not SCTP`},
		{in: "netns/ns1/tcp/:38412", err: `network "tcp" is not SCTP`},
		{in: "netns/ns1/:38412", err: "missing"},
	} {
		_, err := parseListenAddress(tc.in)
		if tc.err == "" && err != nil {
			t.Errorf("parseListenAddress(%q): %v", tc.in, err)
		}
		if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("parseListenAddress(%q) = %v; want error with %q", tc.in, err, tc.err)
		}
	}
}

func TestCaddyfileErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in, err string
		unm           caddyfile.Unmarshaler
	}{
		{"proxy option", "proxy {\n bogus\n}", `unrecognized proxy option "bogus"`, new(Proxy)},
		{"empty upstream", "proxy {\n upstream\n}", "wrong argument count", new(Proxy)},
		{"dial_timeout value", "proxy a {\n dial_timeout soon\n}", "dial_timeout", new(Proxy)},
		{"dial_timeout args", "proxy a {\n dial_timeout 1s 2s\n}", "wrong argument count", new(Proxy)},
		{"echo args", "echo loud", "wrong argument count", new(Echo)},
		{"echo block", "echo {\n loud\n}", "no options", new(Echo)},
		{"undefined matcher", "sctp/:1 {\n route @m {\n echo\n }\n}", `route: matcher "@m" is not defined`, new(Server)},
		{"unknown matcher", "sctp/:1 {\n @m sni x\n}", `unrecognized sctp matcher "sni"`, new(Server)},
		{"matcher args", "sctp/:1 {\n @m ppid\n}", "wrong argument count", new(Server)},
		{"ppid value", "sctp/:1 {\n @m ppid ngap\n}", `ppid "ngap": want a number`, new(Server)},
		{"matcher twice", "sctp/:1 {\n @m ppid 1\n @m ppid 2\n}", "matcher @m defined twice", new(Server)},
		{"server option", "sctp/:1 {\n idle_timeout 1s\n}", `unrecognized sctp server option "idle_timeout"`, new(Server)},
		{"unknown handler", "sctp/:1 {\n route {\n teleport\n }\n}", "sctp.handlers.teleport", new(Server)},
		{"max_message_size value", "sctp/:1 {\n max_message_size lots\n}", `max_message_size "lots"`, new(Server)},
		{"max_message_size zero", "sctp/:1 {\n max_message_size 0\n}", `max_message_size "0"`, new(Server)},
		{"max_message_size huge", "sctp/:1 {\n max_message_size 2GiB\n}", `max_message_size "2GiB"`, new(Server)},
		{"tuning option", "sctp/:1 {\n tuning {\n warp 9\n }\n}", `unrecognized tuning option "warp"`, new(Server)},
		{"tuning number", "proxy a {\n tuning {\n out_streams 70000\n }\n}", `out_streams "70000": want a whole number from 1 to 65535`, new(Proxy)},
		{"tuning duration", "proxy a {\n tuning {\n rto_min soon\n }\n}", `rto_min "soon"`, new(Proxy)},
		{"tuning nodelay", "proxy a {\n tuning {\n nodelay maybe\n }\n}", `nodelay "maybe": want on or off`, new(Proxy)},
		{"tuning size", "proxy a {\n tuning {\n read_buffer big\n }\n}", `read_buffer "big"`, new(Proxy)},
		{"tuning args", "proxy a {\n tuning {\n sack_delay\n }\n}", "wrong argument count", new(Proxy)},
		{"max_message_size args", "sctp/:1 {\n max_message_size\n}", "wrong argument count", new(Server)},
	} {
		d := caddyfile.NewTestDispenser(tc.in)
		if _, ok := tc.unm.(*Server); ok {
			d.Next()
		}
		err := tc.unm.UnmarshalCaddyfile(d)
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: %v; want error with %q", tc.name, err, tc.err)
		}
	}
}

func TestServerCaddyfile(t *testing.T) {
	s := new(Server)
	d := caddyfile.NewTestDispenser("sctp/:1 {\n max_message_size 1MiB\n route {\n echo\n }\n}")
	d.Next()
	if err := s.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	if s.MaxMessageSize != 1<<20 || len(s.Routes) != 1 {
		t.Errorf("max_message_size %d, %d routes", s.MaxMessageSize, len(s.Routes))
	}
}

func TestRouteMatchersCaddyfile(t *testing.T) {
	s := new(Server)
	d := caddyfile.NewTestDispenser(`netns/ns1/sctp/:38412 {
	@ngap ppid 60
	@core {
		remote_ip 10.0.0.0/8 fd00::1
		local_port 38412 36412
	}
	@tenants netns tenant-a /run/netns/b
	route @ngap @core {
		echo
	}
	route @tenants {
		echo
	}
	route {
		echo
	}
}`)
	d.Next()
	if err := s.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	got, err := json.Marshal(s.Routes)
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"match":[{"ppid":[60]},{"local_port":[38412,36412],"remote_ip":{"ranges":["10.0.0.0/8","fd00::1"]}}],"handle":[{"handler":"echo"}]},` +
		`{"match":[{"netns":["tenant-a","/run/netns/b"]}],"handle":[{"handler":"echo"}]},{"handle":[{"handler":"echo"}]}]`
	if string(got) != want {
		t.Errorf("routes\n%s\nwant\n%s", got, want)
	}
}

func TestProxyCaddyfile(t *testing.T) {
	p := new(Proxy)
	d := caddyfile.NewTestDispenser("proxy sctp/127.0.0.1:1 netns/ns2/sctp/10.0.0.2:2 {\n upstream sctp/127.0.0.1:3 sctp/127.0.0.1:4\n dial_timeout 2s\n}")
	if err := p.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	var got [][]string
	for _, u := range p.Upstreams {
		got = append(got, u.Dial)
	}
	want := "[[sctp/127.0.0.1:1] [netns/ns2/sctp/10.0.0.2:2] [sctp/127.0.0.1:3 sctp/127.0.0.1:4]]"
	if s := fmt.Sprint(got); s != want {
		t.Errorf("upstreams %s, want %s", s, want)
	}
	if time.Duration(p.DialTimeout) != 2*time.Second {
		t.Errorf("dial_timeout %v", p.DialTimeout)
	}
}

func TestProxyBalancingCaddyfile(t *testing.T) {
	p := new(Proxy)
	d := caddyfile.NewTestDispenser(`proxy {
	upstream sctp/127.0.0.1:3 {
		max_associations 2
	}
	upstream sctp/127.0.0.1:4
	lb_policy round_robin
	fail_duration 30s
	max_fails 2
	abort_within 1s
	health_interval 10s
	health_timeout 2s
	health_fails 3
	health_passes 2
}`)
	if err := p.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	got, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"upstreams":[{"dial":["sctp/127.0.0.1:3"],"max_associations":2},{"dial":["sctp/127.0.0.1:4"]}],` +
		`"load_balancing":{"selection":"round_robin"},"health_checks":{"active":{"interval":10000000000,"timeout":2000000000,"fails":3,"passes":2},` +
		`"passive":{"fail_duration":30000000000,"max_fails":2,"abort_within":1000000000}}}`
	if string(got) != want {
		t.Errorf("proxy\n%s\nwant\n%s", got, want)
	}
	for _, tc := range []struct{ in, err string }{
		{"proxy a {\n lb_policy fastest\n}", `lb_policy: selection: unknown policy "fastest"`},
		{"proxy a {\n max_fails many\n}", `max_fails "many": want a number`},
		{"proxy a {\n health_interval often\n}", `health_interval "often"`},
		{"proxy {\n upstream a {\n weight 2\n }\n}", `unrecognized upstream option "weight"`},
	} {
		err := new(Proxy).UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%q: %v; want error with %q", tc.in, err, tc.err)
		}
	}
}

// The selection policies order the available upstreams; upstreams marked
// down, with failures remembered or at max_associations are left out.
func TestSelectionOrder(t *testing.T) {
	mk := func(policy string) (*Proxy, []*ucand) {
		p := &Proxy{LoadBalancing: &LoadBalancing{Selection: policy},
			HealthChecks: &HealthChecks{Passive: &PassiveHealthChecks{FailDuration: caddy.Duration(time.Minute), MaxFails: 1}}}
		var cands []*ucand
		for i := range 4 {
			u := &Upstream{Dial: []string{fmt.Sprint(i)}, MaxAssociations: 2}
			cands = append(cands, &ucand{u: u, targets: []tcand{{st: new(state)}}})
		}
		return p, cands
	}
	names := func(cs []*ucand) string {
		var s []string
		for _, c := range cs {
			s = append(s, c.u.Dial[0])
		}
		return strings.Join(s, " ")
	}
	p, cands := mk("")
	cands[1].targets[0].st.Unhealthy.Store(true)
	cands[2].targets[0].st.Fails.Store(1)
	if got := names(p.order(cands, nil)); got != "0 3" {
		t.Errorf("first: %q, want 0 3", got)
	}
	cands[3].targets[0].st.Sessions.Store(2)
	if got := names(p.order(cands, nil)); got != "0" {
		t.Errorf("first with 3 at max_associations: %q, want 0", got)
	}

	p, cands = mk(SelectRoundRobin)
	var firsts []string
	for range 5 {
		firsts = append(firsts, p.order(cands, nil)[0].u.Dial[0])
	}
	if got := strings.Join(firsts, " "); got != "0 1 2 3 0" {
		t.Errorf("round_robin firsts: %q, want 0 1 2 3 0", got)
	}
	if got := names(p.order(cands, nil)); got != "1 2 3 0" {
		t.Errorf("round_robin order: %q, want 1 2 3 0", got)
	}

	p, cands = mk(SelectLeastAssociations)
	for i, n := range []int32{1, 0, 1, 0} {
		cands[i].targets[0].st.Sessions.Store(n)
	}
	if got := names(p.order(cands, nil)); got != "1 3 0 2" {
		t.Errorf("least_associations: %q, want 1 3 0 2", got)
	}

	p, cands = mk(SelectRandom)
	seen := map[string]bool{}
	for range 200 {
		o := p.order(cands, nil)
		if len(o) != 4 {
			t.Fatalf("random left out upstreams: %q", names(o))
		}
		seen[o[0].u.Dial[0]] = true
	}
	if len(seen) != 4 {
		t.Errorf("random: first upstreams %v in 200 orders, want all 4", seen)
	}
}
