package nsnetwork

import (
	"context"
	"errors"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-netns/caddy-netns/allow"
)

// PolicyApp is the name of the netns app (modules/nspolicy), which holds a
// config's allow list.
const PolicyApp = "netns"

// PolicyFor returns the allow policy of the config that ctx belongs to:
// ctx must be the caddy.Context an app was provisioned with (Caddy apps
// pass theirs to the listen functions of networks). Any other context, or
// a config without the netns app, gets the process's ceiling alone.
//
// The app is found by name and asked for its list through an interface,
// so this network glue does not import the app.
func PolicyFor(ctx context.Context) (*allow.Policy, error) {
	var config *allow.List
	if cc, ok := ctx.(caddy.Context); ok {
		app, err := cc.AppIfConfigured(PolicyApp)
		switch {
		case err == nil:
			l, ok := app.(interface{ AllowList() *allow.List })
			if !ok {
				return nil, errors.New("app " + PolicyApp + " does not hold an allow list")
			}
			config = l.AllowList()
		case !errors.Is(err, caddy.ErrNotConfigured):
			return nil, err
		}
	}
	return allow.New(config)
}
