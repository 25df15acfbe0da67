package nsenter_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/caddy-netns/caddy-netns/internal/testenv/nstest"
	"github.com/caddy-netns/caddy-netns/kernel/nsenter"
)

func TestPath(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"ns1", "/var/run/netns/ns1", ""},
		{"/proc/1/ns/net", "/proc/1/ns/net", ""},
		{"/var/run/docker/netns/abc/", "/var/run/docker/netns/abc", ""},
		{"", "", "empty namespace"},
		{"a/b", "", "want a name under"},
		{"..", "", "want a name under"},
	} {
		got, err := nsenter.Path(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Path(%q) error = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Path(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestOpenRejectsWhatIsNotANetworkNamespace(t *testing.T) {
	dir := t.TempDir()
	file := dir + "/plain"
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		spec, want string
		is         error
	}{
		{"nlt-missing-namespace", "does not exist", fs.ErrNotExist},
		{dir + "/nothing-here", "does not exist", fs.ErrNotExist},
		{file, "is not a namespace file", nsenter.ErrNotNetns},
		{dir, "is a directory", nsenter.ErrNotNetns},
		{"/proc/self/ns/mnt", "is a mount namespace", nsenter.ErrNotNetns},
		{"/proc/self/ns/uts", "is a uts namespace", nsenter.ErrNotNetns},
	} {
		ns, err := nsenter.Open(tc.spec)
		if err == nil {
			ns.Close()
			t.Errorf("Open(%q) succeeded", tc.spec)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) || !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.spec) {
			t.Errorf("Open(%q) = %v; want it to name the namespace, say %q and wrap %v", tc.spec, err, tc.want, tc.is)
		}
	}
}

func TestOpenSameNamespaceByNameAndPath(t *testing.T) {
	nstest.Require(t)
	name := nstest.Add(t, 1)[0]
	a, err := nsenter.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := nsenter.Open("/var/run/netns/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	self, _ := nsenter.Current()
	if a.ID != b.ID || a.ID == self {
		t.Fatalf("IDs: by name %v, by path %v, own %v", a.ID, b.ID, self)
	}
}

func TestListenInsideNamespace(t *testing.T) {
	nstest.Require(t)
	name := nstest.Add(t, 1)[0]
	ns, err := nsenter.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()

	ln, err := nsenter.Listen(ns, "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if got := socketNS(t, ln.(syscall.Conn)); got != ns.ID {
		t.Fatalf("listener in %v, want %v", got, ns.ID)
	}
	addr := ln.Addr().String()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			io.Copy(c, c)
			c.Close()
		}
	}()

	// Inside the namespace the listener answers...
	c, err := nsenter.Dial(context.Background(), ns, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := socketNS(t, c.(syscall.Conn)); got != ns.ID {
		t.Fatalf("client in %v, want %v", got, ns.ID)
	}
	roundTrip(t, c, "hello")

	// ...and from the process's own namespace the same address has nobody.
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatalf("%s reachable from outside the namespace", addr)
	}

	// UDP as well.
	pc, err := nsenter.ListenPacket(ns, "udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if got := socketNS(t, pc.(syscall.Conn)); got != ns.ID {
		t.Fatalf("packet conn in %v, want %v", got, ns.ID)
	}
	go func() {
		buf := make([]byte, 1500)
		n, from, err := pc.ReadFrom(buf)
		if err == nil {
			pc.WriteTo(buf[:n], from)
		}
	}()
	u, err := nsenter.Dial(context.Background(), ns, "udp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	roundTrip(t, u, "datagram")
}

func TestListenIPv6AndDualStack(t *testing.T) {
	nstest.Require(t)
	ns := open(t, nstest.Add(t, 1)[0])
	for _, tc := range []struct{ network, listen, dial string }{
		{"tcp6", "[::1]:0", "[::1]"},
		{"tcp", ":0", "127.0.0.1"},
		{"tcp", ":0", "[::1]"},
		{"tcp4", "0.0.0.0:0", "127.0.0.1"},
	} {
		ln, err := nsenter.Listen(ns, tc.network, tc.listen)
		if err != nil {
			t.Fatalf("%s %s: %v", tc.network, tc.listen, err)
		}
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		go func() {
			if c, err := ln.Accept(); err == nil {
				c.Write([]byte("ok"))
				c.Close()
			}
		}()
		c, err := nsenter.Dial(context.Background(), ns, "tcp", tc.dial+":"+port)
		if err != nil {
			t.Fatalf("%s %s, dial %s: %v", tc.network, tc.listen, tc.dial, err)
		}
		b, _ := io.ReadAll(c)
		if string(b) != "ok" {
			t.Errorf("%s %s, dial %s: got %q", tc.network, tc.listen, tc.dial, b)
		}
		c.Close()
		ln.Close()
	}
}

func TestDialRefusedAndTimeout(t *testing.T) {
	nstest.Require(t)
	ns := open(t, nstest.Add(t, 1)[0])
	_, err := nsenter.Dial(context.Background(), ns, "tcp", "127.0.0.1:1")
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial to a closed port: %v, want connection refused", err)
	}
	// No route inside a fresh namespace: unreachable at once, never hangs.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := nsenter.Dial(ctx, ns, "tcp", "192.0.2.1:80"); err == nil {
		t.Fatal("dial to an address with no route succeeded")
	}
}

