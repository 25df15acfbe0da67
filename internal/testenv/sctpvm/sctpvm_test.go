package sctpvm

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

type cpioEntry struct {
	name       string
	mode       uint32
	data       string
	rmaj, rmin uint32
}

// readCPIO is a minimal newc reader for checking cpioWriter.
func readCPIO(t *testing.T, b []byte) []cpioEntry {
	t.Helper()
	var out []cpioEntry
	off := 0
	field := func(i int) uint32 {
		v, err := strconv.ParseUint(string(b[off+6+8*i:off+6+8*i+8]), 16, 32)
		if err != nil {
			t.Fatalf("offset %d field %d: %v", off, i, err)
		}
		return uint32(v)
	}
	align := func(n int) int { return (n + 3) &^ 3 }
	for {
		if string(b[off:off+6]) != "070701" {
			t.Fatalf("bad magic at %d: %q", off, b[off:off+6])
		}
		mode, size, rmaj, rmin, namesize := field(1), int(field(6)), field(9), field(10), int(field(11))
		name := string(b[off+110 : off+110+namesize-1])
		dataOff := align(off + 110 + namesize)
		data := string(b[dataOff : dataOff+size])
		off = align(dataOff + size)
		if name == "TRAILER!!!" {
			if off != len(b) {
				t.Fatalf("%d bytes after the trailer", len(b)-off)
			}
			return out
		}
		out = append(out, cpioEntry{name, mode, data, rmaj, rmin})
	}
}

func TestCPIOWriter(t *testing.T) {
	var buf bytes.Buffer
	c := &cpioWriter{w: &buf}
	c.Dir("bin", 0o755)
	c.File("bin/x", 0o755, []byte("hello"))
	c.File("empty", 0o644, nil)
	c.Symlink("var/run", "../run")
	c.CharDev("dev/console", 0o600, 5, 1)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	got := readCPIO(t, buf.Bytes())
	want := []cpioEntry{
		{"bin", cpioDir | 0o755, "", 0, 0},
		{"bin/x", cpioFile | 0o755, "hello", 0, 0},
		{"empty", cpioFile | 0o644, "", 0, 0},
		{"var/run", cpioSymlink | 0o777, "../run", 0, 0},
		{"dev/console", cpioCharDev | 0o600, "", 5, 1},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	// Where the cpio tool exists, it must read the archive too.
	if _, err := exec.LookPath("cpio"); err == nil {
		cmd := exec.Command("cpio", "-t", "--quiet")
		cmd.Stdin = bytes.NewReader(buf.Bytes())
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "dev/console") {
			t.Fatalf("cpio -t: %v\n%s", err, out)
		}
	}
}

func TestWriteError(t *testing.T) {
	c := &cpioWriter{w: failWriter{}}
	c.File("x", 0o644, []byte("y"))
	if err := c.Close(); err == nil {
		t.Fatal("no error from a failing writer")
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, io.ErrClosedPipe }

const modulesDep = `kernel/lib/libcrc32c.ko:
kernel/net/ipv4/udp_tunnel.ko:
kernel/net/ipv6/ip6_udp_tunnel.ko:
kernel/net/sctp/sctp.ko: kernel/net/ipv6/ip6_udp_tunnel.ko kernel/net/ipv4/udp_tunnel.ko kernel/lib/libcrc32c.ko
kernel/net/sctp/sctp_diag.ko: kernel/net/sctp/sctp.ko kernel/net/ipv4/inet_diag.ko kernel/net/ipv6/ip6_udp_tunnel.ko kernel/net/ipv4/udp_tunnel.ko kernel/lib/libcrc32c.ko
kernel/net/ipv4/inet_diag.ko:
kernel/drivers/net/veth.ko.xz:
kernel/drivers/net/dummy-thing.ko.zst:
`

func TestModuleLoadOrder(t *testing.T) {
	dep, err := parseModulesDep(strings.NewReader(modulesDep))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		want    []string
		builtin map[string]bool
		order   []string
		err     bool
	}{
		{want: []string{"sctp"}, order: []string{
			"kernel/lib/libcrc32c.ko", "kernel/net/ipv4/udp_tunnel.ko", "kernel/net/ipv6/ip6_udp_tunnel.ko", "kernel/net/sctp/sctp.ko"}},
		{want: []string{"sctp_diag", "sctp", "veth"}, order: []string{
			"kernel/lib/libcrc32c.ko", "kernel/net/ipv4/udp_tunnel.ko", "kernel/net/ipv6/ip6_udp_tunnel.ko",
			"kernel/net/ipv4/inet_diag.ko", "kernel/net/sctp/sctp.ko", "kernel/net/sctp/sctp_diag.ko",
			"kernel/drivers/net/veth.ko.xz"}},
		{want: []string{"dummy_thing"}, order: []string{"kernel/drivers/net/dummy-thing.ko.zst"}},
		{want: []string{"sctp", "veth"}, builtin: map[string]bool{"sctp": true, "veth": true}},
		{want: []string{"nosuch"}, err: true},
	} {
		got, err := moduleLoadOrder(dep, c.builtin, c.want)
		if (err != nil) != c.err || !reflect.DeepEqual(got, c.order) {
			t.Errorf("%v: got %v, %v; want %v (error %v)", c.want, got, err, c.order, c.err)
		}
	}
}

