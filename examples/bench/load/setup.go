//go:build linux

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// setLoUp brings lo up inside ns with one ioctl on a socket made there (no
// process per namespace, unlike `ip -n NS link set lo up`).
func setLoUp(ns *namespace) error {
	fd, err := ns.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err != nil {
		return fmt.Errorf("socket in %s: %w", ns, err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("lo flags in %s: %w", ns, err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("lo up in %s: %w", ns, err)
	}
	return nil
}

// loUp brings lo up in PREFIX1..PREFIXn, 8 at a time.
func loUp(args []string) error {
	fs := flag.NewFlagSet("loup", flag.ContinueOnError)
	prefix := fs.String("prefix", "", "namespace name prefix")
	n := fs.Int("n", 1, "number of namespaces")
	if err := fs.Parse(args); err != nil {
		return err
	}
	next := make(chan int)
	errc := make(chan error, 8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range next {
				ns, err := openNamespace(*prefix + strconv.Itoa(i))
				if err == nil {
					err = setLoUp(ns)
					ns.Close()
				}
				if err != nil {
					select {
					case errc <- err:
					default:
					}
				}
			}
		})
	}
	for i := 1; i <= *n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

// bindDir makes DIR/PREFIXi a bind mount of /var/run/netns/PREFIXi for
// i = 1..n: a directory holding exactly n of the benchmark's namespaces,
// for a namespace set of size n (`netns/DIR/PREFIX*/tcp/:8000`). DIR should
// be on a private tmpfs the caller unmounts (umount -l) when done.
func bindDir(args []string) error {
	fs := flag.NewFlagSet("binddir", flag.ContinueOnError)
	prefix := fs.String("prefix", "", "namespace name prefix")
	n := fs.Int("n", 1, "number of namespaces")
	dir := fs.String("dir", "", "directory to fill")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("-dir is required")
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}
	for i := 1; i <= *n; i++ {
		name := *prefix + strconv.Itoa(i)
		src, err := namespacePath(name)
		if err != nil {
			return err
		}
		dst := filepath.Join(*dir, name)
		f, err := os.OpenFile(dst, os.O_CREATE|os.O_RDONLY, 0o444)
		if err != nil {
			return err
		}
		f.Close()
		if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind-mounting %s on %s: %w", src, dst, err)
		}
	}
	return nil
}

// appear runs `ip netns add NAME` and prints the milliseconds from just
// before it until a 64-byte echo through addr inside the new namespace has
// succeeded (lo is brought up as soon as the namespace can be opened). The
// proxy is expected to serve the namespace through a namespace set.
func appear(args []string) error {
	fs := flag.NewFlagSet("appear", flag.ContinueOnError)
	name := fs.String("name", "", "namespace to create")
	addr := fs.String("addr", "127.0.0.1:8000", "address inside the namespace")
	timeout := fs.Duration("timeout", 10*time.Second, "give up after")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *name == "" {
		return errors.New("-name is required")
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	start := time.Now()
	if out, err := exec.CommandContext(ctx, "ip", "netns", "add", *name).CombinedOutput(); err != nil {
		return fmt.Errorf("ip netns add %s: %v: %s", *name, err, out)
	}
	ns, err := openNamespace(*name)
	if err != nil {
		return err
	}
	defer ns.Close()
	if err := setLoUp(ns); err != nil {
		return err
	}
	for {
		if err := transact(ns, *addr, 'E', time.Second); err == nil {
			break
		} else if ctx.Err() != nil {
			return fmt.Errorf("%s did not answer on %s within %v: %w", *name, *addr, *timeout, err)
		}
		time.Sleep(time.Millisecond)
	}
	fmt.Printf("%.1f\n", float64(time.Since(start).Microseconds())/1e3)
	return nil
}
