//go:build linux

package fanin

import (
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// poller is the epoll set shared by a Listener's or PacketConn's members,
// and the registry that maps an event back to its member.
type poller struct {
	ep     *os.File        // the epoll descriptor, on Go's netpoller
	rc     syscall.RawConn // ep's; Read parks until a member is ready
	closed atomic.Bool

	// wakeFD is an eventfd in the epoll set under id 0; Wake bumps
	// wakeGen and writes it, so that readers that started before return.
	wakeFD  int
	wakeGen atomic.Uint64

	mu     sync.Mutex
	byID   map[uint32]*member
	byTag  map[any]*member
	nextID uint32
}

func (p *poller) init() error {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return fmt.Errorf("fan-in: creating epoll instance: %w", os.NewSyscallError("epoll_create1", err))
	}
	// Non-blocking, so os.NewFile hands it to Go's netpoller (an epoll
	// descriptor is readable while any of its members is ready).
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return fmt.Errorf("fan-in: epoll instance: %w", os.NewSyscallError("fcntl", err))
	}
	p.ep = os.NewFile(uintptr(fd), "fanin-epoll")
	rc, err := p.ep.SyscallConn()
	if err != nil {
		p.ep.Close()
		return fmt.Errorf("fan-in: epoll instance: %w", err)
	}
	p.rc = rc
	wfd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		p.ep.Close()
		return fmt.Errorf("fan-in: wake-up eventfd: %w", os.NewSyscallError("eventfd", err))
	}
	if err := p.epollCtl(unix.EPOLL_CTL_ADD, wfd, &unix.EpollEvent{Events: unix.EPOLLIN}); err != nil { // id 0
		unix.Close(wfd)
		p.ep.Close()
		return fmt.Errorf("fan-in: wake-up eventfd: %w", os.NewSyscallError("epoll_ctl", err))
	}
	p.wakeFD = wfd
	p.byID = map[uint32]*member{}
	p.byTag = map[any]*member{}
	return nil
}

// add registers m (fd, tag and the rest filled in) under a fresh id. A
// check, if not nil, runs under the registry lock before anything changes
// (PacketConn uses it for label uniqueness).
func (p *poller) add(m *member, check func() error) error {
	if !comparable(m.tag) {
		return fmt.Errorf("fan-in: adding member %v: tag of type %T cannot be a map key", m.tag, m.tag)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed.Load() {
		return fmt.Errorf("fan-in: adding member %v: %w", m.tag, net.ErrClosed)
	}
	if _, dup := p.byTag[m.tag]; dup {
		return fmt.Errorf("fan-in: adding member %v: tag already in use", m.tag)
	}
	if check != nil {
		if err := check(); err != nil {
			return err
		}
	}
	for {
		p.nextID++
		if _, used := p.byID[p.nextID]; !used && p.nextID != 0 { // 0: wakeFD
			break
		}
	}
	m.id = p.nextID
	ev := unix.EpollEvent{Events: unix.EPOLLIN}
	ev.Fd = int32(m.id) // the data field names the member, not its fd
	if err := p.epollCtl(unix.EPOLL_CTL_ADD, m.fd, &ev); err != nil {
		return fmt.Errorf("fan-in: adding member %v (fd %d) to epoll: %w", m.tag, m.fd, os.NewSyscallError("epoll_ctl", err))
	}
	p.byID[m.id] = m
	p.byTag[m.tag] = m
	return nil
}

// epollCtl calls epoll_ctl on the epoll descriptor, which may be closing.
func (p *poller) epollCtl(op, fd int, ev *unix.EpollEvent) error {
	var err error
	cerr := p.rc.Control(func(epfd uintptr) { err = unix.EpollCtl(int(epfd), op, fd, ev) })
	if cerr != nil {
		return cerr
	}
	return err
}

// remove takes the member out of the epoll set, then closes its socket.
// After it returns, no I/O reaches the member.
func (p *poller) remove(tag any) (*member, error) {
	if !comparable(tag) {
		return nil, fmt.Errorf("fan-in: removing member %v: %w", tag, ErrUnknownMember)
	}
	p.mu.Lock()
	m := p.byTag[tag]
	if m == nil {
		p.mu.Unlock()
		return nil, fmt.Errorf("fan-in: removing member %v: %w", tag, ErrUnknownMember)
	}
	delete(p.byTag, tag)
	delete(p.byID, m.id)
	// Out of the epoll set first: a registration outlives close(2) while
	// any duplicate of the descriptor is open.
	delErr := p.epollCtl(unix.EPOLL_CTL_DEL, m.fd, nil)
	p.mu.Unlock()
	m.close()
	if delErr != nil && !p.closed.Load() {
		return m, fmt.Errorf("fan-in: removing member %v (fd %d) from epoll: %w", tag, m.fd, os.NewSyscallError("epoll_ctl", delErr))
	}
	return m, nil
}

// close marks the member removed and closes its socket once no I/O holds
// it.
func (m *member) close() {
	m.removed.Store(true)
	m.mu.Lock()
	if m.fd >= 0 {
		unix.Close(m.fd)
		m.fd = -1
	}
	m.mu.Unlock()
}

func (p *poller) lookup(id uint32) *member {
	p.mu.Lock()
	m := p.byID[id]
	p.mu.Unlock()
	return m
}

func (p *poller) member(tag any) *member {
	if !comparable(tag) {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.byTag[tag]
}

// comparable reports whether tag can be a map key: using one that cannot
// panics (and must not while p.mu is held).
func comparable(tag any) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	_ = tag == tag
	return true
}

func (p *poller) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.byID)
}

