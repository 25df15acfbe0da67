// Package fanin serves many listening sockets through one net.Listener, and
// many UDP sockets through one net.PacketConn, on a constant number of
// goroutines: a namespace costs a socket, not a goroutine.
//
// A Listener or PacketConn owns one epoll instance. Member sockets (each
// typically created inside its own network namespace) are added to it with
// AddFD or AddFile and a tag, and removed with Remove, at any time. The
// epoll descriptor is itself pollable: it is wrapped in an *os.File so Go's
// netpoller watches it, and the one goroutine in Accept or ReadFrom parks
// on it through SyscallConn().Read. When any member is ready, epoll_wait
// (timeout 0) names it; Accept then accept4()s on that member until EAGAIN
// and hands out ordinary *net.TCPConn values (so the kernel's splice path
// keeps working), ReadFrom reads one datagram from it straight into the
// caller's buffer. No member has a goroutine, a buffer or a timer of its
// own; idle, a member costs its socket in the kernel and a few hundred
// bytes here (0.3 KiB of RSS each at 10,000 members, TestScale).
//
// # Which member
//
// Every connection and datagram says which member it came in on, without a
// system call:
//
//   - Listener.Accept returns a *Conn: the *net.TCPConn embedded (its
//     ReadFrom and WriteTo are promoted, so io.Copy between two of them, or
//     between one and a *net.TCPConn, still splices) and Tag(). NetConn
//     returns the bare *net.TCPConn. AcceptTagged returns both apart.
//   - PacketConn.ReadFrom returns an *Addr: the client's address and port
//     and the member. Its String is "<ip>:<port>%<label>" so that two
//     clients with the same address in two namespaces are two flows to a
//     consumer that keys flows by RemoteAddr().String(). WriteTo with that
//     *Addr sends the reply from the same member socket.
//
// # Under caddy-l4
//
// caddy-l4 sees one net.Listener (or one net.PacketConn) per listen address
// however many namespaces it spans, so it runs one accept loop for all of
// them. The namespace glue creates each member socket inside its namespace
// (a locked thread, setns, socket, setns back), adds it here with a tag
// naming the namespace (its name and (device, inode) identity), and removes
// it when the namespace goes away. A matcher or placeholder learns the
// arrival namespace from Conn.Tag (streams) or Addr.Tag (datagrams),
// reached through layer4.Connection.Conn and its RemoteAddr, instead of
// asking the kernel (SIOCGSKNS) per connection. A proxy that wants the
// bare *net.TCPConn unwraps it with NetConn.
//
// caddy-l4 stops serving a listener on its first accept error that is not
// a timeout. So Accept does not return the errors of a full descriptor
// table or of memory pressure (EMFILE, ENFILE, ENOBUFS, ENOMEM): it backs
// off (5 ms, doubling to 1 s) and tries again, counting them in the
// member's Stats. Several users may call Accept (or ReadFrom) on one
// Listener (PacketConn), each connection going to one of them; Wake makes
// the calls waiting at that moment return ErrWoken, which the glue uses to
// close one user's handle without closing the members: ErrWoken must not
// reach caddy-l4.
//
// Accepted connections are made with net.FileConn, the one way the
// standard library has: it duplicates the descriptor and asks the kernel
// for its addresses, and enables keep-alive (15 s idle) and TCP_NODELAY as
// net.Listen's listeners do; SetKeepAlive changes the keep-alive. The
// descriptor is accepted blocking, which spares the throwaway *os.File a
// netpoller registration (BenchmarkNewTCPConn).
//
// # Guarantees
//
//   - A member is taken out of the epoll set before its descriptor is
//     closed, and its descriptor is closed by Remove (no leak).
//   - Once Remove returns, the member delivers nothing more: no connection
//     is accepted on it, and accepted connections still queued are closed
//     (as the kernel resets a closed listener's backlog).
//   - Close, and a read deadline set with SetDeadline, wake a parked
//     Accept or ReadFrom.
//   - Members are level-triggered; one goroutine at a time waits on the
//     epoll descriptor (concurrent callers queue behind it).
//   - One busy member does not starve the others: ReadFrom takes at most
//     64 datagrams from the members of one epoll_wait before asking again,
//     Accept at most 64 connections per member per round.
//   - ICMP errors queued on a UDP member (IP_RECVERR) are discarded and
//     counted, not returned; a member that epoll keeps naming without
//     giving anything makes the reader yield, never spin.
//
// The package is Linux only; elsewhere its constructors return
// ErrUnsupported.
package fanin
