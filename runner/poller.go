package runner

import (
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// One goroutine waits for every instance. An idle instance is its run
// goroutine alone: the exit of its process (a pidfd) and its output (the
// read end of its pipe) are watched by the poller, one epoll set for the
// whole process, itself waited for in the Go netpoller (an epoll fd is
// pollable). The poller does no work of an instance in its own goroutine:
//
//   - an exit closes the process's zombie channel, and the instance's run
//     goroutine does the rest (stray kill while the leader is a zombie,
//     group SIGKILL, reap: see reap);
//   - output readable starts a goroutine that reads the pipe into a pooled
//     buffer and writes it to output.log, then re-arms the pipe
//     (EPOLLONESHOT: one reader per pipe at a time, so output stays in
//     order), or closes it at EOF. A quiet pipe holds no goroutine and no
//     buffer.
//
// Registrations are named by a token that is never reused, not by their
// fd: an event for a pipe closed meanwhile, whose fd number a new pipe may
// already have, finds no registration and is dropped.
//
// The poller runs while something is registered: the first registration
// makes the epoll set and starts the goroutine, and the goroutine closes
// the set and returns once the last one is gone, so that a process with no
// instance running holds neither.
type poller struct {
	mu      sync.Mutex
	regs    map[uint64]*pollReg
	next    uint64 // the last token given; 0 is the wake eventfd's
	epfd    int    // the epoll set while running
	wake    int    // eventfd: wakes the goroutine when the last registration goes
	running bool
}

// pollReg is one registered fd: a pidfd (exited set) or an output pipe.
type pollReg struct {
	token  uint64
	fd     int
	epfd   int    // the set it is in (it outlives no registration)
	exited func() // a pidfd's: called once, from the poller, must not block
	pipe   *outPipe
}

// poll is the process's poller (as forked is its set of children).
var poll = &poller{regs: map[uint64]*pollReg{}}

const wakeToken = 0

// pipeEvents are an output pipe's: readable or hung up, one event per arm.
const pipeEvents = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT

// add registers reg.fd for events, starting the poller when it is idle.
func (pl *poller) add(reg *pollReg, events uint32) error {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if !pl.running {
		if err := pl.start(); err != nil {
			return err
		}
	}
	pl.next++
	reg.token, reg.epfd = pl.next, pl.epfd
	if err := unix.EpollCtl(pl.epfd, unix.EPOLL_CTL_ADD, reg.fd, epollEvent(events, reg.token)); err != nil {
		pl.wakeIfIdle()
		return err
	}
	pl.regs[reg.token] = reg
	return nil
}

// remove unregisters reg and closes its fd.
func (pl *poller) remove(reg *pollReg) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if pl.regs[reg.token] != reg {
		return
	}
	delete(pl.regs, reg.token)
	_ = unix.EpollCtl(reg.epfd, unix.EPOLL_CTL_DEL, reg.fd, nil)
	unix.Close(reg.fd)
	pl.wakeIfIdle()
}

func (pl *poller) wakeIfIdle() {
	if len(pl.regs) == 0 && pl.running {
		var one = [8]byte{1}
		_, _ = unix.Write(pl.wake, one[:])
	}
}

// start makes the epoll set and starts the goroutine; pl.mu is held.
func (pl *poller) start() error {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return err
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return err
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wake, epollEvent(unix.EPOLLIN, wakeToken)); err != nil {
		unix.Close(wake)
		unix.Close(epfd)
		return err
	}
	// Non-blocking, so that os.NewFile puts it in the netpoller: the
	// goroutine then waits without holding a thread.
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(wake)
		unix.Close(epfd)
		return err
	}
	pl.epfd, pl.wake, pl.running = epfd, wake, true
	go pl.loop(os.NewFile(uintptr(epfd), "epoll"), wake)
	return nil
}

func epollEvent(events uint32, token uint64) *unix.EpollEvent {
	return &unix.EpollEvent{Events: events, Fd: int32(uint32(token)), Pad: int32(uint32(token >> 32))}
}

func eventToken(ev *unix.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}

// loop waits for events and dispatches them until nothing is registered.
func (pl *poller) loop(set *os.File, wake int) {
	events := make([]unix.EpollEvent, 128)
	rc, err := set.SyscallConn()
	for {
		n := 0
		if err == nil {
			err = rc.Read(func(fd uintptr) bool {
				var werr error
				n, werr = unix.EpollWait(int(fd), events, 0)
				return werr == nil && n > 0
			})
		}
		if err != nil {
			// Not in the netpoller: wait holding a thread.
			var werr error
			if n, werr = unix.EpollWait(int(set.Fd()), events, -1); werr != nil {
				n = 0
			}
		}
		pl.mu.Lock()
		ready := pl.dispatch(events[:n], wake)
		idle := len(pl.regs) == 0
		if idle {
			pl.running = false
			set.Close()
			unix.Close(wake)
		}
		pl.mu.Unlock()
		for _, f := range ready {
			f()
		}
		if idle {
			return
		}
	}
}

