package sctpvm

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// guest is everything that goes into one initramfs.
type guest struct {
	Busybox  string       // host path of a static busybox
	Modules  []string     // host paths of kernel modules, in load order
	Binaries []testBinary // test binaries to run, in order
	Marker   string       // unique prefix of the result lines init prints
	Env      [][2]string  // exported for the test binaries
	TestArgs []string     // flags for every test binary
	Sysctls  [][2]string  // /proc/sys paths and values written at boot
}

// maxTestdata bounds the testdata copied into the initramfs per package.
const maxTestdata = 64 << 20

// writeInitramfs writes the guest's initramfs (gzipped cpio newc) to path.
func writeInitramfs(path string, g guest) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	zw, err := gzip.NewWriterLevel(bw, gzip.BestSpeed)
	if err != nil {
		return err
	}
	c := &cpioWriter{w: zw}
	for _, d := range []string{"bin", "sbin", "dev", "proc", "sys", "run", "tmp", "mod", "tests", "pkg", "etc", "root", "var"} {
		c.Dir(d, 0o755)
	}
	c.CharDev("dev/console", 0o600, 5, 1)
	c.CharDev("dev/null", 0o666, 1, 3)
	c.Symlink("var/run", "../run")
	c.File("etc/hosts", 0o644, []byte("127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n"))
	c.File("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\n"))
	c.File("etc/group", 0o644, []byte("root:x:0:\n"))

	bb, err := os.ReadFile(g.Busybox)
	if err != nil {
		return err
	}
	c.File("bin/busybox", 0o755, bb)
	for _, m := range g.Modules {
		data, err := readModule(m)
		if err != nil {
			return err
		}
		c.File("mod/"+moduleName(m)+".ko", 0o644, data)
	}
	for _, b := range g.Binaries {
		data, err := os.ReadFile(b.Path)
		if err != nil {
			return err
		}
		c.File("tests/"+b.Name+".test", 0o755, data)
		c.Dir("pkg/"+b.Name, 0o755)
		if err := addTree(c, filepath.Join(b.Dir, "testdata"), "pkg/"+b.Name+"/testdata"); err != nil {
			return err
		}
	}
	c.File("init", 0o755, []byte(initScript(g)))
	if err := c.Close(); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return f.Close()
}

// addTree copies a host directory (a package's testdata) into the archive,
// if it exists, so tests that read testdata/ relative to their package
// directory work in the guest too.
func addTree(c *cpioWriter, src, dst string) error {
	if _, err := os.Lstat(src); os.IsNotExist(err) {
		return nil
	}
	total := 0
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		name := dst
		if rel != "." {
			name = dst + "/" + filepath.ToSlash(rel)
		}
		switch {
		case d.IsDir():
			c.Dir(name, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			c.Symlink(name, target)
		case d.Type().IsRegular():
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			if total += len(data); total > maxTestdata {
				return fmt.Errorf("%s: more than %d MiB of testdata", src, maxTestdata>>20)
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			c.File(name, uint32(info.Mode().Perm()), data)
		}
		return nil
	})
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// initScript is the guest's /init: set up the system, load the modules,
// run each test binary from its package directory and print a marker line
// with its exit status, then power off. qemu's own exit status says nothing
// about the guest, so the host reads these lines.
func initScript(g guest) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("#!/bin/busybox sh")
	p("/bin/busybox --install -s /bin")
	p("export PATH=/bin:/sbin")
	p("mount -t proc proc /proc")
	p("mount -t sysfs sys /sys")
	p("mount -t devtmpfs dev /dev")
	p("mount -t tmpfs -o mode=0755 run /run")
	p("mkdir -p /run/netns")
	p("mount -t tmpfs -o mode=1777 tmp /tmp")
	p("echo %s", shellQuote(g.Marker+" BOOTED"))
	for _, m := range g.Modules {
		name := moduleName(m)
		p("insmod /mod/%s.ko || echo %s", name, shellQuote(g.Marker+" INSMOD-FAILED "+name))
	}
	for _, s := range g.Sysctls {
		p("echo %s > %s", shellQuote(s[1]), shellQuote(s[0]))
	}
	p("ip link set lo up")
	p("ulimit -n 65536")
	for _, kv := range g.Env {
		p("export %s=%s", kv[0], shellQuote(kv[1]))
	}
	args := make([]string, len(g.TestArgs))
	for i, a := range g.TestArgs {
		args[i] = shellQuote(a)
	}
	for _, bin := range g.Binaries {
		p("echo %s", shellQuote(g.Marker+" BEGIN "+bin.Name))
		p("cd /pkg/%s && /tests/%s.test %s </dev/null 2>&1", bin.Name, bin.Name, strings.Join(args, " "))
		p("echo %s $?", shellQuote(g.Marker+" END "+bin.Name))
		p("cd /")
	}
	p("echo %s", shellQuote(g.Marker+" DONE"))
	p("sync")
	p("poweroff -f")
	p("sleep 5")
	p("reboot -f")
	return b.String()
}

// testTimeout leaves the guest a margin after the test binaries' own
// -test.timeout so that a hanging test still prints its goroutine dump.
func testTimeout(total time.Duration) time.Duration {
	d := total - 30*time.Second
	if d < 30*time.Second {
		d = total / 2
	}
	return d
}
