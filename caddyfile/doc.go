// Package caddyfile holds the Caddyfile golden tests of this repository:
// every Caddyfile under examples/ must adapt to the JSON committed beside
// it, and the .caddytest files in testdata/ pin the adapted form of the
// address grammar in each place a Caddyfile can use it.
package caddyfile
