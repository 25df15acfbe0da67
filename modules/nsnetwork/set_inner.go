package nsnetwork

import (
	"net"
	"sync"
)

// An inner network (RegisterInnerNetwork) forms sets like tcp does when
// its handles are net.Listeners: each member's Accept feeds the set's one
// listener. An app that wants its own listener type rather than a
// net.Listener (the sctp app asks for AcceptConn) registers a wrapper that
// turns the set's listener into it.

var (
	setWrapMu sync.RWMutex
	setWrap   = map[string]func(net.Listener) any{}
)

// RegisterSetListener makes sets of the inner network return
// wrap(setListener) to Caddy instead of the set's plain net.Listener,
// whose Accept returns the connections that the members' own Accept
// return. Closing the wrapper must close the listener it was given. Call
// it from init, next to RegisterInnerNetwork.
func RegisterSetListener(network string, wrap func(net.Listener) any) {
	setWrapMu.Lock()
	defer setWrapMu.Unlock()
	setWrap[network] = wrap
}

func wrapSetListener(network string, ln net.Listener) any {
	setWrapMu.RLock()
	wrap := setWrap[network]
	setWrapMu.RUnlock()
	if wrap == nil {
		return ln
	}
	return wrap(ln)
}
