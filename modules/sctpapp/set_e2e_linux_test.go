//go:build linux && !386

package sctpapp_test

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/caddy-netns/caddy-netns/internal/testenv/sctptest"
)

// A listen address naming a set of namespaces (a glob) accepts
// associations in every member, including a namespace created after the
// config was loaded.
func TestSetListensInEveryMember(t *testing.T) {
	a := requireGuestSetup(t)
	prefix := fmt.Sprintf("sset%d-", os.Getpid())
	first := sctptest.NewNetns(t, prefix+"a")
	a.mustLoad(t, a.sctpConfig(map[string]string{
		"set": `{"listen":["netns/` + prefix + `*/sctp/127.0.0.1:7"],"routes":[{"handle":[{"handler":"echo"}]}]}`,
	}, ""))
	exchange(t, mustDial(t, first, "127.0.0.1:7"), makeSpecs(12, 4, 7000), 0, true)

	later := sctptest.NewNetns(t, prefix+"b")
	var err error
	for range 100 { // the set follows /var/run/netns within a second
		var c interface{ Close() error }
		if c, err = dialFrom(t, later, "127.0.0.1:7"); err == nil {
			c.Close()
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("new member never answered: %v", err)
	}
	exchange(t, mustDial(t, later, "127.0.0.1:7"), makeSpecs(12, 4, 8000), 0, true)
}
