package sctpnet

import (
	"context"
	"encoding/binary"
	"testing"
)

func TestResolveAddr(t *testing.T) {
	for _, c := range []struct {
		network, address string
		want             string // SCTPAddr.String(); "" means an error
	}{
		{"sctp", "127.0.0.1:2905", "127.0.0.1:2905"},
		{"sctp", ":0", ":0"},
		{"sctp4", ":9", ":9"},
		{"sctp6", "[::1]:80", "[::1]:80"},
		{"sctp", "[fe80::1%lo]:80", "[fe80::1%lo]:80"},
		{"sctp", "10.0.0.1/10.0.1.1:2905", "10.0.0.1/10.0.1.1:2905"},
		{"sctp", "[fd00::1]/[fd00::2]:1", "[fd00::1]/[fd00::2]:1"},
		{"sctp", "10.0.0.1/[fd00::2]:1", "10.0.0.1/[fd00::2]:1"},
		{"sctp", "[::ffff:10.0.0.1]:1", "10.0.0.1:1"},
		{"sctp", "10.0.0.1,10.0.1.1:2905", "10.0.0.1/10.0.1.1:2905"},
		{"sctp6", "[fd00::1,fd00::2]:1", "[fd00::1]/[fd00::2]:1"},
		{"sctp", "[fd00::1],[fd00::2]:1", "[fd00::1]/[fd00::2]:1"},
		{"sctp", "10.0.0.1,:1", ""},
		{"sctp", "fd00::1,fd00::2:1", ""},
		{"sctp4", "localhost:1", "127.0.0.1:1"},
		{"sctp4", "[::1]:80", ""},
		{"sctp6", "127.0.0.1:80", ""},
		{"sctp", "::1:80", ""},
		{"sctp", "127.0.0.1", ""},
		{"sctp", "127.0.0.1:http", ""},
		{"sctp", "127.0.0.1:65536", ""},
		{"sctp", "/127.0.0.1:1", ""},
		{"tcp", "127.0.0.1:1", ""},
		{"sctp", "no-such-host.invalid:1", ""},
	} {
		a, err := ResolveAddr(context.Background(), c.network, c.address)
		switch {
		case c.want == "" && err == nil:
			t.Errorf("%s %q: got %v, want an error", c.network, c.address, a)
		case c.want != "" && err != nil:
			t.Errorf("%s %q: %v", c.network, c.address, err)
		case c.want != "" && a.String() != c.want:
			t.Errorf("%s %q: got %v, want %s", c.network, c.address, a, c.want)
		}
	}
}

func TestPPID(t *testing.T) {
	raw := RawPPID(1000)
	var b [4]byte
	// The kernel copies the field's memory bytes to the wire: they must be
	// 1000 in network byte order.
	b[0], b[1], b[2], b[3] = byte(raw), byte(raw>>8), byte(raw>>16), byte(raw>>24)
	if isLittleEndian() && b != [4]byte{0, 0, 0x03, 0xe8} {
		t.Errorf("RawPPID(1000) = %#x: wire bytes %x", raw, b)
	}
	if got := (Info{PPID: raw}).PPIDNumber(); got != 1000 {
		t.Errorf("PPIDNumber = %d", got)
	}
	for _, n := range []uint32{0, 1, 46, 0xdeadbeef} {
		if got := (Info{PPID: RawPPID(n)}).PPIDNumber(); got != n {
			t.Errorf("round trip of %d: %d", n, got)
		}
	}
	if !(Info{Flags: FlagUnordered}).Unordered() || (Info{}).Unordered() {
		t.Error("Unordered")
	}
}

func isLittleEndian() bool { return binary.NativeEndian.Uint16([]byte{1, 0}) == 1 }

func TestConfigDefaults(t *testing.T) {
	c := Config{}.withDefaults()
	if c.OutStreams != DefaultOutStreams || c.MaxInStreams != DefaultMaxInStreams ||
		c.Backlog != DefaultBacklog || c.MaxMessageSize != DefaultMaxMessageSize {
		t.Errorf("defaults: %+v", c)
	}
	c = Config{OutStreams: 5, MaxMessageSize: 10}.withDefaults()
	if c.OutStreams != 5 || c.MaxMessageSize != 10 {
		t.Errorf("explicit values overridden: %+v", c)
	}
}
