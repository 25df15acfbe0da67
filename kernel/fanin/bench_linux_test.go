//go:build linux

package fanin

import (
	"net"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// BenchmarkNewTCPConn measures turning an accepted descriptor into a
// *net.TCPConn, the per-connection cost the fan-in adds over net's own
// Accept. Only the construction is timed; the connections are made and
// accepted in batches outside the timer.
//
//	go test -run '^$' -bench NewTCPConn -benchmem ./kernel/fanin/
func BenchmarkNewTCPConn(b *testing.B) {
	needRoot(b)
	inNS := privateNetns(b)
	lfd := openSockets(b, inNS, unix.SOCK_STREAM, 25000, 1)[0]
	defer unix.Close(lfd)
	for _, v := range []struct {
		name  string
		flags int
		make  func(int) (*net.TCPConn, error)
	}{
		{"nonblocking-NewFile-FileConn", unix.SOCK_NONBLOCK | unix.SOCK_CLOEXEC, newTCPConnFromBlocking},
		{"blocking-NewFile-FileConn", unix.SOCK_CLOEXEC, newTCPConnFromBlocking},
	} {
		b.Run(v.name, func(b *testing.B) {
			const batch = 128
			conns := make([]*net.TCPConn, 0, batch)
			var clients, accepted []int
			b.StopTimer()
			for i := 0; i < b.N; {
				clients, accepted = clients[:0], accepted[:0]
				k := min(batch, b.N-i)
				if err := inNS(func() error {
					for range k {
						fd, err := dialFD(unix.SOCK_STREAM, 25000)
						if err != nil {
							return err
						}
						clients = append(clients, fd)
						afd, _, err := unix.Accept4(lfd, v.flags)
						if err != nil {
							return err
						}
						accepted = append(accepted, afd)
					}
					return nil
				}); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				for _, fd := range accepted {
					c, err := v.make(fd)
					if err != nil {
						b.Fatal(err)
					}
					conns = append(conns, c)
				}
				b.StopTimer()
				for _, c := range conns {
					c.Close()
				}
				for _, fd := range clients {
					unix.Close(fd)
				}
				conns = conns[:0]
				i += k
			}
		})
	}
}

// BenchmarkAccept measures a connection end to end (connect, Accept,
// close) through a fan-in Listener with 1000 members against a plain
// *net.TCPListener.
//
//	go test -run '^$' -bench Accept -benchmem ./kernel/fanin/
func BenchmarkAccept(b *testing.B) {
	needRoot(b)
	inNS := privateNetns(b)
	run := func(b *testing.B, ln net.Listener, port int) {
		errc := make(chan error, 1)
		go func() {
			errc <- inNS(func() error {
				for range b.N {
					fd, err := dialFD(unix.SOCK_STREAM, port)
					if err != nil {
						return err
					}
					unix.Close(fd)
				}
				return nil
			})
		}()
		for range b.N {
			c, err := ln.Accept()
			if err != nil {
				b.Fatal(err)
			}
			c.Close()
		}
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
	}
	b.Run("fanin-1000-members", func(b *testing.B) {
		l, err := NewListener(nil)
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		for i, fd := range openSockets(b, inNS, unix.SOCK_STREAM, 26000, 1000) {
			l.AddFD(i, fd)
		}
		b.ResetTimer()
		run(b, l, 26999)
	})
	b.Run("net.TCPListener", func(b *testing.B) {
		fd := openSockets(b, inNS, unix.SOCK_STREAM, 27000, 1)[0]
		f := os.NewFile(uintptr(fd), "")
		ln, err := net.FileListener(f)
		f.Close()
		if err != nil {
			b.Fatal(err)
		}
		defer ln.Close()
		b.ResetTimer()
		run(b, ln, 27000)
	})
}

// BenchmarkPacketRoundTrip measures one datagram in and its reply out
// through a fan-in PacketConn with 1000 members (traffic on the last)
// against a plain *net.UDPConn, the client being a socket in the same
// namespace.
//
//	go test -run '^$' -bench PacketRoundTrip -benchmem ./kernel/fanin/
func BenchmarkPacketRoundTrip(b *testing.B) {
	needRoot(b)
	inNS := privateNetns(b)
	run := func(b *testing.B, pc net.PacketConn, port int) {
		var cfd int
		if err := inNS(func() (err error) { cfd, err = dialFD(unix.SOCK_DGRAM, port); return err }); err != nil {
			b.Fatal(err)
		}
		defer unix.Close(cfd)
		errc := make(chan error, 1)
		go func() {
			buf := make([]byte, 1500)
			for range b.N {
				n, from, err := pc.ReadFrom(buf)
				if err != nil {
					errc <- err
					return
				}
				if _, err := pc.WriteTo(buf[:n], from); err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
		}()
		msg, buf := []byte("ping"), make([]byte, 64)
		b.ResetTimer()
		for range b.N {
			if _, err := unix.Write(cfd, msg); err != nil {
				b.Fatal(err)
			}
			if _, err := unix.Read(cfd, buf); err != nil {
				b.Fatal(err)
			}
		}
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
	}
	b.Run("fanin-1000-members", func(b *testing.B) {
		c, err := NewPacketConn(nil)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		for i, fd := range openSockets(b, inNS, unix.SOCK_DGRAM, 26000, 1000) {
			c.AddFD(i, fd)
		}
		run(b, c, 26999)
	})
	b.Run("net.UDPConn", func(b *testing.B) {
		fd := openSockets(b, inNS, unix.SOCK_DGRAM, 27000, 1)[0]
		f := os.NewFile(uintptr(fd), "")
		pc, err := net.FilePacketConn(f)
		f.Close()
		if err != nil {
			b.Fatal(err)
		}
		defer pc.Close()
		run(b, pc, 27000)
	})
}
