// Package nsnetwork registers the "netns" network with Caddy, so that
// any Caddy app that listens through caddy.NetworkAddress can open its
// sockets inside a Linux network namespace.
package nsnetwork
