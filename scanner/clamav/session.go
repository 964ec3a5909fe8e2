package clamav

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrNoFDPass: file descriptors cannot be passed (not a unix socket, or an
// OS without SCM_RIGHTS).
var ErrNoFDPass = errors.New("clamd: file descriptor passing needs a unix socket")

// Session is one clamd IDSESSION connection over a unix socket on which
// files are sent as file descriptors (FILDES with SCM_RIGHTS, as
// `clamdscan --fdpass` does), pipelined: up to window requests are in
// flight, clamd scans them in parallel on its threads and answers each as
// it finishes ("<id>: fd[N]: OK"). clamd reads the file itself; no byte is
// copied through the socket, and clamd needs no permission on the path.
//
// A Session is used from one goroutine, as clamdscan uses its one thread:
// SendFD first takes the replies that have arrived (without waiting) and
// waits for one only when the window is full; Close waits for the rest.
// There is no reader goroutine to hand replies over: on a machine whose
// cores clamd's threads keep busy, those wake-ups were CPU taken from
// clamd.
//
// Replies are delivered to the callback from SendFD and Close. Every
// request gets exactly one callback: with its reply, or with the error
// that ended the session (clamd killed, time-out, cancellation, a reply
// this client does not understand). Nothing is ever reported clean
// without clamd's exact OK for that request.
type Session struct {
	c      *Client
	conn   *net.UnixConn
	raw    syscall.RawConn
	stop   func() bool
	ctx    context.Context
	window int
	onDone func(tag int, r Reply, err error)

	next    int         // id of the next request (clamd counts from 1)
	pending map[int]int // request id -> caller's tag
	err     error       // the error that ended the session
	closed  bool

	buf      []byte    // read buffer
	partial  []byte    // the start of a reply not terminated yet
	wdl, rdl time.Time // when the write and read deadlines were last set
}

// OpenSession opens an IDSESSION with at most window requests in flight.
// onDone receives each request's outcome (tag as given to SendFD).
func (c *Client) OpenSession(ctx context.Context, window int, onDone func(tag int, r Reply, err error)) (*Session, error) {
	if c.network != "unix" {
		return nil, ErrNoFDPass
	}
	if window < 1 {
		window = 1
	}
	conn, stop, err := c.dial(ctx)
	if err != nil {
		return nil, fmt.Errorf("clamd IDSESSION: %w", err)
	}
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		conn.Close()
		stop()
		return nil, ErrNoFDPass
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		conn.Close()
		stop()
		return nil, fmt.Errorf("clamd IDSESSION: %w", err)
	}
	s := &Session{c: c, conn: uc, raw: raw, stop: stop, ctx: ctx, window: window,
		onDone: onDone, next: 1, pending: map[int]int{}, buf: make([]byte, 16<<10)}
	if err := s.write([]byte("zIDSESSION\x00"), nil); err != nil {
		s.abort(err)
		s.Close()
		return nil, s.err
	}
	return s, nil
}

// SendFile passes f's descriptor to clamd for a scan (see SendFD). f may
// be closed as soon as SendFile returns.
func (s *Session) SendFile(tag int, f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return fmt.Errorf("pass %s: %w", f.Name(), err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = s.SendFD(tag, int(fd)) }); err != nil {
		return fmt.Errorf("pass %s: %w", f.Name(), err)
	}
	return serr
}

// SendFD passes fd to clamd for a scan, first taking the replies that
// have arrived and, when window requests are in flight, waiting for one.
// The caller may close fd once SendFD returns. An error means the session
// is over; every request sent has had its callback or gets it at Close.
func (s *Session) SendFD(tag int, fd int) error {
	if err := s.receive(false); err != nil {
		return err
	}
	for len(s.pending) >= s.window {
		if err := s.receive(true); err != nil {
			return err
		}
	}
	rights := socketRights(fd)
	if rights == nil {
		s.abort(ErrNoFDPass)
		return s.err
	}
	id := s.next
	s.next++
	s.pending[id] = tag
	// clamd wants the descriptor after the command, with one byte of data
	// (as clamdscan sends it); on the command itself it replies "ancillary
	// data sent without FILDES".
	err := s.write([]byte("zFILDES\x00"), nil)
	if err == nil {
		err = s.write([]byte{0}, rights)
	}
	if err != nil {
		s.abort(err)
		return s.err
	}
	return nil
}

// Close sends END, waits for every outstanding reply and closes the
// connection. It returns the error that ended the session early, if any.
func (s *Session) Close() error {
	if s.closed {
		return s.err
	}
	if s.err == nil {
		if err := s.write([]byte("zEND\x00"), nil); err != nil {
			s.abort(err)
		}
	}
	for s.err == nil && len(s.pending) > 0 {
		s.receive(true)
	}
	s.closed = true
	s.conn.Close()
	s.stop()
	return s.err
}

// Err returns the error that ended the session, or nil.
func (s *Session) Err() error { return s.err }