// close closes the epoll descriptor, which wakes a parked reader, then
// every member.
func (p *poller) close() error {
	if p.closed.Swap(true) {
		return net.ErrClosed
	}
	err := p.ep.Close()
	p.mu.Lock()
	unix.Close(p.wakeFD)
	p.wakeFD = -1
	ms := p.byID
	p.byID, p.byTag = map[uint32]*member{}, map[any]*member{}
	p.mu.Unlock()
	for _, m := range ms {
		m.close()
	}
	return err
}

// wait calls the reader's step with the epoll descriptor until step says
// it is done, parking on the netpoller in between. step must return false
// only when epoll_wait found no member ready: the netpoller watches the
// epoll descriptor edge-triggered, so a member left ready would not wake
// it again. woken reports that Wake was called since gen was read (the
// caller's step may have a result too).
func (p *poller) wait(gen uint64, step func(epfd int) bool) (woken bool, err error) {
	err = p.rc.Read(func(fd uintptr) bool {
		if p.wakeGen.Load() != gen {
			return true
		}
		return step(int(fd))
	})
	if err != nil && p.closed.Load() {
		return false, net.ErrClosed
	}
	return p.wakeGen.Load() != gen, err
}

// Wake makes the calls waiting now return ErrWoken, without closing.
func (p *poller) wake() {
	p.wakeGen.Add(1)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.wakeFD >= 0 {
		var one = [8]byte{1}
		unix.Write(p.wakeFD, one[:]) // native endian 1 on little-endian; any nonzero value will do
	}
}

// isWake reports whether id is the wake-up eventfd's, and if so clears
// it (under the epoll read lock, by the one reader).
func (p *poller) isWake(id uint32) bool {
	if id != 0 {
		return false
	}
	var b [8]byte
	p.mu.Lock()
	if p.wakeFD >= 0 {
		unix.Read(p.wakeFD, b[:])
	}
	p.mu.Unlock()
	return true
}

// epollWait returns the members ready now, without blocking.
func (p *poller) epollWait(epfd int, evs []unix.EpollEvent) (int, error) {
	epollWaits.Add(1)
	for {
		n, err := unix.EpollWait(epfd, evs, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, os.NewSyscallError("epoll_wait", err)
		}
		return n, nil
	}
}

// epollWaits counts epoll_wait calls, for tests that check a reader does
// not spin.
var epollWaits atomic.Uint64

// sockInt reads an integer socket option.
func sockInt(fd, level, opt int) (int, error) {
	v, err := unix.GetsockoptInt(fd, level, opt)
	if err != nil {
		return 0, os.NewSyscallError("getsockopt", err)
	}
	return v, nil
}

// dupFile duplicates f's descriptor (close-on-exec), leaving f untouched.
func dupFile(f *os.File) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return -1, err
	}
	nfd := -1
	var derr error
	if err := rc.Control(func(fd uintptr) { nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return -1, err
	}
	if derr != nil {
		return -1, os.NewSyscallError("fcntl", derr)
	}
	return nfd, nil
}
