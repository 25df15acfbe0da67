// Package nshttp brings network namespaces to Caddy's HTTP server: a
// reverse_proxy transport (http.reverse_proxy.transport.netns) whose
// upstreams may live in other network namespaces, named with the listen
// grammar netns/<namespace>/<network>/<ip>:<port>; a request matcher
// (http.matchers.netns) for the namespace a request arrived in; and the
// placeholders {http.request.netns.name}, {http.request.netns.inode} and
// {http.request.netns.id}, the HTTP counterparts of {l4.netns.*}.
//
// The transport wraps Caddy's standard HTTP transport, so TLS to upstreams,
// HTTP/2, keep-alive pools, timeouts and health checks work as there; it
// owns the dial: the socket is created inside the namespace
// (nsenter.Dial) after the config's allow list (nspolicy) allowed it.
// Connection pools are keyed by the namespace's identity (device, inode),
// so a connection dialed in one namespace never carries a request meant
// for another.
package nshttp