func (s *Session) write(b, oob []byte) error {
	if err := refreshDeadline(s.ctx, &s.wdl, s.conn.SetWriteDeadline, s.c.cfg.WriteTimeout); err != nil {
		return err
	}
	n, m, err := s.conn.WriteMsgUnix(b, oob, nil)
	if err != nil {
		return s.c.ioError(s.ctx, "write", err)
	}
	if n != len(b) || m != len(oob) {
		return fmt.Errorf("%w: short write to clamd (%d of %d bytes, %d of %d control bytes)", ErrNoReply, n, len(b), m, len(oob))
	}
	return nil
}

// abort ends the session with err (the first error wins), makes pending
// I/O return, and fails every pending request.
func (s *Session) abort(err error) {
	if s.err == nil {
		s.err = fmt.Errorf("clamd IDSESSION: %w", err)
	}
	s.conn.SetDeadline(time.Unix(1, 0))
	pending := s.pending
	s.pending = map[int]int{}
	for _, tag := range pending {
		s.onDone(tag, Reply{}, s.err)
	}
}

// receive reads what clamd has sent and delivers every complete reply.
// With wait, it waits (up to the read time-out) until replies have freed
// a slot of the window; without, it takes only what is there already. It
// returns the session's error once the session is over.
func (s *Session) receive(wait bool) error {
	if s.err != nil || (!wait && len(s.pending) == 0) {
		return s.err
	}
	for s.err == nil {
		if wait {
			if err := refreshDeadline(s.ctx, &s.rdl, s.conn.SetReadDeadline, s.c.cfg.ReadTimeout); err != nil {
				s.abort(err)
				break
			}
		}
		n, err := readConn(s.raw, s.buf, wait)
		switch {
		case err != nil:
			s.abort(s.c.ioError(s.ctx, "read", err))
			continue
		case n < 0:
			return nil // nothing there now
		case n == 0:
			if len(s.partial) > 0 {
				s.abort(fmt.Errorf("%w: connection closed after partial reply %q", ErrNoReply, s.partial))
			} else {
				s.abort(fmt.Errorf("%w: connection closed with requests outstanding", ErrNoReply))
			}
			continue
		}
		data := s.buf[:n]
		for s.err == nil {
			i := bytes.IndexByte(data, 0)
			if i < 0 {
				break
			}
			reply := string(data[:i])
			if len(s.partial) > 0 {
				reply = string(s.partial) + reply
				s.partial = s.partial[:0]
			}
			data = data[i+1:]
			s.deliver(reply)
		}
		if s.err != nil {
			break
		}
		s.partial = append(s.partial, data...)
		if len(s.partial) > maxReplyBytes {
			s.abort(fmt.Errorf("%w: reply longer than %d bytes without terminator", ErrProtocol, maxReplyBytes))
			break
		}
		if len(s.pending) == 0 || (wait && len(s.pending) < s.window) {
			return nil
		}
	}
	return s.err
}

// deliver hands one reply to its request's callback, or ends the session
// on a reply this client cannot place.
func (s *Session) deliver(raw string) {
	idStr, rest, ok := strings.Cut(raw, ": ")
	id, perr := strconv.Atoi(idStr)
	if !ok || perr != nil || id < 1 {
		// clamd ends a session it considers broken with an unnumbered
		// reply ("UNKNOWN COMMAND", "Error processing command. ERROR").
		s.abort(fmt.Errorf("%w: %q", ErrProtocol, raw))
		return
	}
	tag, known := s.pending[id]
	if !known {
		s.abort(fmt.Errorf("%w: reply to request %d that is not outstanding: %q", ErrProtocol, id, raw))
		return
	}
	delete(s.pending, id)
	reply, err := parseFDReply(rest)
	if err != nil {
		err = fmt.Errorf("clamd FILDES: %w", err)
	}
	s.onDone(tag, reply, err)
}

// parseFDReply parses the reply to FILDES: "fd[N]: OK", "fd[N]: <name>
// FOUND"; anything else (an ERROR reply, an unknown text) is an error.
func parseFDReply(raw string) (Reply, error) {
	name, rest, ok := strings.Cut(raw, ": ")
	if ok && strings.HasPrefix(name, "fd[") && strings.HasSuffix(name, "]") {
		if _, err := strconv.Atoi(name[3 : len(name)-1]); err == nil {
			r, err := ParseReply("stream: " + rest)
			r.Raw = raw
			return r, err
		}
	}
	if strings.HasSuffix(raw, " ERROR") {
		return Reply{Raw: raw}, fmt.Errorf("%w: %q", ErrEngine, raw)
	}
	return Reply{Raw: raw}, fmt.Errorf("%w: %q", ErrProtocol, raw)
}

// refreshDeadline is setDeadline for a connection that does many short
// operations: it sets the deadline again only once timeout/16 has passed
// since *last, so each wait is bounded by between 15/16 of timeout and
// timeout. Resetting a deadline costs a timer update per call, a
// noticeable share of the client's CPU when clamd answers 10 000 tiny
// files a second. Cancellation does not depend on it: the connection's
// context.AfterFunc sets a past deadline, and a refresh re-checks ctx.
func refreshDeadline(ctx context.Context, last *time.Time, set func(time.Time) error, timeout time.Duration) error {
	now := time.Now()
	if !last.IsZero() && now.Sub(*last) < timeout/16 {
		return nil
	}
	if err := setDeadline(ctx, set, timeout); err != nil {
		return err
	}
	*last = now
	return nil
}
