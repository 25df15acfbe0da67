//go:build linux && !386

package sctpapp

import (
	"context"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-netns/caddy-netns/internal/testenv/sctptest"
	"github.com/caddy-netns/caddy-netns/kernel/sctpnet"
)

// tuningCaddyfile sets every option; times are multiples of 4 ms, which
// the kernel keeps exactly at HZ=250.
const tuningCaddyfile = `tuning {
	rto_initial 800ms
	rto_min 200ms
	rto_max 8s
	heartbeat_interval 12s
	path_max_retransmissions 3
	association_max_retransmissions 7
	sack_delay 40ms
	sack_frequency 3
	nodelay off
	write_buffer 5MiB
	out_streams 11
	in_streams 13
	init_max_attempts 4
	init_max_timeout 3s
	read_buffer 2MiB
}`

// TestTuningApplied parses a tuning block, dials with the proxy's config
// for it and applies the server's part to an accepted association, then
// reads every value back from the kernel with getsockopt.
func TestTuningApplied(t *testing.T) {
	d := caddyfile.NewTestDispenser(tuningCaddyfile)
	d.Next()
	tun, err := unmarshalTuning(d)
	if err != nil {
		t.Fatal(err)
	}
	if err := tun.validate(true); err != nil {
		t.Fatal(err)
	}
	want := sctpnet.Tuning{RTOInitial: 800 * time.Millisecond, RTOMin: 200 * time.Millisecond, RTOMax: 8 * time.Second,
		HeartbeatInterval: 12 * time.Second, PathMaxRetrans: 3, AssocMaxRetrans: 7, SackDelay: 40 * time.Millisecond, SackFrequency: 3}
	if tun.protocol() != want || tun.NoDelay == nil || *tun.NoDelay || tun.WriteBuffer != 5<<20 || tun.ReadBuffer != 2<<20 ||
		tun.OutStreams != 11 || tun.InStreams != 13 || tun.InitMaxAttempts != 4 || time.Duration(tun.InitMaxTimeout) != 3*time.Second {
		t.Fatalf("parsed tuning %+v", tun)
	}
	sctptest.RequireSCTP(t)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ln, err := sctpnet.Listen(ctx, nil, "sctp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan *sctpnet.Conn, 1)
	go func() {
		c, err := ln.AcceptConn(ctx)
		if err != nil {
			t.Error(err)
		}
		accepted <- c
	}()
	up, err := tun.dialConfig(20, 20, 1<<20).Dial(ctx, nil, "sctp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	server := <-accepted
	if server == nil {
		t.FailNow()
	}
	defer server.Close()

	// The upstream dial: all of it.
	if got, err := up.Tuning(); err != nil || got != want {
		t.Errorf("upstream dial: tuning read back %+v (%v), want %+v", got, err, want)
	}
	so, err := up.SocketOptions()
	if err != nil {
		t.Fatal(err)
	}
	if so.NoDelay || so.WriteBuffer < 10<<20 || so.ReadBuffer < 4<<20 || so.InitMsg.NumOstreams != 11 ||
		so.InitMsg.MaxInstreams != 13 || so.InitMsg.MaxAttempts != 4 || so.InitMsg.MaxInitTimeout != 3000 {
		t.Errorf("upstream dial: socket options read back %+v", so)
	}
	// The upstream offers 64 outbound streams; in_streams caps them at 13.
	if in, out, err := server.Streams(); err != nil || in != 11 || out != 13 {
		t.Errorf("upstream association streams seen by the upstream: in %d out %d (%v), want 11/13", in, out, err)
	}

	// A server's part, on an accepted association.
	stun := *tun
	stun.OutStreams, stun.InStreams, stun.InitMaxAttempts, stun.InitMaxTimeout, stun.ReadBuffer = 0, 0, 0, 0, 0
	if err := stun.validate(false); err != nil {
		t.Fatal(err)
	}
	s := &Server{Tuning: &stun}
	if err := s.tune(server); err != nil {
		t.Fatal(err)
	}
	if got, err := server.Tuning(); err != nil || got != want {
		t.Errorf("accepted association: tuning read back %+v (%v), want %+v", got, err, want)
	}
	if so, err := server.SocketOptions(); err != nil || so.NoDelay || so.WriteBuffer < 10<<20 {
		t.Errorf("accepted association: socket options read back %+v (%v)", so, err)
	}
	if err := tun.validate(false); err == nil {
		t.Error("out_streams on a server: no error")
	}
}
