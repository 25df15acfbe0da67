package address

import (
	"slices"
	"strings"
	"sync"
)

var networks struct {
	sync.RWMutex
	names map[string]bool
}

// RegisterNetwork adds an inner network name (sctp) that addresses may
// use besides the built-in ones. The network glue registers the inner
// networks whose sockets it can make.
func RegisterNetwork(name string) {
	networks.Lock()
	defer networks.Unlock()
	if networks.names == nil {
		networks.names = map[string]bool{}
	}
	networks.names[name] = true
}

func registered(name string) bool {
	networks.RLock()
	defer networks.RUnlock()
	return networks.names[name]
}

// innerList lists the registered networks for errors, ", sctp, sctp4".
func innerList() string {
	networks.RLock()
	defer networks.RUnlock()
	if len(networks.names) == 0 {
		return ""
	}
	names := make([]string, 0, len(networks.names))
	for name := range networks.names {
		names = append(names, name)
	}
	slices.Sort(names)
	return ", " + strings.Join(names, ", ")
}