// Many goroutines create listeners, dial and make raw packet sockets in 100
// namespaces while others create ordinary sockets in the process's own
// namespace: each of 10,000 sockets must be where it was meant to be (asked
// of the kernel with SIOCGSKNS), and the thread count must not grow.
func TestConcurrentSocketsLandInTheirNamespace(t *testing.T) {
	nstest.Require(t)
	names := nstest.Add(t, 100)
	nss := make([]*nsenter.Namespace, len(names))
	for i, n := range names {
		nss[i] = open(t, n)
	}
	self, err := nsenter.Current()
	if err != nil {
		t.Fatal(err)
	}
	before := nstest.Threads(t)

	const workers, each = 16, 625 // 10,000 sockets
	var wg sync.WaitGroup
	var mu sync.Mutex
	var wrong []string
	var packets []*os.File
	defer func() {
		// Many at once, so they share grace periods.
		var cg sync.WaitGroup
		for w := range 32 {
			cg.Go(func() {
				for i := w; i < len(packets); i += 32 {
					packets[i].Close()
				}
			})
		}
		cg.Wait()
	}()
	report := func(format string, args ...any) {
		mu.Lock()
		wrong = append(wrong, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				ns := nss[rand.IntN(len(nss))]
				want, kind := ns.ID, (w+i)%4
				var conn syscall.Conn
				var fd = -1
				var err error
				switch kind {
				case 0: // an ordinary socket, in the process's namespace
					want = self
					fd, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
				case 1: // a raw packet socket, through the public API
					var f *os.File
					f, err = nsenter.SocketFile(ns, unix.AF_PACKET, unix.SOCK_RAW, 0)
					if err == nil {
						// Closed after the threads are counted:
						// closing a packet socket waits for an
						// RCU grace period, and the runtime adds
						// threads for such blocking calls.
						mu.Lock()
						packets = append(packets, f)
						mu.Unlock()
						conn = f
					}
				case 2:
					var ln net.Listener
					ln, err = nsenter.Listen(ns, "tcp", "127.0.0.1:0")
					if err == nil {
						defer ln.Close()
						conn = ln.(syscall.Conn)
					}
				case 3:
					var c net.Conn
					c, err = nsenter.Dial(context.Background(), ns, "udp", "127.0.0.1:9")
					if err == nil {
						defer c.Close()
						conn = c.(syscall.Conn)
					}
				}
				if err != nil {
					report("kind %d: %v", kind, err)
					continue
				}
				var got nsenter.ID
				if conn != nil {
					rc, _ := conn.SyscallConn()
					rc.Control(func(f uintptr) { got, err = nstest.SocketNS(int(f)) })
				} else {
					got, err = nstest.SocketNS(fd)
					unix.Close(fd)
				}
				if err != nil || got != want {
					report("kind %d: socket in %v, want %v (%v)", kind, got, want, err)
				}
			}
		})
	}
	wg.Wait()
	after := nstest.Threads(t)
	line := fmt.Sprintf("reliability: sockets land in their namespace: sockets in 100 namespaces and our own: %d, failed: %d", workers*each, len(wrong))
	t.Log(line)
	fmt.Println(line)
	if len(wrong) > 0 {
		t.Fatalf("%d of %d sockets wrong, first: %s", len(wrong), workers*each, wrong[0])
	}
	if after > before+8 {
		t.Errorf("threads grew from %d to %d", before, after)
	}
	t.Logf("threads %d -> %d", before, after)
}

// A thread whose namespace cannot be restored is discarded: the socket is
// still good, the count says so, and no other goroutine ever runs in the
// foreign namespace.
func TestFailedRestoreDiscardsThread(t *testing.T) {
	nstest.Require(t)
	ns := open(t, nstest.Add(t, 1)[0])
	self, _ := nsenter.Current()

	var reported []error
	nsenter.OnThreadDiscarded = func(err error) { reported = append(reported, err) }
	defer func() { nsenter.OnThreadDiscarded = nil }()
	undo := nsenter.FailRestores(3, errors.New("injected restore failure"))
	defer undo()

	before := nsenter.ThreadsDiscarded()
	for range 3 {
		fd, err := ns.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := nstest.SocketNS(fd); got != ns.ID {
			t.Errorf("socket in %v, want %v", got, ns.ID)
		}
		unix.Close(fd)
	}
	if got := nsenter.ThreadsDiscarded() - before; got != 3 {
		t.Fatalf("discarded %d threads, want 3", got)
	}
	if len(reported) != 3 || !strings.Contains(reported[0].Error(), "thread discarded") {
		t.Fatalf("reported %v", reported)
	}
	// Everything else still runs in the process's namespace.
	var wg sync.WaitGroup
	for range 200 {
		wg.Go(func() {
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				t.Error(err)
				return
			}
			defer unix.Close(fd)
			if got, _ := nstest.SocketNS(fd); got != self {
				t.Errorf("ordinary socket landed in %v, want %v", got, self)
			}
		})
	}
	wg.Wait()
}

