//go:build linux

package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"sync/atomic"
	"time"
)

// udpOneWay sends -size byte datagrams as fast as it can on one flow from
// the first namespace to addr for -d, and counts what arrives at -sink (a
// socket this command opens in its own namespace, where the proxy or the
// direct path delivers). It prints "received/s sent/s received".
func udpOneWay(args []string) error {
	fs := flag.NewFlagSet("udp1", flag.ContinueOnError)
	prefix := fs.String("prefix", "", "namespace name prefix (the sender is in PREFIX1)")
	addr := fs.String("addr", "127.0.0.1:8002", "address to send to, inside the namespace")
	sink := fs.String("sink", "127.0.0.1:17002", "address to receive on, in this process's namespace")
	size := fs.Int("size", 1400, "datagram size, bytes")
	d := fs.Duration("d", 5*time.Second, "duration of the load")
	if err := fs.Parse(args); err != nil {
		return err
	}
	pc, err := net.ListenPacket("udp", *sink)
	if err != nil {
		return err
	}
	defer pc.Close()
	if u, ok := pc.(*net.UDPConn); ok {
		_ = u.SetReadBuffer(4 << 20)
	}
	var got atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
			got.Add(1)
		}
	}()
	nss, err := namespaces(*prefix, 1)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	c, err := dialIn(ctx, nss[0], "udp", *addr)
	cancel()
	if err != nil {
		return err
	}
	defer c.Close()
	msg := make([]byte, *size)
	var sent int64
	start := time.Now()
	end := start.Add(*d)
	for time.Now().Before(end) {
		for range 64 {
			if _, err := c.Write(msg); err == nil {
				sent++
			}
		}
	}
	el := time.Since(start).Seconds()
	// What is still in flight through the proxy arrives within this.
	time.Sleep(200 * time.Millisecond)
	pc.Close()
	<-done
	r := got.Load()
	fmt.Printf("%.0f %.0f %d\n", float64(r)/el, float64(sent)/el, r)
	return nil
}
