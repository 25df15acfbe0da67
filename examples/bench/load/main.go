//go:build linux

// Command load is the backend, the load generators and the report of
// examples/bench/bench.sh. Client sockets are created inside the benchmark's
// namespaces from this one process with nsenter.Dial; every load is bounded
// by -d.
//
//	load backend -tcp 127.0.0.1:17000,10.214.0.1:17000 -udp ...   echo server
//	load wait    -prefix cnb- -n N -addr 127.0.0.1:8000 -since NS  seconds until all answer
//	load connrate -prefix cnb- -n N -addr ... -c 32 -d 5s          transactions/s
//	load echo    -prefix cnb- -addr ... -d 5s                      p50 p99 (µs)
//	load udp     -prefix cnb- -n N -addr ... -c 32 -d 5s           replies/s
//	load iperf   < iperf3.json                                     Gbit/s
//	load report  -raw raw.csv -out summary.csv -gomaxprocs 2       the table
//	load loup    -prefix cnb- -n N                                 lo up in every namespace
//	load binddir -prefix cnb- -n N -dir D                          D/cnb-i bind-mounts /var/run/netns/cnb-i
//	load udp1    -prefix cnb- -addr ... -sink ... -d 5s            one-way UDP: received/s sent/s received
//	load appear  -name cnb-x1 -addr ... -timeout 10s               ms from "ip netns add" to an answer
//
// The backend answers fixed 64-byte messages: it echoes each one, and
// closes the connection after echoing a message that starts with 'Q' (a
// short request/response transaction, so that TIME_WAIT lands on the
// backend and not on the clients' ephemeral ports).
package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddy-netns/caddy-netns/kernel/nsenter"
)

const msgSize = 64

// The namespace calls the other files of this program use; nsenter is
// imported here only.
type namespace = nsenter.Namespace

var (
	openNamespace = nsenter.Open
	namespacePath = nsenter.Path
	dialIn        = nsenter.Dial
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: load backend|wait|connrate|echo|udp|iperf|report|loup|binddir|udp1|appear [flags]")
		os.Exit(2)
	}
	cmd, args := os.Args[1], os.Args[2:]
	var err error
	switch cmd {
	case "backend":
		err = backend(args)
	case "wait":
		err = wait(args)
	case "connrate":
		err = connrate(args)
	case "echo":
		err = echo(args)
	case "udp":
		err = udpRR(args)
	case "iperf":
		err = iperf()
	case "report":
		err = report(args)
	case "loup":
		err = loUp(args)
	case "binddir":
		err = bindDir(args)
	case "udp1":
		err = udpOneWay(args)
	case "appear":
		err = appear(args)
	default:
		err = fmt.Errorf("unknown command %q", cmd)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "load %s: %v\n", cmd, err)
		os.Exit(1)
	}
}

// clientFlags are the flags shared by the load generators.
type clientFlags struct {
	prefix string
	n      int
	addr   string
	c      int
	d      time.Duration
	count  int64
}

func parseClient(name string, args []string, f *clientFlags) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.StringVar(&f.prefix, "prefix", "", "namespace name prefix (namespaces PREFIX1..PREFIXn); empty: the caller's namespace")
	fs.IntVar(&f.n, "n", 1, "number of namespaces")
	fs.StringVar(&f.addr, "addr", "127.0.0.1:8000", "address to connect to, inside each namespace")
	fs.IntVar(&f.c, "c", 32, "concurrent clients")
	fs.DurationVar(&f.d, "d", 5*time.Second, "duration of the load")
	fs.Int64Var(&f.count, "count", 0, "connrate: stop after this many transactions (0: run for -d); it prints the number done instead of a rate")
	return fs.Parse(args)
}

// namespaces opens PREFIX1..PREFIXn (nil entries when prefix is empty).
func namespaces(prefix string, n int) ([]*nsenter.Namespace, error) {
	out := make([]*nsenter.Namespace, n)
	if prefix == "" {
		return out, nil
	}
	for i := range out {
		ns, err := nsenter.Open(prefix + strconv.Itoa(i+1))
		if err != nil {
			return nil, err
		}
		out[i] = ns
	}
	return out, nil
}

// ---- backend -----------------------------------------------------------------

