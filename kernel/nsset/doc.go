// Package nsset keeps one listening address open in every network
// namespace of a set, on a constant number of goroutines: a member costs
// its socket, not a goroutine.
//
// A Set's members come from a directory and a glob (every namespace file
// that matches, followed live through kernel/nswatch and a periodic
// rescan) or from a static list of namespaces. Reconcile opens a member's
// socket through the Open function of the newest handle (the caller's
// socket pool and allow list), checks that the socket really lives in the
// namespace it checked (device, inode), and adds it to the set's one
// fanin.Listener (streams) or fanin.PacketConn (datagrams). A namespace
// whose file disappears, or now names another namespace, is removed from
// the fan-in before its socket is returned, so nothing is accepted in a
// namespace that is gone and nothing keeps it alive. A file that is not a
// namespace yet (`ip netns add` creates, then mounts) is retried quickly;
// other failures back off.
//
// Users of a set (one per config during a reload) each get a handle: a
// net.Listener or net.PacketConn on the set's fan-in. Every handle has its
// own allow function; a connection or datagram goes to a handle whose
// allow function admits its member, the one that took it from the fan-in
// if it does, else the newest that does. A closed handle returns
// net.ErrClosed; the fan-in's ErrWoken never leaves this package. The
// members close with the last handle.
//
// Networks whose sockets the fan-in cannot serve (SCTP: Kind Custom) keep
// one accept goroutine per member, feeding the handles through a channel.
//
// Everything here is Caddy-free; modules/nsnetwork is the glue.
package nsset
