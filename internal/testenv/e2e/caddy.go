// Package e2e runs a real Caddy, built into the test binary with this
// repository's modules, and drives it through its admin API.
package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// Admin talks to a Caddy admin endpoint.
type Admin struct {
	// URL is the admin endpoint, e.g. http://localhost:2999.
	URL string
}

var (
	startOnce sync.Once
	inProcess *Admin
	startErr  error
)

// Start starts Caddy in this process (once per test binary) with its admin
// API on a free localhost port, and returns a client for it. Each test
// should load the config it needs; Unload leaves Caddy with an empty one.
func Start(t testing.TB) *Admin {
	t.Helper()
	startOnce.Do(func() {
		port, err := freePort()
		if err != nil {
			startErr = err
			return
		}
		admin := fmt.Sprintf("localhost:%d", port)
		startErr = caddy.Load([]byte(fmt.Sprintf(`{"admin":{"listen":%q}}`, admin)), true)
		inProcess = &Admin{URL: "http://" + admin}
	})
	if startErr != nil {
		t.Fatalf("starting Caddy: %v", startErr)
	}
	t.Cleanup(func() {
		_ = inProcess.Load(`{"admin":{"listen":"`+strings.TrimPrefix(inProcess.URL, "http://")+`"}}`, "json")
	})
	return inProcess
}

// Load posts a config to /load. Caddyfile configs use contentType
// "caddyfile". The load is forced even when the config is unchanged, so
// namespaces re-created under the same name are picked up.
func (a *Admin) Load(config, contentType string) error {
	ct := "application/json"
	if contentType != "json" {
		ct = "text/" + contentType
	}
	resp, err := PostLoad(a.URL, config, ct)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return fmt.Errorf("load: %s: %s", resp.Status, e.Error)
		}
		return fmt.Errorf("load: %s: %s", resp.Status, bytes.TrimSpace(body))
	}
	return nil
}

// PostLoad posts config to the admin endpoint's /load, forcing the load.
// Each load restarts Caddy's admin server, and a request that reaches the
// old one as it stops is dropped unanswered (EOF, reset): such a request is
// sent again, a few times. A dropped request may have been applied; loading
// the same config twice is harmless.
func PostLoad(url, config, contentType string) (*http.Response, error) {
	client := &http.Client{Timeout: 2 * time.Minute}
	for attempt := 1; ; attempt++ {
		req, err := http.NewRequest(http.MethodPost, url+"/load", strings.NewReader(config))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", contentType)
		req.Header.Set("Cache-Control", "must-revalidate")
		req.Close = true // no reuse of a connection to a stopped admin server
		resp, err := client.Do(req)
		if err == nil || attempt == 5 || !dropped(err) {
			return resp, err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func dropped(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED)
}

// MustLoad loads a config or fails the test.
func (a *Admin) MustLoad(t testing.TB, config, contentType string) {
	t.Helper()
	if err := a.Load(config, contentType); err != nil {
		t.Fatal(err)
	}
}

// Config returns the running config as JSON.
func (a *Admin) Config(t testing.TB) string {
	t.Helper()
	resp, err := http.Get(a.URL + "/config/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// WithAdmin returns an admin-listen JSON fragment for this Caddy, to embed
// in configs so a load does not move the admin endpoint.
func (a *Admin) WithAdmin() string {
	return fmt.Sprintf(`"admin":{"listen":%q}`, strings.TrimPrefix(a.URL, "http://"))
}

// Process is Caddy running as a child process: the test binary itself,
// re-executed with RunCaddyEnv set so that its TestMain runs Caddy.
type Process struct {
	Admin
	cmd *exec.Cmd
	out *bytes.Buffer
}

// RunCaddyEnv makes a test binary whose TestMain calls MaybeRunCaddy act as
// the caddy command.
const RunCaddyEnv = "E2E_RUN_CADDY"

// StartProcess runs Caddy in a child process, prefixing the command with
// wrapper (for example setpriv to drop capabilities) if given.
func StartProcess(t testing.TB, wrapper ...string) *Process {
	t.Helper()
	return StartProcessWith(t, ProcessOptions{Wrapper: wrapper})
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "localhost:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
