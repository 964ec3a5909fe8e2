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
// A Session is used from one goroutine, as clamdscan uses its one thread,
// and waits for clamd in poll(2) (see sessionConn): SendFD reads when the
// window is full, taking every reply that has arrived and waiting for one
// if none has, and while a write waits for room; Close waits for the
// rest. There is no reader goroutine to hand replies over, and no read per
// request that would mostly find nothing: on a machine whose cores clamd's
// threads keep busy, the client's CPU is taken from clamd.
//
// Replies are delivered to the callback from SendFD and Close. Every
// request gets exactly one callback: with its reply, or with the error
// that ended the session (clamd killed, time-out, cancellation, a reply
// this client does not understand). Nothing is ever reported clean
// without clamd's exact OK for that request.
type Session struct {
	c      *Client
	conn   *sessionConn
	ctx    context.Context
	window int
	onDone func(tag int, r Reply, err error)

	next    int         // id of the next request (clamd counts from 1)
	pending map[int]int // request id -> caller's tag
	err     error       // the error that ended the session
	closed  bool

	fildes  []byte // the fildes command, sent as is
	buf     []byte // read buffer
	partial []byte // the start of a reply not terminated yet
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
	conn, err := dialSession(ctx, c.address, c.cfg.DialTimeout)
	if err != nil {
		return nil, fmt.Errorf("clamd IDSESSION: %w", err)
	}
	s := &Session{c: c, conn: conn, ctx: ctx, window: window,
		onDone: onDone, next: 1, pending: map[int]int{}, fildes: []byte(fildes), buf: make([]byte, 16<<10)}
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

// SendFD passes fd to clamd for a scan; when window requests are in
// flight it first takes the replies that have arrived, waiting for one if
// none has. The caller may close fd once SendFD returns. An error means
// the session is over; every request sent has had its callback or gets it
// at Close.
func (s *Session) SendFD(tag int, fd int) error {
	if s.closed {
		return fmt.Errorf("clamd IDSESSION: %w", net.ErrClosed)
	}
	if s.err != nil {
		return s.err
	}
	for len(s.pending) >= s.window {
		if err := s.receive(true); err != nil {
			return err
		}
	}
	// With a window deeper than drainAbove, take what has arrived every
	// drainEvery requests: clamd drops a reply it cannot send within its
	// SendBufTimeout (500 ms by default), and a socket buffer holds about
	// 200 unread replies.
	if len(s.pending) > drainAbove && s.next%drainEvery == 0 {
		if err := s.receive(false); err != nil {
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
	// clamd takes the descriptor with one byte of data after the command.
	// clamdscan sends that byte and the descriptor in a second message;
	// clamd reads both messages at once whenever both have arrived, and
	// then "eats the extra \0 for the control message". One message with
	// all nine bytes is that case, for one system call instead of two.
	// (The descriptor must not ride the command alone, "zFILDES\0":
	// clamd then waits for the extra byte, finds the descriptor already
	// taken and replies "ancillary data sent without FILDES".)
	if err := s.write(s.fildes, rights); err != nil {
		s.abort(err)
		return s.err
	}
	return nil
}

// Unread replies: see SendFD.
const (
	drainAbove = 64
	drainEvery = 16
)

// fildes is FILDES and the byte that carries the descriptor.
const fildes = "zFILDES\x00\x00"

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
	s.conn.close()
	return s.err
}

// Err returns the error that ended the session, or nil.
func (s *Session) Err() error { return s.err }

func (s *Session) write(b, oob []byte) error {
	for len(b) > 0 {
		n, err := s.conn.send(b, oob)
		if err == nil {
			if oob != nil && n < len(b) {
				// The descriptor went with part of the message: clamd
				// would take it without its command.
				return fmt.Errorf("%w: %d of %d bytes sent with the descriptor", ErrNoReply, n, len(b))
			}
			b = b[n:]
			oob = nil // went with the first byte
			continue
		}
		if err != errWouldBlock {
			return s.c.ioError(s.ctx, "write", err)
		}
		// No room: clamd is not reading, its queue is full. Take its
		// replies meanwhile, so that neither side waits for the other.
		ev, err := s.conn.wait(waitWrite|waitRead, s.c.cfg.WriteTimeout)
		if err != nil {
			return s.c.ioError(s.ctx, "write", err)
		}
		if ev&waitRead != 0 {
			if err := s.receive(false); err != nil {
				return err
			}
		}
	}
	return nil
}

// abort ends the session with err (the first error wins) and fails every
// pending request. A session aborted by its context's cancellation says so.
func (s *Session) abort(err error) {
	if s.err == nil {
		if s.ctx.Err() != nil { // the connection was shut down for it
			err = ctxError(s.ctx)
		}
		s.err = fmt.Errorf("clamd IDSESSION: %w", err)
	}
	pending := s.pending
	s.pending = map[int]int{}
	for _, tag := range pending {
		s.onDone(tag, Reply{}, s.err)
	}
}

// receive reads what clamd has sent and delivers every complete reply.
// With wait, it waits (up to the read time-out) until replies have freed
// a slot of the window; without, it takes only what is there already,
// reading at least once (so the end of the stream, or a reply nothing is
// pending for, ends the session). It returns the session's error once the
// session is over.
func (s *Session) receive(wait bool) error {
	if s.err != nil {
		return s.err
	}
	for s.err == nil {
		n, err := s.conn.read(s.buf)
		switch {
		case err == errWouldBlock:
			if !wait {
				return nil // nothing there now
			}
			if _, err := s.conn.wait(waitRead, s.c.cfg.ReadTimeout); err != nil {
				s.abort(s.c.ioError(s.ctx, "read", err))
			}
			continue
		case err != nil:
			s.abort(s.c.ioError(s.ctx, "read", err))
			continue
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