// The report of a discarded thread (which logs in Caddy) never runs on that
// thread: the thread is still in the foreign namespace, and anything the
// report does there (a log line sent over a socket, a socket it creates)
// would happen in the wrong namespace. The report checks where it runs, by
// /proc/thread-self/ns/net and by asking the kernel (SIOCGSKNS) where a
// socket it creates lands.
func TestDiscardReportRunsOutsideNamespace(t *testing.T) {
	nstest.Require(t)
	ns := open(t, nstest.Add(t, 1)[0])
	self, err := nsenter.Current()
	if err != nil {
		t.Fatal(err)
	}

	type where struct{ thread, socket nsenter.ID }
	var reports []where
	nsenter.OnThreadDiscarded = func(error) {
		var w where
		w.thread, _ = nsenter.Current()
		if fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0); err == nil {
			w.socket, _ = nstest.SocketNS(fd)
			unix.Close(fd)
		}
		reports = append(reports, w)
	}
	defer func() { nsenter.OnThreadDiscarded = nil }()
	undo := nsenter.FailRestores(3, errors.New("injected restore failure"))
	defer undo()

	for range 3 {
		fd, err := ns.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
		if err != nil {
			t.Fatal(err)
		}
		unix.Close(fd)
	}
	if len(reports) != 3 {
		t.Fatalf("%d reports of a discarded thread, want 3", len(reports))
	}
	for i, w := range reports {
		if w.thread != self || w.socket != self {
			t.Errorf("report %d ran in namespace %v and its socket landed in %v; want our own %v (the foreign one is %v)",
				i, w.thread, w.socket, self, ns.ID)
		}
	}
}

// Without CAP_SYS_ADMIN, entering a namespace fails with an error that says
// which capability is missing. The check runs in a child process whose
// bounding set lacks the capability.
func TestMissingCapSysAdmin(t *testing.T) {
	if ns := os.Getenv("NSENTER_TEST_NOCAP_NS"); ns != "" {
		n, err := nsenter.Open(ns)
		if err != nil {
			t.Fatal(err)
		}
		_, err = nsenter.Listen(n, "tcp", "127.0.0.1:0")
		if !errors.Is(err, nsenter.ErrPermission) || !strings.Contains(err.Error(), "CAP_SYS_ADMIN") {
			t.Fatalf("listen without CAP_SYS_ADMIN: %v", err)
		}
		fmt.Println("NOCAP-OK:", err)
		return
	}
	nstest.Require(t)
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("needs setpriv (util-linux)")
	}
	name := nstest.Add(t, 1)[0]
	cmd := exec.Command(setpriv, "--bounding-set", "-sys_admin", "--inh-caps", "-sys_admin",
		os.Args[0], "-test.run", "^TestMissingCapSysAdmin$", "-test.v")
	cmd.Env = append(os.Environ(), "NSENTER_TEST_NOCAP_NS="+name)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "NOCAP-OK") {
		t.Fatalf("child without CAP_SYS_ADMIN: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}

func open(t *testing.T, name string) *nsenter.Namespace {
	t.Helper()
	ns, err := nsenter.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	return ns
}

func socketNS(t *testing.T, c syscall.Conn) nsenter.ID {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var id nsenter.ID
	var ierr error
	rc.Control(func(fd uintptr) { id, ierr = nstest.SocketNS(int(fd)) })
	if ierr != nil {
		t.Fatal(ierr)
	}
	return id
}

func roundTrip(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != msg {
		t.Fatalf("read %q, %v; want %q", buf, err, msg)
	}
}

// Do never runs on the main thread. /proc/self names the main thread, and
// configs and allow lists may name /proc/self/ns/net: a main thread
// switched into a namespace, even for a moment, or wedged there after a
// failed restore (the runtime cannot end the main thread), would make that
// path name a tenant's namespace.
func TestDoNeverRunsOnTheMainThread(t *testing.T) {
	nstest.Require(t)
	ns := open(t, nstest.Add(t, 1)[0])
	pid := unix.Getpid()
	var onMain int
	const calls = 300
	for i := range calls {
		if err := ns.Do(func() error {
			if unix.Gettid() == pid {
				onMain++
			}
			return nil
		}); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if i%10 == 0 {
			runtime.Gosched()
		}
	}
	if onMain > 0 {
		t.Errorf("%d of %d namespace switches ran on the main thread, which /proc/self names", onMain, calls)
	}
	own, _ := nsenter.Current()
	if got, err := nsenter.StatID("/proc/self/ns/net"); err != nil || got != own {
		t.Errorf("/proc/self/ns/net is %v, %v; want our own namespace %v", got, err, own)
	}
}
