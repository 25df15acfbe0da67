package nstest

import (
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/caddy-netns/caddy-netns/kernel/nsenter"
)

// SleepIn starts a process that sleeps inside the named namespace, so that
// /proc/<pid>/ns/net names it, and kills it when the test ends. It returns
// once the process is in the namespace.
func SleepIn(t testing.TB, name string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", name, "sleep", "600")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	want := ID(t, name)
	path := "/proc/" + strconv.Itoa(cmd.Process.Pid) + "/ns/net"
	for range 500 {
		if id, err := nsenter.StatID(path); err == nil && id == want {
			return cmd
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("process %d did not enter %s", cmd.Process.Pid, name)
	return nil
}
