// Package caddynetns brings every module of this repository into a Caddy
// build, so that one `xcaddy build --with github.com/caddy-netns/caddy-netns`
// is enough.
package caddynetns

import (
	_ "github.com/caddy-netns/caddy-netns/l4sctp"
	_ "github.com/caddy-netns/caddy-netns/modules/nshttp"
	_ "github.com/caddy-netns/caddy-netns/netnslistener"
	_ "github.com/caddy-netns/caddy-netns/netnslistener/nsadmin"
	_ "github.com/caddy-netns/caddy-netns/netnslistener/nsmatch"
	_ "github.com/caddy-netns/caddy-netns/netnslistener/nsproxy"
)