// dispatch handles events (pl.mu held): an output pipe's starts its
// drain, an exit's unregisters the pidfd and is returned, to be called
// once pl.mu is released. An event whose registration is gone is dropped.
func (pl *poller) dispatch(events []unix.EpollEvent, wake int) (exited []func()) {
	for i := range events {
		token := eventToken(&events[i])
		if token == wakeToken {
			var b [8]byte
			_, _ = unix.Read(wake, b[:])
			continue
		}
		reg := pl.regs[token]
		switch {
		case reg == nil: // closed meanwhile
		case reg.exited != nil:
			delete(pl.regs, token)
			_ = unix.EpollCtl(reg.epfd, unix.EPOLL_CTL_DEL, reg.fd, nil)
			unix.Close(reg.fd)
			exited = append(exited, reg.exited)
		default:
			go reg.pipe.drain()
		}
	}
	return exited
}

// watchExit calls exited once process pid has exited (it is a zombie
// then: nothing reaps it but the runner), and returns the registration.
// Without pidfds (Linux < 5.3) or when it cannot be registered, a
// goroutine waits for it instead, and the registration is nil.
//
// pidfd is the process's pidfd, which the poller owns from then on and
// closes; with -1 it opens one.
func watchExit(pid, pidfd int, exited func()) *pollReg {
	fd, err := pidfd, error(nil)
	if fd < 0 {
		fd, err = unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	}
	if err == nil {
		reg := &pollReg{fd: fd, exited: exited}
		if poll.add(reg, unix.EPOLLIN) == nil {
			return reg
		}
		unix.Close(fd)
	}
	go func() {
		var info unix.Siginfo
		for unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil) == unix.EINTR {
		}
		exited()
	}()
	return nil
}

// outPipe is an instance process's output pipe, read by the poller into
// its rotatingFile.
type outPipe struct {
	reg  pollReg
	out  *rotatingFile
	bufs *sync.Pool
	done func() // called once, when the pipe is closed

	mu     sync.Mutex
	closed bool
	grace  *time.Timer
}

// drainReads bounds the reads of one wake-up (32 KiB each): a pipe that
// stays full is re-armed and waits its turn behind the others.
const drainReads = 8

// newOutPipe makes a pipe whose read end the poller copies to out, and
// returns it with its write end, for the child. done is called once the
// read end is closed: at EOF, by closeAfter or by close.
func newOutPipe(out *rotatingFile, bufs *sync.Pool, done func()) (*outPipe, *os.File, error) {
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC); err != nil {
		return nil, nil, err
	}
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		unix.Close(fds[1])
		return nil, nil, err
	}
	p := &outPipe{out: out, bufs: bufs, done: done}
	p.reg = pollReg{fd: fds[0], pipe: p}
	if err := poll.add(&p.reg, pipeEvents); err != nil {
		unix.Close(fds[0])
		unix.Close(fds[1])
		return nil, nil, err
	}
	return p, os.NewFile(uintptr(fds[1]), "|1"), nil
}

// drain copies what the pipe holds to the log, then re-arms it, or closes
// it at EOF.
func (p *outPipe) drain() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	bp, _ := p.bufs.Get().(*[]byte)
	if bp == nil {
		b := make([]byte, 32<<10)
		bp = &b
	}
	defer p.bufs.Put(bp)
	for range drainReads {
		n, err := unix.Read(p.reg.fd, *bp)
		if err == unix.EAGAIN {
			break
		}
		if err == unix.EINTR {
			continue
		}
		if err != nil || n <= 0 { // EOF: every writer is gone
			p.closeLocked()
			return
		}
		_, _ = p.out.Write((*bp)[:n])
	}
	if unix.EpollCtl(p.reg.epfd, unix.EPOLL_CTL_MOD, p.reg.fd, epollEvent(pipeEvents, p.reg.token)) != nil {
		p.closeLocked()
	}
}

// closeAfter closes the pipe in d unless EOF comes first: after the
// process is reaped, writers left in other groups get that long.
func (p *outPipe) closeAfter(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed && p.grace == nil {
		p.grace = time.AfterFunc(d, p.close)
	}
}

// close closes the read end now; what is left unread is lost.
func (p *outPipe) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closeLocked()
}

func (p *outPipe) closeLocked() {
	if p.closed {
		return
	}
	p.closed = true
	if p.grace != nil {
		p.grace.Stop()
	}
	poll.remove(&p.reg)
	p.done()
}

// pidfdWorks reports whether the kernel has pidfds (Linux 5.3), without
// which a fork must not ask for one (SysProcAttr.PidFD): it would fail.
var pidfdWorks = sync.OnceValue(func() bool {
	fd, err := unix.PidfdOpen(os.Getpid(), 0)
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
})