func backend(args []string) error {
	fs := flag.NewFlagSet("backend", flag.ContinueOnError)
	tcpAddrs := fs.String("tcp", "127.0.0.1:17000", "comma-separated TCP addresses")
	udpAddrs := fs.String("udp", "127.0.0.1:17000", "comma-separated UDP addresses")
	if err := fs.Parse(args); err != nil {
		return err
	}
	errc := make(chan error, 1)
	for _, a := range strings.Split(*tcpAddrs, ",") {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			return err
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					errc <- err
					return
				}
				go serveTCP(c)
			}
		}()
	}
	for _, a := range strings.Split(*udpAddrs, ",") {
		pc, err := net.ListenPacket("udp", a)
		if err != nil {
			return err
		}
		for range 2 {
			go func() {
				buf := make([]byte, 2048)
				for {
					n, from, err := pc.ReadFrom(buf)
					if err != nil {
						errc <- err
						return
					}
					_, _ = pc.WriteTo(buf[:n], from)
				}
			}()
		}
	}
	fmt.Println("backend ready")
	return <-errc
}

func serveTCP(c net.Conn) {
	defer c.Close()
	buf := make([]byte, msgSize)
	for {
		if _, err := io.ReadFull(c, buf); err != nil {
			return
		}
		if _, err := c.Write(buf); err != nil || buf[0] == 'Q' {
			return
		}
	}
}

// ---- wait: bring-up time ---------------------------------------------------------

// wait prints the seconds from -since (Unix nanoseconds, taken just before
// the proxy was started) until a 64-byte echo through addr has succeeded in
// every namespace.
func wait(args []string) error {
	fs := flag.NewFlagSet("wait", flag.ContinueOnError)
	prefix := fs.String("prefix", "", "namespace name prefix")
	n := fs.Int("n", 1, "number of namespaces")
	addr := fs.String("addr", "127.0.0.1:8000", "address inside each namespace")
	since := fs.Int64("since", 0, "start time, Unix nanoseconds (default: now)")
	timeout := fs.Duration("timeout", 120*time.Second, "give up after")
	every := fs.Duration("every", 5*time.Millisecond, "pause between tries in one namespace")
	if err := fs.Parse(args); err != nil {
		return err
	}
	start := time.Now()
	if *since != 0 {
		start = time.Unix(0, *since)
	}
	nss, err := namespaces(*prefix, *n)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(*timeout)
	next := make(chan int, len(nss))
	for i := range nss {
		next <- i
	}
	close(next)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range 16 {
		wg.Go(func() {
			for i := range next {
				for {
					if err := transact(nss[i], *addr, 'E', time.Second); err == nil {
						break
					}
					if time.Now().After(deadline) {
						failed.Add(1)
						break
					}
					time.Sleep(*every)
				}
			}
		})
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		return fmt.Errorf("%d of %d namespaces did not answer on %s within %v", f, len(nss), *addr, *timeout)
	}
	fmt.Printf("%.3f\n", time.Since(start).Seconds())
	return nil
}

