// Package nstest holds helpers for tests that need real network namespaces.
package nstest

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/caddy-netns/caddy-netns/kernel/nsenter"
)

// Require skips the test unless it runs as root with iproute2 at hand. In
// CI (CI=true) a missing privilege fails the test instead: a privileged
// test that silently skips there proves nothing.
func Require(t testing.TB) {
	t.Helper()
	why := ""
	if os.Geteuid() != 0 {
		why = "needs root to create network namespaces"
	} else if _, err := exec.LookPath("ip"); err != nil {
		why = "needs the ip command (iproute2)"
	}
	if why == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true: privileged tests must not skip)", why)
	}
	t.Skip(why)
}

var seq atomic.Int64

// Name returns a namespace name unique to this process.
func Name(prefix string) string {
	return fmt.Sprintf("%s%d-%d", prefix, os.Getpid()%100000, seq.Add(1))
}

// Add creates n namespaces with lo up and removes them when the test ends.
func Add(t testing.TB, n int) []string {
	t.Helper()
	names := make([]string, n)
	for i := range names {
		names[i] = Name("nlt")
	}
	AddNamed(t, names...)
	return names
}

// AddNamed creates namespaces with the given names and lo up, and removes
// them when the test ends.
func AddNamed(t testing.TB, names ...string) {
	t.Helper()
	var add strings.Builder
	for _, n := range names {
		fmt.Fprintf(&add, "netns add %s\n", n)
	}
	t.Cleanup(func() { Del(names...) })
	Batch(t, add.String())
	for _, n := range names {
		if err := LoopbackUp(n); err != nil {
			t.Fatal(err)
		}
	}
}

// LoopbackUp brings up lo in the named namespace. The interface ioctls act
// on the namespace of the socket they are given, so no command is needed.
func LoopbackUp(name string) error {
	ns, err := nsenter.Open(name)
	if err != nil {
		return err
	}
	defer ns.Close()
	fd, err := ns.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("%s: SIOCGIFFLAGS lo: %w", name, err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("%s: SIOCSIFFLAGS lo: %w", name, err)
	}
	return nil
}

// Del removes namespaces, ignoring the ones already gone.
func Del(names ...string) {
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "netns del %s\n", n)
	}
	cmd := exec.Command("ip", "-force", "-batch", "-")
	cmd.Stdin = strings.NewReader(b.String())
	_ = cmd.Run()
}

// Batch runs ip -batch with the given lines.
func Batch(t testing.TB, lines string) {
	t.Helper()
	cmd := exec.Command("ip", "-batch", "-")
	cmd.Stdin = strings.NewReader(lines)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ip -batch: %v\n%s", err, out)
	}
}

// Run runs a command and fails the test if it fails.
func Run(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// SocketNS returns the namespace a socket belongs to, asked of the kernel
// (SIOCGSKNS), independently of how the socket was made.
func SocketNS(fd int) (nsenter.ID, error) {
	nsfd, err := unix.IoctlRetInt(fd, unix.SIOCGSKNS)
	if err != nil {
		return nsenter.ID{}, fmt.Errorf("SIOCGSKNS: %w", err)
	}
	defer unix.Close(nsfd)
	var st unix.Stat_t
	if err := unix.Fstat(nsfd, &st); err != nil {
		return nsenter.ID{}, err
	}
	return nsenter.ID{Dev: uint64(st.Dev), Ino: st.Ino}, nil
}

// Threads returns the number of OS threads of this process.
func Threads(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// ID returns the identity of a named namespace.
func ID(t testing.TB, name string) nsenter.ID {
	t.Helper()
	ns, err := nsenter.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	return ns.ID
}

// ThreadSyscalls counts this process's threads by the system call each
// sits in (the first field of /proc/self/task/*/syscall: a number, or
// "running"), for diagnosing a thread count that grew.
func ThreadSyscalls() map[string]int {
	out := map[string]int{}
	tasks, _ := os.ReadDir("/proc/self/task")
	for _, task := range tasks {
		b, err := os.ReadFile("/proc/self/task/" + task.Name() + "/syscall")
		if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
			out[f[0]]++
		}
	}
	return out
}

// ThreadBurst puts n goroutines in a blocking system call at once, so the
// Go runtime starts a thread for nearly every one, and returns the number
// of threads the runtime owns afterwards.
func ThreadBurst(n int) int {
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { _ = unix.Nanosleep(&unix.Timespec{Nsec: 50e6}, nil) })
	}
	wg.Wait()
	return nsenter.Threads()
}

// WaitThreads waits up to within for the runtime's threads to drop to at
// most limit and returns the last count seen.
func WaitThreads(limit int, within time.Duration) int {
	deadline := time.Now().Add(within)
	now := nsenter.Threads()
	for now > limit && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		now = nsenter.Threads()
	}
	return now
}
