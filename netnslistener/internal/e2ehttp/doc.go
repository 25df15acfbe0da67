// Package e2ehttp holds the end-to-end tests of modules/nshttp (the netns
// reverse_proxy transport, matcher and placeholders): they drive a real
// Caddy through the e2e harness, which is internal to netnslistener.
package e2ehttp
