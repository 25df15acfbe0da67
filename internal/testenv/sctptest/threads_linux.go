package sctptest

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// OSThreads returns how many OS threads this process has.
func OSThreads() (int, error) {
	entries, err := os.ReadDir("/proc/self/task")
	return len(entries), err
}

// ThreadsInSocketCalls counts this process's threads that sit in a socket
// system call a blocking implementation would wait in (accept4, recvmsg,
// recvfrom, connect, sendmsg), read from /proc/self/task/*/syscall.
func ThreadsInSocketCalls() (int, error) {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return 0, err
	}
	waits := map[int]bool{unix.SYS_ACCEPT4: true, unix.SYS_RECVMSG: true, unix.SYS_RECVFROM: true, unix.SYS_CONNECT: true, unix.SYS_SENDMSG: true}
	n := 0
	for _, task := range tasks {
		b, err := os.ReadFile("/proc/self/task/" + task.Name() + "/syscall")
		if os.IsNotExist(err) {
			continue // the thread ended meanwhile
		}
		if err != nil {
			return 0, err
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			continue
		}
		if nr, err := strconv.Atoi(f[0]); err == nil && waits[nr] {
			n++
		}
	}
	return n, nil
}

// CheckThreadDetector blocks a thread in recvfrom on a UDP socket and
// makes sure ThreadsInSocketCalls counts it; it skips the test when the
// threads' system calls cannot be read.
func CheckThreadDetector(t testing.TB) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	bound, _ := unix.Getsockname(fd)
	done := make(chan struct{})
	go func() {
		unix.Recvfrom(fd, make([]byte, 1), 0) // blocks its thread
		close(done)
	}()
	var n int
	for range 100 {
		time.Sleep(10 * time.Millisecond)
		if n, err = ThreadsInSocketCalls(); err != nil || n > 0 {
			break
		}
	}
	unix.Sendto(fd, []byte("x"), 0, bound)
	<-done
	if err != nil {
		t.Skipf("cannot read threads' system calls: %v", err)
	}
	if n == 0 {
		t.Fatal("a thread blocked in recvfrom was not seen")
	}
}
