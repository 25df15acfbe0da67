// Package nsenter creates sockets inside Linux network namespaces without
// holding an OS thread once the socket exists. It knows nothing of Caddy.
//
// Only socket(2) runs inside the namespace, on a goroutine locked to its
// thread (see Namespace.Do); bind, connect, accept, reads and writes
// follow from any goroutine, through Go's netpoller, because a socket
// stays in the namespace it was created in.
//
// Listen, ListenPacket and Dial give TCP and UDP sockets. SocketFile gives
// a socket of any other kind, for example a packet socket that sees every
// frame on one interface of the namespace:
//
//	ns, err := nsenter.Open("tenant-a") // or /run/netns/tenant-a, /proc/<pid>/ns/net
//	if err != nil { ... }
//	defer ns.Close() // the socket keeps the namespace alive by itself
//	const ethPAll = 0x0300 // htons(unix.ETH_P_ALL)
//	f, err := nsenter.SocketFile(ns, unix.AF_PACKET, unix.SOCK_RAW, ethPAll)
//	if err != nil { ... }
//	idx, err := nsenter.InterfaceIndex(f, "eth0") // eth0 of tenant-a, not ours
//	if err != nil { ... }
//	rc, _ := f.SyscallConn()
//	rc.Control(func(fd uintptr) {
//		err = unix.Bind(int(fd), &unix.SockaddrLinklayer{Protocol: ethPAll, Ifindex: idx})
//	})
//	f.SetReadDeadline(time.Now().Add(time.Second))
//	n, err := f.Read(frame) // one Ethernet frame, header included
//
// The file is non-blocking and close-on-exec. Look interface names up with
// InterfaceIndex, which asks in the socket's namespace: net.InterfaceByName
// would look in the caller's. A Caddy module should open the namespace
// through its config's allow list instead of Open: pol, err :=
// nsnetwork.PolicyFor(ctx); ns, err := pol.Open(spec). Entering a namespace needs
// CAP_SYS_ADMIN; a packet socket also needs CAP_NET_RAW.
package nsenter