func TestReadModule(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "m.ko")
	os.WriteFile(plain, []byte("\x7fELF module"), 0o644)
	for _, c := range []struct{ tool, ext string }{{"xz", ".ko.xz"}, {"zstd", ".ko.zst"}, {"gzip", ".ko.gz"}} {
		if _, err := exec.LookPath(c.tool); err != nil {
			t.Logf("no %s: not checking %s", c.tool, c.ext)
			continue
		}
		out, err := exec.Command(c.tool, "-c", plain).Output()
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, "m"+c.ext)
		os.WriteFile(p, out, 0o644)
		got, err := readModule(p)
		if err != nil || string(got) != "\x7fELF module" {
			t.Errorf("%s: %q, %v", c.ext, got, err)
		}
	}
	if _, err := readModule(filepath.Join(dir, "m.ko.lz4")); err == nil {
		t.Error("no error for an unknown compression")
	}
}

func TestConsoleVerdict(t *testing.T) {
	bins := []testBinary{{Name: "a", ImportPath: "x/a"}, {Name: "b", ImportPath: "x/b"}, {Name: "c", ImportPath: "x/c"}}
	run := func(lines ...string) []error {
		c := newConsole("M")
		for _, l := range lines {
			c.line(l)
		}
		return c.verdict(bins)
	}
	if errs := run("M BOOTED", "M BEGIN a", "M END a 0", "M BEGIN b", "--- PASS", "[ 1.0] kernel says M END b 0", "M BEGIN c", "M END c 0", "M DONE"); len(errs) != 0 {
		t.Errorf("clean run: %v", errs)
	}
	errs := run("M BOOTED", "M INSMOD-FAILED sctp", "M BEGIN a", "M END a 1", "M BEGIN b", "X END b 0", "M END bb 0")
	want := []string{"could not load module sctp", "x/a): FAIL, exit status 1", "x/b): no exit status", "x/c): did not run", "did not finish"}
	if len(errs) != len(want) {
		t.Fatalf("got %v; want %d errors", errs, len(want))
	}
	for i, w := range want {
		if !strings.Contains(errs[i].Error(), w) {
			t.Errorf("error %d = %v; want %q", i, errs[i], w)
		}
	}
	if errs := run(); len(errs) == 0 || !strings.Contains(fmt.Sprint(errs), "never ran its init") {
		t.Errorf("no boot: %v", errs)
	}
}

func TestInitScript(t *testing.T) {
	s := initScript(guest{
		Modules:  []string{"/lib/modules/v/kernel/lib/libcrc32c.ko", "/lib/modules/v/kernel/net/sctp/sctp.ko"},
		Binaries: []testBinary{{Name: "sctpnet"}},
		Marker:   "M",
		Env:      [][2]string{{"CI", "it's"}},
		TestArgs: []string{"-test.run=A|B"},
		Sysctls:  [][2]string{{"/proc/sys/net/core/rmem_max", "16777216"}},
	})
	for _, want := range []string{
		"insmod /mod/libcrc32c.ko",
		"insmod /mod/sctp.ko",
		"echo '16777216' > '/proc/sys/net/core/rmem_max'",
		`export CI='it'\''s'`,
		"cd /pkg/sctpnet && /tests/sctpnet.test '-test.run=A|B' </dev/null 2>&1",
		"echo 'M END sctpnet' $?",
		"echo 'M DONE'",
		"poweroff -f",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("init script lacks %q:\n%s", want, s)
		}
	}
	if strings.Index(s, "libcrc32c") > strings.Index(s, "sctp.ko") {
		t.Error("modules out of order")
	}
	if sh, err := exec.LookPath("sh"); err == nil {
		if out, err := exec.Command(sh, "-n", "-c", s).CombinedOutput(); err != nil {
			t.Errorf("sh -n: %v\n%s", err, out)
		}
	}
}
