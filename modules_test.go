package caddynetns_test

import (
	"testing"

	"github.com/caddyserver/caddy/v2"

	_ "github.com/caddy-netns/caddy-netns"
)

// TestEveryModuleIsLinked checks what `caddy list-modules` lists for a
// build with this module: every module of the repository, registered by
// the blank imports of imports.go. .ci/run checks the real binary.
func TestEveryModuleIsLinked(t *testing.T) {
	for _, id := range []string{
		"netns",                       // modules/nspolicy
		"layer4.handlers.netns_proxy", // modules/nsproxy
		"layer4.matchers.netns",       // modules/nsmatch
		"admin.api.netns",             // modules/nsadmin
		"sctp",                        // modules/sctpapp
		"sctp.handlers.proxy",
		"sctp.handlers.echo",
	} {
		if _, err := caddy.GetModule(id); err != nil {
			t.Errorf("module %s is not in a build with %s: %v", id, "github.com/caddy-netns/caddy-netns", err)
		}
	}
}
