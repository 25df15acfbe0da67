// Package nswatch tells when the entries of a directory of namespace files
// (such as /var/run/netns) change, through inotify, without holding an OS
// thread. It knows nothing of Caddy: it only says "look again"; callers
// list the directory and compare.
package nswatch
