// Package sctpvm runs Go test packages inside a small qemu guest whose
// kernel has SCTP, for hosts whose kernel has none.
//
// Run builds each package's test binary with CGO_ENABLED=0 (static), packs
// it with a static busybox, the sctp module and its dependencies, and an
// /init script into an initramfs, boots Debian's cloud kernel under
// qemu-system-x86_64 with software emulation, streams the guest console
// into the test log and fails the calling test for every binary whose exit
// status (printed by init as a marker line) is not 0.
//
// Inside the guest, NETNS_SCTP_GUEST=1 is set (see sctptest.InGuest), CI
// is passed through, lo is up, /var/run/netns is a writable tmpfs directory
// for bind-mounted namespaces, and net.core.rmem_max/wmem_max are 16 MiB.
//
// To run only some tests in the guest while working on them, set
// SCTPVM_RUN to a -test.run pattern:
//
//	SCTPVM_RUN=TestIdleThreads go test -run TestSCTPGuest -v ./modules/sctpapp/
//
// What the host needs is installed by .ci/install-sctp-vm.sh: the packages
// qemu-system-x86, linux-image-cloud-amd64 and busybox-static.
package sctpvm

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-netns/caddy-netns/internal/testenv/sctptest"
)

// Config describes one guest run.
type Config struct {
	// Packages to test in the guest: import paths, or patterns relative to
	// the calling test's package directory ("./sctpnet"). Packages without
	// test files are left out.
	Packages []string

	// Run is passed to every test binary as -test.run. Default: the
	// SCTPVM_RUN environment variable, or all tests.
	Run string

	// Args are more flags for every test binary, e.g. "-test.count=2".
	// -test.v and -test.timeout are always set.
	Args []string

	// Timeout bounds the whole run: build, boot and tests. It is cut to
	// fit the calling test's own deadline. Default: 8m.
	Timeout time.Duration

	// Modules are loaded in the guest with their dependencies from
	// modules.dep. Default: sctp, veth.
	Modules []string

	// MemoryMiB is the guest's memory. Default: 1024.
	MemoryMiB int

	// CPUs is the guest's number of CPUs. Default: 2.
	CPUs int
}

func (c Config) withDefaults() Config {
	if c.Timeout <= 0 {
		c.Timeout = 8 * time.Minute
	}
	if c.Run == "" {
		c.Run = os.Getenv("SCTPVM_RUN")
	}
	if c.Modules == nil {
		c.Modules = []string{"sctp", "veth"}
	}
	if c.MemoryMiB <= 0 {
		c.MemoryMiB = 1024
	}
	if c.CPUs <= 0 {
		c.CPUs = 2
	}
	return c
}

// host is what booting the guest needs from the host.
type host struct {
	qemu    string
	kernel  kernel
	busybox string
}

// Available reports why the guest cannot be booted on this host, or nil.
func Available() error {
	_, err := probe()
	return err
}

