package sctpapp_test

import (
	"strings"
	"testing"
)

// Configs the app refuses at provisioning, before any socket exists, so
// these run on any host.
func TestConfigErrors(t *testing.T) {
	a := startCaddy(t)
	echo := `{"handler":"echo"}`
	proxy := func(dial string) string { return `{"handler":"proxy","upstreams":[{"dial":["` + dial + `"]}]}` }
	for _, tc := range []struct{ name, server, want string }{
		{"no listen", `{"routes":[{"handle":[` + echo + `]}]}`, "listen: no address"},
		{"tcp listen", `{"listen":["tcp/:38412"],"routes":[{"handle":[` + echo + `]}]}`, `network "tcp" is not SCTP`},
		{"netns udp listen", `{"listen":["netns/ns1/udp/:38412"],"routes":[{"handle":[` + echo + `]}]}`, `network "udp" is not SCTP`},
		{"no route", `{"listen":["sctp/:38412"]}`, "the first route needs a handler"},
		{"two handlers", `{"listen":["sctp/:38412"],"routes":[{"handle":[` + echo + `,` + echo + `]}]}`, "routes[0]: 2 handlers: a route has exactly one"},
		{"route without handler", `{"listen":["sctp/:38412"],"routes":[{"handle":[` + echo + `]},{"match":[{"ppid":[60]}]}]}`, "routes[1]: no handler"},
		{"bad remote_ip", `{"listen":["sctp/:38412"],"routes":[{"match":[{"remote_ip":{"ranges":["10.0.0.0/33"]}}],"handle":[` + echo + `]}]}`, `remote_ip matcher: range "10.0.0.0/33"`},
		{"bad local_port", `{"listen":["sctp/:38412"],"routes":[{"match":[{"local_port":[70000]}],"handle":[` + echo + `]}]}`, "local_port matcher: port 70000 is outside"},
		{"empty ppid", `{"listen":["sctp/:38412"],"routes":[{"match":[{"ppid":[]}],"handle":[` + echo + `]}]}`, "ppid matcher: no PPIDs"},
		{"unknown matcher", `{"listen":["sctp/:38412"],"routes":[{"match":[{"sni":["x"]}],"handle":[` + echo + `]}]}`, "sctp.matchers.sni"},
		{"unknown handler", `{"listen":["sctp/:38412"],"routes":[{"handle":[{"handler":"teleport"}]}]}`, "sctp.handlers.teleport"},
		{"no upstream", `{"listen":["sctp/:38412"],"routes":[{"handle":[{"handler":"proxy"}]}]}`, "upstreams: none configured"},
		{"tcp upstream", `{"listen":["sctp/:38412"],"routes":[{"handle":[` + proxy("tcp/127.0.0.1:80") + `]}]}`, `upstreams[0].dial[0]: dial address "tcp/127.0.0.1:80": network "tcp" is not SCTP`},
		{"negative max_message_size", `{"listen":["sctp/:38412"],"max_message_size":-1,"routes":[{"handle":[` + echo + `]}]}`, "max_message_size: -1 is outside"},
		{"huge max_message_size", `{"listen":["sctp/:38412"],"max_message_size":2147483648,"routes":[{"handle":[` + echo + `]}]}`, "max_message_size: 2147483648 is outside"},
		{"server out_streams", `{"listen":["sctp/:38412"],"tuning":{"out_streams":5},"routes":[{"handle":[` + echo + `]}]}`, "tuning: out_streams: applies to upstream dials only"},
		{"rto order", `{"listen":["sctp/:38412"],"tuning":{"rto_min":"2s","rto_max":"1s"},"routes":[{"handle":[` + echo + `]}]}`, "tuning: rto_min 2s is above rto_max 1s"},
		{"sack delay", `{"listen":["sctp/:38412"],"routes":[{"handle":[{"handler":"proxy","tuning":{"sack_delay":"1s"},"upstreams":[{"dial":["sctp/127.0.0.1:1"]}]}]}]}`, "tuning: sack_delay: 1s is above 500ms"},
		{"selection", `{"listen":["sctp/:38412"],"routes":[{"handle":[{"handler":"proxy","load_balancing":{"selection":"fastest"},"upstreams":[{"dial":["sctp/127.0.0.1:1"]}]}]}]}`, `load_balancing: selection: unknown policy "fastest"`},
		{"max_associations", `{"listen":["sctp/:38412"],"routes":[{"handle":[{"handler":"proxy","upstreams":[{"dial":["sctp/127.0.0.1:1"],"max_associations":-1}]}]}]}`, "upstreams[0].max_associations: -1 is negative"},
		{"health interval", `{"listen":["sctp/:38412"],"routes":[{"handle":[{"handler":"proxy","health_checks":{"active":{"interval":-1}},"upstreams":[{"dial":["sctp/127.0.0.1:1"]}]}]}]}`, "health_checks: active: interval"},
		{"upstream name in netns", `{"listen":["sctp/:38412"],"routes":[{"handle":[` + proxy("netns/ns2/sctp/amf.example:38412") + `]}]}`, "must be an IP address"},
	} {
		err := a.load(a.sctpConfig(map[string]string{"n2": tc.server}, ""))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: load error %v; want %q", tc.name, err, tc.want)
		}
		if err != nil && !strings.Contains(err.Error(), `server "n2"`) {
			t.Errorf("%s: load error %q does not name the server", tc.name, err)
		}
	}
}
