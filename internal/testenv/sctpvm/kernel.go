package sctpvm

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// kernel is a bootable kernel image with its module tree.
type kernel struct {
	Image   string // /boot/vmlinuz-VERSION
	Version string
	Modules string // /lib/modules/VERSION
}

// findKernel picks the kernel to boot: $SCTPVM_KERNEL if set, otherwise
// the newest /boot/vmlinuz-*-cloud-amd64 (Debian's linux-image-cloud-amd64,
// which has SCTP as a module) that has a module tree.
func findKernel() (kernel, error) {
	if img := os.Getenv("SCTPVM_KERNEL"); img != "" {
		return kernelAt(img)
	}
	imgs, _ := filepath.Glob("/boot/vmlinuz-*-cloud-amd64")
	sort.Sort(sort.Reverse(sort.StringSlice(imgs)))
	var errs []error
	for _, img := range imgs {
		k, err := kernelAt(img)
		if err == nil {
			return k, nil
		}
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return kernel{}, errors.New("no /boot/vmlinuz-*-cloud-amd64 (apt-get install linux-image-cloud-amd64)")
	}
	return kernel{}, errors.Join(errs...)
}

func kernelAt(img string) (kernel, error) {
	version := strings.TrimPrefix(filepath.Base(img), "vmlinuz-")
	k := kernel{Image: img, Version: version, Modules: filepath.Join("/lib/modules", version)}
	f, err := os.Open(img)
	if err != nil {
		return kernel{}, fmt.Errorf("kernel %s: %w", img, err)
	}
	f.Close()
	if _, err := os.Stat(filepath.Join(k.Modules, "modules.dep")); err != nil {
		return kernel{}, fmt.Errorf("kernel %s: module tree: %w", img, err)
	}
	return k, nil
}

// moduleName turns "kernel/net/sctp/sctp.ko.xz" into "sctp"; modprobe
// treats '-' and '_' alike, and so does this.
func moduleName(path string) string {
	base := filepath.Base(path)
	if i := strings.Index(base, ".ko"); i >= 0 {
		base = base[:i]
	}
	return strings.ReplaceAll(base, "-", "_")
}

// parseModulesDep reads modules.dep into name -> (path, deps as paths).
func parseModulesDep(r io.Reader) (map[string][]string, error) {
	deps := make(map[string][]string)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		mod, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		deps[moduleName(mod)] = append([]string{mod}, strings.Fields(rest)...)
	}
	return deps, sc.Err()
}

// moduleLoadOrder returns the module files (relative to the module tree)
// to insmod, dependencies first, for the wanted module names. Modules built
// into the kernel (modules.builtin) are left out.
func moduleLoadOrder(dep map[string][]string, builtin map[string]bool, want []string) ([]string, error) {
	var order []string
	seen := make(map[string]bool)
	var visit func(name string) error
	visit = func(name string) error {
		name = strings.ReplaceAll(name, "-", "_")
		if seen[name] || builtin[name] {
			return nil
		}
		seen[name] = true
		entry, ok := dep[name]
		if !ok {
			return fmt.Errorf("module %q not in modules.dep", name)
		}
		// modules.dep lists the full dependency closure, the module to be
		// loaded last first; visit them last to first.
		for i := len(entry) - 1; i >= 1; i-- {
			if err := visit(moduleName(entry[i])); err != nil {
				return err
			}
		}
		order = append(order, entry[0])
		return nil
	}
	for _, w := range want {
		if err := visit(w); err != nil {
			return nil, err
		}
	}
	return order, nil
}

func (k kernel) loadOrder(want []string) ([]string, error) {
	f, err := os.Open(filepath.Join(k.Modules, "modules.dep"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	dep, err := parseModulesDep(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Name(), err)
	}
	builtin := make(map[string]bool)
	if b, err := os.ReadFile(filepath.Join(k.Modules, "modules.builtin")); err == nil {
		for _, l := range strings.Fields(string(b)) {
			builtin[moduleName(l)] = true
		}
	}
	return moduleLoadOrder(dep, builtin, want)
}

// readModule returns a module file's contents uncompressed, since busybox
// insmod may not understand compressed modules. Debian 12 ships plain .ko;
// .ko.xz and .ko.zst need the xz or zstd tool.
func readModule(path string) ([]byte, error) {
	switch {
	case strings.HasSuffix(path, ".ko"):
		return os.ReadFile(path)
	case strings.HasSuffix(path, ".ko.gz"):
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("module %s: %w", path, err)
		}
		return io.ReadAll(zr)
	case strings.HasSuffix(path, ".ko.xz"):
		return decompressWith(path, "xz", "unxz")
	case strings.HasSuffix(path, ".ko.zst"):
		return decompressWith(path, "zstd", "unzstd")
	}
	return nil, fmt.Errorf("module %s: unknown compression", path)
}

func decompressWith(path string, tools ...string) ([]byte, error) {
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			continue
		}
		var stderr bytes.Buffer
		cmd := exec.Command(tool, "-dc", path)
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("module %s: %s: %w: %s", path, tool, err, stderr.Bytes())
		}
		return out, nil
	}
	return nil, fmt.Errorf("module %s: need one of %v to decompress it", path, tools)
}

// findBusybox returns a statically linked busybox (Debian's busybox-static
// installs /bin/busybox); a dynamic one cannot run in the bare initramfs.
func findBusybox() (string, error) {
	var errs []error
	for _, p := range []string{os.Getenv("SCTPVM_BUSYBOX"), "/bin/busybox", "/usr/bin/busybox"} {
		if p == "" {
			continue
		}
		static, err := isStatic(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !static {
			errs = append(errs, fmt.Errorf("%s is dynamically linked (apt-get install busybox-static)", p))
			continue
		}
		return p, nil
	}
	if len(errs) == 0 {
		return "", errors.New("no busybox (apt-get install busybox-static)")
	}
	return "", errors.Join(errs...)
}

func isStatic(path string) (bool, error) {
	f, err := elf.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false, nil
		}
	}
	return true, nil
}