// transact connects from inside ns, sends one message, reads the echo and,
// for a 'Q' message, waits for the end of the connection.
func transact(ns *nsenter.Namespace, addr string, kind byte, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := nsenter.Dial(ctx, ns, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	msg := make([]byte, msgSize)
	msg[0] = kind
	if _, err := c.Write(msg); err != nil {
		return err
	}
	if _, err := io.ReadFull(c, msg); err != nil {
		return err
	}
	if kind == 'Q' {
		// The backend closes; wait for it so the client closes second
		// and keeps no TIME_WAIT.
		if _, err := c.Read(msg[:1]); err != io.EOF {
			return fmt.Errorf("want EOF after the answer, got %v", err)
		}
	}
	return nil
}

// ---- connrate -------------------------------------------------------------------

// connrate runs -c clients, each doing one short transaction per connection
// (connect, 64 bytes each way, close), rotating over the namespaces.
func connrate(args []string) error {
	var f clientFlags
	if err := parseClient("connrate", args, &f); err != nil {
		return err
	}
	nss, err := namespaces(f.prefix, f.n)
	if err != nil {
		return err
	}
	var ok, bad, started atomic.Int64
	var firstErr atomic.Value
	end := time.Now().Add(f.d)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range f.c {
		wg.Go(func() {
			for k := 0; time.Now().Before(end); k++ {
				if f.count > 0 && started.Add(1) > f.count {
					return
				}
				ns := nss[(w+k*f.c)%len(nss)]
				if err := transact(ns, f.addr, 'Q', 2*time.Second); err != nil {
					bad.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	if b := bad.Load(); b > 0 {
		fmt.Fprintf(os.Stderr, "connrate: %d failed transactions (first: %v)\n", b, firstErr.Load())
	}
	if f.count > 0 {
		fmt.Printf("%d %.3f\n", ok.Load(), el)
		return nil
	}
	fmt.Printf("%.0f\n", float64(ok.Load())/el)
	return nil
}

// ---- echo latency -------------------------------------------------------------------

// echo measures the round trip of a 64-byte message on one persistent
// connection from the first namespace, and prints p50 and p99 in µs.
func echo(args []string) error {
	var f clientFlags
	if err := parseClient("echo", args, &f); err != nil {
		return err
	}
	nss, err := namespaces(f.prefix, 1)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := nsenter.Dial(ctx, nss[0], "tcp", f.addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(f.d + 10*time.Second))
	msg := make([]byte, msgSize)
	msg[0] = 'E'
	rt := func() (time.Duration, error) {
		t0 := time.Now()
		if _, err := c.Write(msg); err != nil {
			return 0, err
		}
		if _, err := io.ReadFull(c, msg); err != nil {
			return 0, err
		}
		return time.Since(t0), nil
	}
	for range 200 { // warm-up
		if _, err := rt(); err != nil {
			return err
		}
	}
	samples := make([]time.Duration, 0, 1<<18)
	for end := time.Now().Add(f.d); time.Now().Before(end); {
		d, err := rt()
		if err != nil {
			return err
		}
		samples = append(samples, d)
	}
	sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
	pct := func(p float64) float64 {
		return float64(samples[int(p*float64(len(samples)-1))].Nanoseconds()) / 1e3
	}
	fmt.Printf("%.1f %.1f\n", pct(0.50), pct(0.99))
	return nil
}

// ---- UDP request/response ---------------------------------------------------------------

// udpRR runs -c UDP flows (flow i from namespace i mod n), each sending a
// 64-byte datagram and waiting for the reply (100 ms, then it counts a loss
// and sends the next one). It prints replies per second.
func udpRR(args []string) error {
	var f clientFlags
	if err := parseClient("udp", args, &f); err != nil {
		return err
	}
	nss, err := namespaces(f.prefix, f.n)
	if err != nil {
		return err
	}
	conns := make([]net.Conn, f.c)
	for i := range conns {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := nsenter.Dial(ctx, nss[i%len(nss)], "udp", f.addr)
		cancel()
		if err != nil {
			return err
		}
		defer c.Close()
		conns[i] = c
	}
	var ok, lost atomic.Int64
	end := time.Now().Add(f.d)
	start := time.Now()
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() {
			msg := make([]byte, msgSize)
			buf := make([]byte, 2048)
			for time.Now().Before(end) {
				if _, err := c.Write(msg); err != nil {
					lost.Add(1)
					time.Sleep(time.Millisecond)
					continue
				}
				_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
				if _, err := c.Read(buf); err != nil {
					var ne net.Error
					if errors.As(err, &ne) && ne.Timeout() {
						lost.Add(1)
						continue
					}
					lost.Add(1)
					time.Sleep(time.Millisecond)
					continue
				}
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	if l := lost.Load(); l > 0 {
		fmt.Fprintf(os.Stderr, "udp: %d requests without a reply within 100ms\n", l)
	}
	fmt.Printf("%.0f\n", float64(ok.Load())/el)
	return nil
}

// ---- iperf3 JSON -------------------------------------------------------------------------

func iperf() error {
	var r struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
		Error string `json:"error"`
	}
	if err := json.NewDecoder(os.Stdin).Decode(&r); err != nil {
		return err
	}
	if r.Error != "" {
		return errors.New(r.Error)
	}
	fmt.Printf("%.3f\n", r.End.SumReceived.BitsPerSecond/1e9)
	return nil
}

// ---- report ----------------------------------------------------------------------------

type metricInfo struct {
	name, label  string
	higherBetter bool
}

var metrics = []metricInfo{
	{"tcp_gbps", "TCP bulk, Gbit/s (iperf3, 1 stream)", true},
	{"conn_per_s", "connections/s (32 clients, 64 B each way)", true},
	{"cpu_per_conn_us", "proxy CPU per connection, µs", false},
	{"cpu_user_per_conn_us", "  of which user, µs", false},
	{"cpu_sys_per_conn_us", "  of which system, µs", false},
	{"echo_p50_us", "echo p50, µs (64 B, persistent)", false},
	{"echo_p99_us", "echo p99, µs", false},
	{"udp_pps", "UDP req/resp per s (32 flows)", true},
	{"bringup_s", "bring-up, s (start to all ns answer)", false},
	{"reprobe_s", "  the same probe once up, s", false},
	{"threads", "OS threads (idle, after bring-up)", false},
	{"threads_load", "OS threads (at the end of the loads)", false},
	{"threads_after", "OS threads (idle, 1 s after the loads)", false},
	{"procs", "processes", false},
	{"rss_mib", "RSS, MiB (idle, after bring-up)", false},
	{"rss_per_listener_kib", "RSS per listener, KiB", false},
	{"rss_marginal_kib", "  marginal RSS/listener from prev. N, KiB", false},
	{"goroutines", "goroutines (idle, after bring-up)", false},
	{"reload_ms", "reload of the same config (POST /load), ms", false},
	{"reload_recreated", "  sampled listeners re-created by it", false},
	{"reload_sampled", "  listeners sampled", false},
	{"reload_new_sockets", "  new sockets in the process (not admin)", false},
	{"appear_ms", "set member up after ip netns add, ms", false},
	{"udp1_pps", "UDP one-way 1400 B, datagrams/s received", true},
	{"udp1_loss_pct", "  lost between sender and sink, %", false},
	{"udp1_cpu_ns", "  proxy CPU per datagram received, ns", false},
	{"sc_total", "system calls per connection (strace -c)", false},
	{"sctp_msgs_per_s", "SCTP 1 KiB msgs/s (guest, 64 in flight)", true},
	{"sctp_rtt_p50_us", "SCTP 64 B round trip p50, µs (guest)", false},
	{"sctp_rtt_p99_us", "SCTP 64 B round trip p99, µs (guest)", false},
}

// allCases is the order of the table's columns; only cases with data are
// shown.
var allCases = []string{"ours", "set", "base", "l4proxy", "haproxy", "socat", "direct"}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func fmtNum(v float64) string {
	switch a := v; {
	case a >= 1000:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

// report reads raw rows (n,case,metric,run,value), prints one table of
// medians with each figure's ratio to HAProxy (H) and to direct (D), writes
// the medians and ratios as CSV, and checks the targets of issue 6.
func report(args []string) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	raw := fs.String("raw", "", "raw CSV")
	out := fs.String("out", "", "summary CSV to write")
	gmp := fs.Int("gomaxprocs", 0, "GOMAXPROCS of the proxy, for the thread target")
	if err := fs.Parse(args); err != nil {
		return err
	}
	f, err := os.Open(*raw)
	if err != nil {
		return err
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return err
	}
	type key struct {
		n           int
		cse, metric string
	}
	vals := map[key][]float64{}
	ns := map[int]bool{}
	for i, r := range rows {
		if i == 0 && r[0] == "n" {
			continue
		}
		if len(r) < 5 {
			continue
		}
		n, _ := strconv.Atoi(r[0])
		v, err := strconv.ParseFloat(r[4], 64)
		if err != nil {
			continue
		}
		ns[n] = true
		k := key{n, r[1], r[2]}
		vals[k] = append(vals[k], v)
	}
	var cases []string
	for _, c := range allCases {
		for k := range vals {
			if k.cse == c {
				cases = append(cases, c)
				break
			}
		}
	}
	var nlist []int
	for n := range ns {
		nlist = append(nlist, n)
	}
	sort.Ints(nlist)
	med := func(n int, c, m string) (float64, int, bool) {
		v := vals[key{n, c, m}]
		if len(v) == 0 {
			return 0, 0, false
		}
		return median(v), len(v), true
	}
	// listeners per namespace of a case at n, as bench.sh recorded it
	// (before it did: HAProxy 2, the others 3)
	perNS := func(n int, c string) float64 {
		if v, _, ok := med(n, c, "listeners_per_ns"); ok && v > 0 {
			return v
		}
		if c == "haproxy" {
			return 2
		}
		return 3
	}
	// What one more listener costs from one N to the next, without the
	// process's base: the difference of the median RSS over the difference
	// of listeners.
	for i := 1; i < len(nlist); i++ {
		for _, c := range cases {
			r0, _, ok0 := med(nlist[i-1], c, "rss_mib")
			r1, _, ok1 := med(nlist[i], c, "rss_mib")
			if ok0 && ok1 {
				l := perNS(nlist[i], c)
				vals[key{nlist[i], c, "rss_marginal_kib"}] = []float64{(r1 - r0) * 1024 / (float64(nlist[i]-nlist[i-1]) * l)}
			}
		}
	}
	var w *csv.Writer
	if *out != "" {
		of, err := os.Create(*out)
		if err != nil {
			return err
		}
		defer of.Close()
		w = csv.NewWriter(of)
		defer w.Flush()
		_ = w.Write([]string{"n", "metric", "case", "median", "runs", "ratio_to_haproxy", "ratio_to_direct"})
	}
	ratio := func(a, b float64, okb bool) string {
		if !okb || b == 0 {
			return ""
		}
		return strconv.FormatFloat(a/b, 'f', 2, 64)
	}
	fmt.Println("Medians; in brackets the ratio to HAProxy (H) and to direct (D). '-' = not measured / not applicable.")
	fmt.Println()
	head := fmt.Sprintf("| %5s | %-42s |", "N", "metric")
	sep := fmt.Sprintf("| %5s | %-42s |", "----:", strings.Repeat("-", 42))
	for _, c := range cases {
		head += fmt.Sprintf(" %-24s |", c)
		sep += " " + strings.Repeat("-", 24) + " |"
	}
	fmt.Println(head)
	fmt.Println(sep)
	for _, n := range nlist {
		for _, m := range metrics {
			line := fmt.Sprintf("| %5d | %-42s |", n, m.label)
			any := false
			h, _, okh := med(n, "haproxy", m.name)
			d, _, okd := med(n, "direct", m.name)
			for _, c := range cases {
				v, runs, ok := med(n, c, m.name)
				cell := "-"
				if ok {
					any = true
					cell = fmtNum(v)
					var rs []string
					if r := ratio(v, h, okh); r != "" && c != "haproxy" {
						rs = append(rs, "H "+r)
					}
					if r := ratio(v, d, okd); r != "" && c != "direct" {
						rs = append(rs, "D "+r)
					}
					if len(rs) > 0 {
						cell += " (" + strings.Join(rs, ", ") + ")"
					}
					if w != nil {
						_ = w.Write([]string{strconv.Itoa(n), m.name, c, strconv.FormatFloat(v, 'f', -1, 64),
							strconv.Itoa(runs), ratio(v, h, okh), ratio(v, d, okd)})
					}
				}
				line += fmt.Sprintf(" %-24s |", cell)
			}
			if any {
				fmt.Println(line)
			}
		}
	}
	fmt.Println()
	if _, _, ok := med(1, "ours", "sctp_msgs_per_s"); ok {
		fmt.Println("SCTP rows: TestSCTPProxyBenchmark in a qemu guest (this host has no SCTP), software-emulated CPUs, one association per path; ours = the sctp app's proxy. Only the ratio to direct means something.")
	} else {
		fmt.Println("SCTP: not measured in this run (SCTP=0, or the guest could not run); see the SCTP section of the README.")
	}
	fmt.Println()

	// The "sc:<syscall>" rows: strace -c calls per connection.
	sc := map[scKey][]float64{}
	for k, v := range vals {
		if name, ok := strings.CutPrefix(k.metric, "sc:"); ok {
			sc[scKey{k.n, k.cse, name}] = v
		}
	}
	syscallTable(nlist, cases, sc)

	// Targets, at the largest N measured (the traffic targets at every N).
	fmt.Println("Targets (ratios from this run):")
	check := func(name string, got float64, ok bool, pass bool, detail string) {
		status := "MISSED"
		switch {
		case !ok:
			status, detail = "n/a", "(not measured)"
		case pass:
			status = "met"
		}
		fmt.Printf("  %-7s %-58s %s\n", status, name, detail)
	}
	for _, n := range nlist {
		o, _, oo := med(n, "ours", "tcp_gbps")
		h, _, oh := med(n, "haproxy", "tcp_gbps")
		check(fmt.Sprintf("N=%d TCP bulk >= 1.4x HAProxy", n), 0, oo && oh, o >= 1.4*h, fmt.Sprintf("%.2fx", o/h))
		o, _, oo = med(n, "ours", "conn_per_s")
		h, _, oh = med(n, "haproxy", "conn_per_s")
		check(fmt.Sprintf("N=%d connection rate >= HAProxy", n), 0, oo && oh, o >= h, fmt.Sprintf("%.2fx", o/h))
		for _, p := range []string{"echo_p50_us", "echo_p99_us"} {
			o, _, oo = med(n, "ours", p)
			h, _, oh = med(n, "haproxy", p)
			check(fmt.Sprintf("N=%d %s <= HAProxy", n, p), 0, oo && oh, o <= h, fmt.Sprintf("%.2fx", o/h))
		}
		o, _, oo = med(n, "ours", "udp_pps")
		s, _, os_ := med(n, "socat", "udp_pps")
		check(fmt.Sprintf("N=%d UDP >= 3x socat", n), 0, oo && os_, o >= 3*s, fmt.Sprintf("%.2fx", o/s))
	}
	big := nlist[len(nlist)-1]
	for _, m := range []string{"threads", "threads_after"} {
		t, _, ok := med(big, "ours", m)
		check(fmt.Sprintf("N=%d %s <= GOMAXPROCS(%d)+8", big, m, *gmp), 0, ok && *gmp > 0, t <= float64(*gmp+8), fmt.Sprintf("%.0f", t))
	}
	o, _, oo := med(big, "ours", "rss_per_listener_kib")
	h, _, oh := med(big, "haproxy", "rss_per_listener_kib")
	check(fmt.Sprintf("N=%d RSS per listener <= HAProxy", big), 0, oo && oh, o <= h, fmt.Sprintf("%.2fx", o/h))
	if small := nlist[0]; small < big {
		// What one more listener costs, without the process's base.
		for _, c := range []string{"ours", "haproxy"} {
			r0, _, ok0 := med(small, c, "rss_mib")
			r1, _, ok1 := med(big, c, "rss_mib")
			if ok0 && ok1 {
				l := perNS(big, c)
				fmt.Printf("  (info)  %-58s %.1f KiB\n", fmt.Sprintf("marginal RSS per listener, %s, N=%d..%d", c, small, big),
					(r1-r0)*1024/(float64(big-small)*l))
			}
		}
	}
	o, _, oo = med(big, "ours", "bringup_s")
	h, _, oh = med(big, "haproxy", "bringup_s")
	check(fmt.Sprintf("N=%d bring-up <= HAProxy start-up", big), 0, oo && oh, o <= h, fmt.Sprintf("%.2fx", o/h))

	// Issue 15 (fan-in) at N = 1000 and 10000, issue 16 (per-connection
	// and per-datagram cost) at every N; for ours and, where measured,
	// the namespace set.
	fmt.Println()
	fmt.Println("Targets of issues 15 and 16 (ratios from this run):")
	ratioCheck := func(name string, n int, c, m, ref string, f float64, higher bool) {
		o, _, oo := med(n, c, m)
		h, _, oh := med(n, ref, m)
		pass := o <= f*h
		if higher {
			pass = o >= f*h
		}
		check(name, 0, oo && oh, pass, fmt.Sprintf("%.2fx", o/h))
	}
	absCheck := func(name string, n int, c, m string, limit float64) {
		o, _, oo := med(n, c, m)
		check(name, 0, oo, o <= limit, fmtNum(o))
	}
	for _, c := range []string{"ours", "set"} {
		for _, n := range []int{1000, 10000} {
			if !ns[n] {
				continue
			}
			absCheck(fmt.Sprintf("15: N=%d %s goroutines idle <= 50", n, c), n, c, "goroutines", 50)
			ratioCheck(fmt.Sprintf("15: N=%d %s RSS <= 1.5x HAProxy", n, c), n, c, "rss_mib", "haproxy", 1.5, false)
			ratioCheck(fmt.Sprintf("15: N=%d %s bring-up <= HAProxy", n, c), n, c, "bringup_s", "haproxy", 1, false)
			absCheck(fmt.Sprintf("15: N=%d %s marginal RSS/listener <= 1.0 KiB", n, c), n, c, "rss_marginal_kib", 1.0)
		}
		if ns[10000] {
			absCheck(fmt.Sprintf("15: N=10000 %s threads <= 10", c), 10000, c, "threads", 10)
			absCheck(fmt.Sprintf("15: N=10000 %s bring-up <= 1 s", c), 10000, c, "bringup_s", 1)
			absCheck(fmt.Sprintf("15: N=10000 %s reload < 100 ms", c), 10000, c, "reload_ms", 99.999)
			absCheck(fmt.Sprintf("15: N=10000 %s reload re-creates no socket", c), 10000, c, "reload_recreated", 0)
			m1, _, ok1 := med(1000, c, "rss_marginal_kib")
			m10, _, ok10 := med(10000, c, "rss_marginal_kib")
			check(fmt.Sprintf("15: %s marginal RSS at 10k within 10%% of 1k", c), 0, ok1 && ok10,
				m10 <= 1.1*m1 && m10 >= 0.9*m1, fmt.Sprintf("%.2fx", m10/m1))
		}
	}
	absCheck(fmt.Sprintf("15: N=%d set member answering <= 50 ms after ip netns add", big), big, "set", "appear_ms", 50)
	for _, n := range nlist {
		ratioCheck(fmt.Sprintf("16: N=%d connection rate >= 0.9x HAProxy", n), n, "ours", "conn_per_s", "haproxy", 0.9, true)
		ratioCheck(fmt.Sprintf("16: N=%d CPU per connection <= 1.2x HAProxy", n), n, "ours", "cpu_per_conn_us", "haproxy", 1.2, false)
		o, _, oo := med(n, "ours", "sc_total")
		h, _, oh := med(n, "haproxy", "sc_total")
		check(fmt.Sprintf("16: N=%d system calls/conn <= HAProxy + 4", n), 0, oo && oh, o <= h+4, fmt.Sprintf("%.1f vs %.1f", o, h))
		ratioCheck(fmt.Sprintf("16: N=%d UDP req/resp >= 0.5x direct", n), n, "ours", "udp_pps", "direct", 0.5, true)
		ratioCheck(fmt.Sprintf("16: N=%d UDP req/resp >= 2x socat", n), n, "ours", "udp_pps", "socat", 2, true)
	}
	return nil
}

// scKey is a (N, case, syscall) cell of the system-call table.
type scKey struct {
	n       int
	cse, sc string
}

// syscallTable prints, for each N, the median system calls per connection
// by system call (strace -c attached to the proxy during a fixed number of
// connections of the connection-rate load), the cases side by side, the
// busiest first.
func syscallTable(nlist []int, cases []string, sc map[scKey][]float64) {
	if len(sc) == 0 {
		return
	}
	for _, n := range nlist {
		var cs []string
		names := map[string]float64{}
		for _, c := range cases {
			has := false
			for k, v := range sc {
				if k.n == n && k.cse == c {
					has = true
					names[k.sc] = max(names[k.sc], median(v))
				}
			}
			if has {
				cs = append(cs, c)
			}
		}
		if len(cs) == 0 {
			continue
		}
		var order []string
		for name := range names {
			if name != "total" {
				order = append(order, name)
			}
		}
		sort.Slice(order, func(i, j int) bool {
			if names[order[i]] != names[order[j]] {
				return names[order[i]] > names[order[j]]
			}
			return order[i] < order[j]
		})
		order = append(order, "total")
		fmt.Printf("System calls per connection at N=%d (strace -c -f on the proxy, medians; < 0.05 left out):\n\n", n)
		head := fmt.Sprintf("| %-20s |", "syscall")
		sep := fmt.Sprintf("| %-20s |", strings.Repeat("-", 20))
		for _, c := range cs {
			head += fmt.Sprintf(" %8s |", c)
			sep += " -------: |"
		}
		fmt.Println(head)
		fmt.Println(sep)
		for _, name := range order {
			if names[name] < 0.05 {
				continue
			}
			line := fmt.Sprintf("| %-20s |", name)
			for _, c := range cs {
				cell := "-"
				if v, ok := sc[scKey{n, c, name}]; ok {
					cell = strconv.FormatFloat(median(v), 'f', 2, 64)
				}
				line += fmt.Sprintf(" %8s |", cell)
			}
			fmt.Println(line)
		}
		fmt.Println()
	}
}
