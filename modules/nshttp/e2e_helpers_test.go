package nshttp_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/caddy-netns/caddy-netns"
	"github.com/caddy-netns/caddy-netns/internal/testenv/e2e"
	"github.com/caddy-netns/caddy-netns/internal/testenv/nstest"
)

func TestMain(m *testing.M) {
	e2e.MaybeRunCaddy()
	os.Exit(m.Run())
}

// serveHTTP answers every request, on addr inside namespace ns, with
// "<tag> <proto>" (plus " tls" over TLS), over HTTP/1.1 and h2c, or over
// TLS (HTTP/1.1 and HTTP/2) when cert is not nil.
// The returned function stops it (it also stops when the test ends).
func serveHTTP(t testing.TB, ns, addr, tag string, cert *tls.Certificate) (stop func()) {
	t.Helper()
	ln := nstest.Listen(t, ns, "tcp", addr)
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s := tag + " " + r.Proto
			if r.TLS != nil {
				s += " tls"
			}
			fmt.Fprint(w, s)
		}),
		Protocols:         new(http.Protocols),
		ReadHeaderTimeout: 10 * time.Second,
	}
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetHTTP2(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	if cert != nil {
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{*cert}, NextProtos: []string{"h2", "http/1.1"}}
		ln = tls.NewListener(ln, srv.TLSConfig)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return func() { srv.Close() }
}

// selfSigned makes a certificate for 127.0.0.1 and writes it as PEM to a
// file the transport can trust.
func selfSigned(t testing.TB) (tls.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "netns upstream"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "upstream.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, file
}

// curl runs curl inside namespace ns and returns its output.
func curl(t testing.TB, ns string, args ...string) (string, error) {
	t.Helper()
	argv := append([]string{"netns", "exec", ns, "curl", "-sS", "--max-time", "20"}, args...)
	out, err := exec.Command("ip", argv...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func adminHost(a *e2e.Admin) string { return strings.TrimPrefix(a.URL, "http://") }

func sleep() { time.Sleep(200 * time.Millisecond) }
