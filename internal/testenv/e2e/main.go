package e2e

import (
	"os"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
)

// MaybeRunCaddy turns the test binary into the caddy command when it was
// started by StartProcess. Call it first in TestMain.
func MaybeRunCaddy() {
	if os.Getenv(RunCaddyEnv) == "1" {
		caddycmd.Main()
		os.Exit(0)
	}
}
