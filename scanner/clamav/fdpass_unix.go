//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package clamav

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// socketRights is the SCM_RIGHTS control message carrying fd.
func socketRights(fd int) []byte { return syscall.UnixRights(fd) }

// openPlanned opens path for clamd to read and checks that it is a
// regular file of the planned size: errNotRegular for anything else (a
// symlink is refused by O_NOFOLLOW; O_NONBLOCK keeps a FIFO from blocking
// the open, and means nothing to a regular file), errChanged for another
// size. It returns a raw descriptor the caller closes with
// closeFD: an *os.File would cost two more system calls and a finalizer
// per file (it tries to register regular files with the poller), which is
// a tenth of the per-file cost on trees of tiny files.
func openPlanned(path string, size int64) (int, error) {
	var fd int
	var err error
	for {
		fd, err = syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC|syscall.O_NOFOLLOW|syscall.O_NOCTTY|syscall.O_NONBLOCK, 0)
		if err != syscall.EINTR {
			break
		}
	}
	if err == syscall.ELOOP || err == syscall.EMLINK { // O_NOFOLLOW met a symlink (EMLINK: FreeBSD)
		return -1, fmt.Errorf("%s: %w (a symbolic link)", path, errNotRegular)
	}
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: path, Err: err}
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		syscall.Close(fd)
		return -1, &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	switch {
	case st.Mode&syscall.S_IFMT != syscall.S_IFREG:
		syscall.Close(fd)
		return -1, fmt.Errorf("%s: %w (mode %#o)", path, errNotRegular, st.Mode&syscall.S_IFMT)
	case st.Size != size:
		syscall.Close(fd)
		return -1, fmt.Errorf("%s: %w: %d bytes, %d planned", path, errChanged, st.Size, size)
	}
	return fd, nil
}

// openFile is openPlanned for reading here (the streaming path).
func openFile(path string, size int64) (*os.File, error) {
	fd, err := openPlanned(path, size)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), path), nil
}

func closeFD(fd int) { syscall.Close(fd) }

// sessionConn is a session's unix stream socket to clamd, kept out of Go's
// network poller: the session's goroutine waits for clamd in poll(2), as
// clamdscan waits in select(2). Through the poller each wait parked the
// goroutine and woke it through the scheduler (epoll, futex, idle threads
// spinning for work): on trees of tiny files that was a third of the
// client's CPU, taken from clamd on a machine its threads keep busy.
//
// The socket is non-blocking; reads and writes that would block return
// errWouldBlock and the caller waits with wait. Cancelling the dial's
// context shuts the socket down, which ends any wait at once. After close
// every call returns net.ErrClosed: the descriptor number may already be
// someone else's.
type sessionConn struct {
	fd   int
	stop func() bool // stops the cancellation hook

	mu     sync.Mutex // orders the cancellation hook against close
	closed bool
	pfd    [1]unix.PollFd
}

// errWouldBlock: the socket has no data to read, or no room to write.
var errWouldBlock = errors.New("would block")

// dialSession connects to the unix socket at path. Connecting is bounded
// by timeout and by ctx's deadline (it waits only while clamd's listen
// backlog is full), not by ctx's cancellation, which is seen before and
// after it and ends every later wait.
func dialSession(ctx context.Context, path string, timeout time.Duration) (*sessionConn, error) {
	if err := ctx.Err(); err != nil {
		return nil, ctxError(ctx)
	}
	syscall.ForkLock.RLock() // no fork between socket and close-on-exec
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err == nil {
		syscall.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	// A blocking connect, bounded by SO_SNDTIMEO: a unix socket connects
	// at once unless the listen backlog is full.
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, max(time.Until(dl), time.Millisecond))
	}
	tv := syscall.NsecToTimeval(timeout.Nanoseconds())
	err = syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_SNDTIMEO, &tv)
	if err == nil {
		for {
			err = syscall.Connect(fd, &syscall.SockaddrUnix{Name: path})
			if err != syscall.EINTR {
				break
			}
		}
	}
	if err == nil {
		err = syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_SNDTIMEO, &syscall.Timeval{})
	}
	if err == nil {
		err = syscall.SetNonblock(fd, true)
	}
	if err != nil {
		syscall.Close(fd)
		if ctx.Err() != nil {
			return nil, ctxError(ctx)
		}
		if err == syscall.EAGAIN || err == syscall.EINPROGRESS || err == syscall.ETIMEDOUT {
			return nil, fmt.Errorf("%w: dial unix:%s: %w", ErrTimeout, path, err)
		}
		return nil, fmt.Errorf("%w: dial unix:%s: %w", ErrUnavailable, path, err)
	}
	c := &sessionConn{fd: fd}
	c.stop = context.AfterFunc(ctx, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if !c.closed {
			syscall.Shutdown(c.fd, syscall.SHUT_RDWR)
		}
	})
	return c, nil
}

// send writes b, with the control message oob on its first byte; it
// returns how many bytes of b went out, or errWouldBlock if none could.
func (c *sessionConn) send(b, oob []byte) (int, error) {
	return c.nonblocking(func(fd int) (int, error) { return syscall.SendmsgN(fd, b, oob, nil, 0) })
}

// read reads what is there into buf: n > 0 bytes, 0 at the end of the
// stream, or errWouldBlock.
func (c *sessionConn) read(buf []byte) (int, error) {
	return c.nonblocking(func(fd int) (int, error) { return syscall.Read(fd, buf) })
}

// nonblocking runs op, one system call on the socket, again after EINTR;
// EAGAIN is errWouldBlock.
func (c *sessionConn) nonblocking(op func(fd int) (int, error)) (int, error) {
	if c.fd < 0 {
		return 0, net.ErrClosed
	}
	for {
		n, err := op(c.fd)
		switch err {
		case nil:
			return n, nil
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return 0, errWouldBlock
		}
		return 0, err
	}
}

// Events for wait.
const (
	waitRead  = unix.POLLIN
	waitWrite = unix.POLLOUT
)

// wait waits up to timeout until the socket is ready for one of events
// (waitRead, waitWrite), closed or in error, and returns what is ready
// (POLLHUP and POLLERR included: the next read or write says what
// happened). At the time-out it returns os.ErrDeadlineExceeded.
func (c *sessionConn) wait(events int16, timeout time.Duration) (int16, error) {
	if c.fd < 0 {
		return 0, net.ErrClosed
	}
	deadline := time.Now().Add(timeout)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return 0, fmt.Errorf("waited %v: %w", timeout, os.ErrDeadlineExceeded)
		}
		left = min(left, time.Hour) // poll takes a C int of milliseconds
		c.pfd[0] = unix.PollFd{Fd: int32(c.fd), Events: events}
		n, err := unix.Poll(c.pfd[:], int((left+time.Millisecond-1)/time.Millisecond))
		switch {
		case err == syscall.EINTR || (err == nil && n == 0):
			continue
		case err != nil:
			return 0, err
		}
		return c.pfd[0].Revents, nil
	}
}

// close closes the socket; the cancellation hook no longer touches it.
func (c *sessionConn) close() {
	c.stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.closed = true
		syscall.Close(c.fd)
		c.fd = -1
	}
}
