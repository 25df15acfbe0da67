// Package nsenter creates sockets inside Linux network namespaces without
// holding an OS thread once the socket exists. It knows nothing of Caddy.
package nsenter
