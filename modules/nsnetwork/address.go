package nsnetwork

import "github.com/caddy-netns/caddy-netns/address"

// Network is the name this package registers with Caddy.
const Network = address.Network

// Address is a parsed netns address (see package address).
type Address = address.Address

// ParseAddress parses a full netns address (address.Parse).
func ParseAddress(s string) (Address, error) { return address.Parse(s) }
