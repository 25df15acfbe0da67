// Package caddynetns brings every module of this repository into a Caddy
// build, so that one `xcaddy build --with github.com/caddy-netns/caddy-netns`
// is enough.
package caddynetns

import (
	_ "github.com/caddy-netns/caddy-netns/modules/nsadmin"
	_ "github.com/caddy-netns/caddy-netns/modules/nshttp"
	_ "github.com/caddy-netns/caddy-netns/modules/nsmatch"
	_ "github.com/caddy-netns/caddy-netns/modules/nsnetwork"
	_ "github.com/caddy-netns/caddy-netns/modules/nspolicy"
	_ "github.com/caddy-netns/caddy-netns/modules/nsproxy"
	_ "github.com/caddy-netns/caddy-netns/modules/sctpapp"
)