func probe() (host, error) {
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		return host{}, fmt.Errorf("sctpvm runs only on linux/amd64 hosts, not %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	var h host
	var errs []error
	var err error
	if h.qemu, err = exec.LookPath("qemu-system-x86_64"); err != nil {
		errs = append(errs, fmt.Errorf("qemu-system-x86_64 not found (apt-get install qemu-system-x86)"))
	}
	if h.kernel, err = findKernel(); err != nil {
		errs = append(errs, err)
	}
	if h.busybox, err = findBusybox(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return host{}, fmt.Errorf("cannot boot the SCTP test guest (install what it needs, as root: sh .ci/install-sctp-vm.sh): %w", errors.Join(errs...))
	}
	return h, nil
}

// Run boots the guest and runs the packages' tests in it; see the package
// documentation. When the host lacks what the guest needs it fails the
// test with the command that installs it: a skipped guest run would hide
// every SCTP test behind an "ok".
func Run(t testing.TB, cfg Config) {
	t.Helper()
	start := time.Now()
	cfg = cfg.withDefaults()
	h, err := probe()
	if err != nil {
		t.Fatalf("%v; the SCTP tests cannot run without it", err)
	}
	if len(cfg.Packages) == 0 {
		t.Fatal("sctpvm: no packages to run")
	}

	timeout := cfg.Timeout
	if d, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if dl, ok := d.Deadline(); ok {
			if left := time.Until(dl) - 20*time.Second; left < timeout {
				timeout = left
			}
		}
	}
	if timeout < time.Minute {
		t.Fatalf("sctpvm: only %v left before the test deadline; run go test with a larger -timeout", timeout)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	bins, err := listPackages(ctx, cfg.Packages)
	if err != nil {
		t.Fatal(err)
	}
	if len(bins) == 0 {
		t.Fatalf("sctpvm: none of %v has tests", cfg.Packages)
	}
	if err := recordInputs(ctx, cfg.Packages); err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	if err := build(ctx, work, bins); err != nil {
		t.Fatal(err)
	}
	order, err := h.kernel.loadOrder(cfg.Modules)
	if err != nil {
		t.Fatalf("kernel %s: %v", h.kernel.Version, err)
	}
	var mods []string
	for _, m := range order {
		mods = append(mods, filepath.Join(h.kernel.Modules, m))
	}
	var nonce [8]byte
	rand.Read(nonce[:])
	g := guest{
		Busybox:  h.busybox,
		Modules:  mods,
		Binaries: bins,
		Marker:   "sctpvm-" + hex.EncodeToString(nonce[:]),
		Env: [][2]string{
			{sctptest.GuestEnv, "1"},
			{"CI", os.Getenv("CI")},
			{"HOME", "/root"},
			{"TMPDIR", "/tmp"},
		},
		TestArgs: []string{"-test.v=true", "-test.timeout=" + testTimeout(time.Until(deadlineOf(ctx))).String()},
		Sysctls: [][2]string{
			{"/proc/sys/net/core/rmem_max", "16777216"},
			{"/proc/sys/net/core/wmem_max", "16777216"},
		},
	}
	if cfg.Run != "" {
		g.TestArgs = append(g.TestArgs, "-test.run="+cfg.Run)
	}
	g.TestArgs = append(g.TestArgs, cfg.Args...)
	initrd := filepath.Join(work, "initrd.gz")
	if err := writeInitramfs(initrd, g); err != nil {
		t.Fatalf("writing initramfs: %v", err)
	}
	for _, b := range bins { // the initramfs holds them now
		os.Remove(b.Path)
	}
	built := time.Since(start)
	names := make([]string, len(bins))
	for i, b := range bins {
		names[i] = b.ImportPath
	}
	t.Logf("sctpvm: booting %s with %s (built in %v)", h.kernel.Version, strings.Join(names, ", "), built.Round(time.Millisecond))

	con := newConsole(g.Marker)
	bootErr := boot(ctx, t, h, cfg, initrd, con)
	t.Logf("sctpvm: guest run took %v (%v building, %v in the guest)",
		time.Since(start).Round(time.Millisecond), built.Round(time.Millisecond), (time.Since(start) - built).Round(time.Millisecond))
	if bootErr != nil {
		t.Error(bootErr)
	}
	for _, err := range con.verdict(bins) {
		t.Error(err)
	}
}

func deadlineOf(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}

// boot runs qemu until the guest powers off (or the context ends), feeding
// every console line to the test log and to con.
func boot(ctx context.Context, t testing.TB, h host, cfg Config, initrd string, con *console) error {
	cmd := exec.CommandContext(ctx, h.qemu,
		"-accel", "tcg,thread=multi", "-cpu", "max",
		"-m", strconv.Itoa(cfg.MemoryMiB), "-smp", strconv.Itoa(cfg.CPUs),
		"-nographic", "-no-reboot", "-nic", "none",
		"-kernel", h.kernel.Image, "-initrd", initrd,
		"-append", "console=ttyS0 quiet panic=-1",
	)
	cmd.WaitDelay = 5 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting qemu: %w", err)
	}

	var wg sync.WaitGroup
	wg.Add(2)
	doneSeen := make(chan struct{})
	go func() {
		defer wg.Done()
		var once sync.Once
		follow(stdout, func(line string) {
			t.Log("guest: " + line)
			con.line(line)
			if con.done {
				once.Do(func() { close(doneSeen) })
			}
		})
	}()
	go func() {
		defer wg.Done()
		follow(stderr, func(line string) { t.Log("qemu: " + line) })
	}()

	// Once init has printed DONE, give the guest a little time to power
	// off, then stop qemu ourselves.
	waitc := make(chan error, 1)
	go func() {
		wg.Wait()
		waitc <- cmd.Wait()
	}()
	select {
	case err = <-waitc:
	case <-doneSeen:
		select {
		case err = <-waitc:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			err = <-waitc
		}
	}
	if ctx.Err() != nil {
		return fmt.Errorf("guest run exceeded its time limit: %w", ctx.Err())
	}
	if err != nil && !con.done {
		return fmt.Errorf("qemu: %w", err)
	}
	return nil
}

// ansiEscape matches the terminal control sequences the firmware prints.
var ansiEscape = regexp.MustCompile(`\x1b(\[[0-9;?]*[A-Za-z]|[A-Za-z])`)

// follow calls fn for every line read from r, without carriage returns or
// terminal control sequences.
func follow(r io.Reader, fn func(string)) {
	br := bufio.NewReaderSize(r, 64*1024)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			fn(ansiEscape.ReplaceAllString(strings.TrimRight(line, "\r\n"), ""))
		}
		if err != nil {
			return
		}
	}
}
