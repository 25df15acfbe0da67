package nsproxy_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/caddy-netns/caddy-netns/internal/testenv/e2e"
	"github.com/caddy-netns/caddy-netns/internal/testenv/nstest"
)

// BenchmarkSyscallsPerConnection counts the system calls that Caddy (a
// child process, traced with strace -f -c) makes per proxied TCP
// transaction of BenchmarkProxyConnection, and prints the table per
// connection. Only Caddy is traced: the client and the backend run in the
// test process. Counts of futex, nanosleep, epoll_pwait and the like
// depend on scheduling; socket, connect, accept4, setsockopt, getsockopt,
// getsockname, getpeername, fcntl, read, write, close and setns do not.
//
//	go test -run '^$' -bench 'Syscalls' -benchtime 2000x -v ./modules/nsproxy/ | grep -v '^{'
//
// (-v: benchmarks print their whole log only in verbose mode.)
func BenchmarkSyscallsPerConnection(b *testing.B) {
	r, pid := startTracedRig(b)
	c := &costClient{ns: r.clientNS}
	for range 100 { // warm up: pools, shared namespace handles, threads
		if err := c.transact(r.proxy); err != nil {
			b.Fatal(err)
		}
	}
	traced(b, pid, func() {
		for b.Loop() {
			if err := c.transact(r.proxy); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkSyscallsPerConnectionHAProxy is BenchmarkSyscallsPerConnection
// with HAProxy (mode tcp, bind ... namespace A, server ... namespace B) in
// Caddy's place: the reference for the same transactions.
func BenchmarkSyscallsPerConnectionHAProxy(b *testing.B) {
	nstest.Require(b)
	if _, err := exec.LookPath("strace"); err != nil {
		b.Fatal("strace not found: apt-get install strace")
	}
	r := startCostRig(b, nil)
	pid := nstest.HAProxy(b, fmt.Sprintf(`
namespace_list
	namespace %s
	namespace %s
frontend fe
	bind %s namespace %s
	default_backend be
backend be
	server b %s namespace %s
`, r.clientNS.Spec, r.backendNS.Spec, r.proxy, r.clientNS.Spec, r.direct, r.backendNS.Spec))
	c := &costClient{ns: r.clientNS}
	deadline := time.Now().Add(20 * time.Second)
	for c.transact(r.proxy) != nil { // until haproxy listens
		if time.Now().After(deadline) {
			b.Fatal("haproxy does not answer")
		}
		time.Sleep(50 * time.Millisecond)
	}
	for range 100 {
		if err := c.transact(r.proxy); err != nil {
			b.Fatal(err)
		}
	}
	traced(b, pid, func() {
		for b.Loop() {
			if err := c.transact(r.proxy); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkSyscallsPerDatagram counts Caddy's system calls per UDP round
// trip on one established flow, as BenchmarkSyscallsPerConnection does.
func BenchmarkSyscallsPerDatagram(b *testing.B) {
	r, pid := startTracedRig(b)
	c := &costClient{ns: r.clientNS}
	u := c.flow(b, r.proxy)
	for range 100 {
		if err := c.roundTrip(u); err != nil {
			b.Fatal(err)
		}
	}
	traced(b, pid, func() {
		for b.Loop() {
			if err := c.roundTrip(u); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// startTracedRig runs Caddy in a child process with the cost config and
// returns the rig and Caddy's pid.
func startTracedRig(b *testing.B) (*costRig, int) {
	nstest.Require(b)
	if _, err := exec.LookPath("strace"); err != nil {
		b.Fatal("strace not found: apt-get install strace")
	}
	p := e2e.StartProcess(b)
	r := startCostRig(b, nil)
	p.MustLoad(b, costConfig(p.WithAdmin(), r.clientNS.Spec, r.backendNS.Spec), "json")
	return r, p.Pid()
}

// traced runs load with strace -f -c attached to pid, then reports the
// system calls per op as a metric and logs the table per op.
func traced(b *testing.B, pid int, load func()) {
	out := filepath.Join(b.TempDir(), "strace.txt")
	cmd := exec.Command("strace", "-f", "-c", "-o", out, "-p", strconv.Itoa(pid))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer cmd.Process.Kill()
	// strace says "Process <tid> attached" once per thread; wait for the
	// first, then give it a moment for the others.
	sc := bufio.NewScanner(stderr)
	attached := make(chan struct{})
	go func() {
		once := false
		for sc.Scan() {
			if !once && strings.Contains(sc.Text(), "attached") {
				once = true
				close(attached)
			}
		}
	}()
	select {
	case <-attached:
	case <-time.After(20 * time.Second):
		b.Fatal("strace did not attach within 20s")
	}
	time.Sleep(500 * time.Millisecond)
	b.ResetTimer()
	load()
	b.StopTimer()
	n := b.N
	cmd.Process.Signal(syscall.SIGINT)
	_ = cmd.Wait() // ends by the signal; its table tells whether it worked
	calls, errs, err := parseStraceSummary(out)
	if err != nil {
		b.Fatal(err)
	}
	names := make([]string, 0, len(calls))
	total := 0
	for name, k := range calls {
		names = append(names, name)
		total += k
	}
	sort.Slice(names, func(i, j int) bool {
		if calls[names[i]] != calls[names[j]] {
			return calls[names[i]] > calls[names[j]]
		}
		return names[i] < names[j]
	})
	var tab strings.Builder
	fmt.Fprintf(&tab, "system calls per op over %d ops (errors in brackets):\n", n)
	for _, name := range names {
		fmt.Fprintf(&tab, "  %-16s %7.2f", name, float64(calls[name])/float64(n))
		if errs[name] > 0 {
			fmt.Fprintf(&tab, " (%.2f)", float64(errs[name])/float64(n))
		}
		tab.WriteByte('\n')
	}
	fmt.Fprintf(&tab, "  %-16s %7.2f\n", "total", float64(total)/float64(n))
	b.Log(tab.String())
	b.ReportMetric(float64(total)/float64(n), "syscalls/op")
}

// parseStraceSummary reads strace -c's table: calls and errors by name.
func parseStraceSummary(path string) (calls, errs map[string]int, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	calls, errs = map[string]int{}, map[string]int{}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		// % time, seconds, usecs/call, calls, [errors,] syscall
		if len(f) < 5 || f[0] == "%" || strings.HasPrefix(f[0], "-") || f[len(f)-1] == "total" {
			continue
		}
		k, err := strconv.Atoi(f[3])
		if err != nil {
			continue
		}
		name := f[len(f)-1]
		calls[name] = k
		if len(f) == 6 {
			errs[name], _ = strconv.Atoi(f[4])
		}
	}
	if len(calls) == 0 {
		return nil, nil, fmt.Errorf("no system calls in %s:\n%s", path, data)
	}
	return calls, errs, nil
}
