package nsproxy_test

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/caddy-netns/caddy-netns/internal/testenv/e2e"
	"github.com/caddy-netns/caddy-netns/internal/testenv/nstest"
)

// BenchmarkProxyThroughput moves data through one TCP connection via
// caddy-l4's proxy and via netns_proxy, in the same Caddy and process, on
// loopback, in both directions. Each op is 1 MiB.
//
//	go test -run '^$' -bench ProxyThroughput -benchtime 2000x ./modules/nsproxy/
func BenchmarkProxyThroughput(b *testing.B) {
	admin := e2e.Start(b)
	sink := startSink(b)
	ports := map[string]int{"l4proxy": nstest.FreePort(b), "netns_proxy": nstest.FreePort(b)}
	admin.MustLoad(b, layer4JSON(admin, map[string]string{
		"l4proxy": proxyServer([]string{fmt.Sprintf("tcp/127.0.0.1:%d", ports["l4proxy"])},
			fmt.Sprintf(`{"handler":"proxy","upstreams":[{"dial":["%s"]}]}`, sink)),
		"netns_proxy": proxyServer([]string{fmt.Sprintf("tcp/127.0.0.1:%d", ports["netns_proxy"])},
			fmt.Sprintf(`{"handler":"netns_proxy","upstreams":[{"dial":"%s"}]}`, sink)),
	}), "json")
	for _, dir := range []string{"upload", "download"} {
		for _, proxy := range []string{"l4proxy", "netns_proxy"} {
			b.Run(dir+"/"+proxy, func(b *testing.B) {
				c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", ports[proxy]))
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				b.SetBytes(chunk)
				b.ResetTimer()
				if dir == "upload" {
					upload(b, c.(*net.TCPConn))
				} else {
					download(b, c)
				}
			})
		}
	}
}

const chunk = 1 << 20

var zeros = make([]byte, chunk)

func upload(b *testing.B, c *net.TCPConn) {
	c.Write([]byte{'U'})
	for range b.N {
		if _, err := c.Write(zeros); err != nil {
			b.Fatal(err)
		}
	}
	c.CloseWrite()
	var n uint64
	if err := binary.Read(c, binary.BigEndian, &n); err != nil || n != uint64(b.N)*chunk {
		b.Fatalf("sink counted %d bytes, %v; want %d", n, err, b.N*chunk)
	}
}

func download(b *testing.B, c net.Conn) {
	want := uint64(b.N) * chunk
	c.Write([]byte{'D'})
	binary.Write(c, binary.BigEndian, want)
	n, err := io.Copy(io.Discard, c)
	if err != nil || uint64(n) != want {
		b.Fatalf("read %d bytes, %v; want %d", n, err, want)
	}
}

// startSink serves 'U' (read to EOF, answer the count) and 'D'+count
// (send count zero bytes, close) on loopback, and returns its address.
func startSink(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	nstest.AcceptEach(b, ln, func(c net.Conn) {
		mode := make([]byte, 1)
		if _, err := io.ReadFull(c, mode); err != nil {
			return
		}
		switch mode[0] {
		case 'U':
			n, _ := io.Copy(io.Discard, c)
			binary.Write(c, binary.BigEndian, uint64(n))
		case 'D':
			var n uint64
			if binary.Read(c, binary.BigEndian, &n) != nil {
				return
			}
			for n > 0 {
				k := min(n, chunk)
				if _, err := c.Write(zeros[:k]); err != nil {
					return
				}
				n -= k
			}
		}
	})
	return ln.Addr().String()
}
