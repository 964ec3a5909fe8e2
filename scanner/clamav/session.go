package clamav

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
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
// Send and Close must be called from one goroutine; replies are delivered
// to the callback from the session's reader goroutine. Every request gets
// exactly one callback: with its reply, or with the error that ended the
// session (clamd killed, time-out, cancellation, a reply this client does
// not understand). Nothing is ever reported clean without clamd's exact
// OK for that request.
type Session struct {
	c      *Client
	conn   *net.UnixConn
	stop   func() bool
	ctx    context.Context
	window chan struct{}
	onDone func(tag int, r Reply, err error)

	wdl time.Time // when the write deadline was last set (sender goroutine)

	mu      sync.Mutex
	next    int         // id of the next request (clamd counts from 1)
	pending map[int]int // request id -> caller's tag
	ended   bool        // END sent
	err     error       // the error that ended the session
	done    chan struct{}
}

// OpenSession opens an IDSESSION with at most window requests in flight.
// onDone receives each request's outcome (tag as given to SendFile).
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
	s := &Session{c: c, conn: uc, stop: stop, ctx: ctx, window: make(chan struct{}, window),
		onDone: onDone, next: 1, pending: map[int]int{}, done: make(chan struct{})}
	if err := s.write([]byte("zIDSESSION\x00"), nil); err != nil {
		s.abort(err)
		return nil, fmt.Errorf("clamd IDSESSION: %w", err)
	}
	go s.readLoop()
	return s, nil
}

// SendFile passes f's descriptor to clamd for a scan, waiting for a free
// slot in the window first. f may be closed as soon as SendFile returns.
// An error means the session is over; requests already sent get their
// callbacks with the session's error.
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

// SendFD is SendFile for a raw descriptor, which the caller keeps open
// until SendFD returns.
func (s *Session) SendFD(tag int, fd int) error {
	select {
	case s.window <- struct{}{}:
	case <-s.done:
		return s.Err()
	case <-s.ctx.Done():
		return ctxError(s.ctx)
	}
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		<-s.window
		return s.err
	}
	id := s.next
	s.next++
	s.pending[id] = tag
	s.mu.Unlock()
	var err error
	rights := socketRights(fd)
	if rights == nil {
		err = ErrNoFDPass
	}
	if err == nil {
		// clamd wants the descriptor after the command, with one byte of
		// data (as clamdscan sends it); on the command itself it replies
		// "ancillary data sent without FILDES".
		err = s.write([]byte("zFILDES\x00"), nil)
	}
	if err == nil {
		err = s.write([]byte{0}, rights)
	}
	if err != nil {
		s.abort(err)
		return s.Err()
	}
	return nil
}

// Close sends END, waits for every outstanding reply and closes the
// connection. It returns the error that ended the session early, if any.
func (s *Session) Close() error {
	s.mu.Lock()
	s.ended = true
	failed := s.err != nil
	s.mu.Unlock()
	if !failed {
		if err := s.write([]byte("zEND\x00"), nil); err != nil {
			s.abort(err)
		}
	}
	<-s.done
	s.conn.Close()
	s.stop()
	return s.Err()
}

// Err returns the error that ended the session, or nil.
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

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

// abort ends the session with err (the first error wins), closes the
// connection so the reader stops, and fails every pending request.
func (s *Session) abort(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = fmt.Errorf("clamd IDSESSION: %w", err)
	}
	pending := s.pending
	s.pending = map[int]int{}
	serr := s.err
	s.mu.Unlock()
	s.conn.SetDeadline(time.Unix(1, 0))
	for _, tag := range pending {
		s.onDone(tag, Reply{}, serr)
	}
}

func (s *Session) readLoop() {
	defer close(s.done)
	br := bufio.NewReaderSize(s.conn, 4096)
	var rdl time.Time
	for {
		if err := refreshDeadline(s.ctx, &rdl, s.conn.SetReadDeadline, s.c.cfg.ReadTimeout); err != nil {
			s.abort(err)
			return
		}
		raw, err := readNUL(br)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && s.ctx.Err() == nil {
				s.mu.Lock()
				idle := len(s.pending) == 0 && !s.ended && s.err == nil
				s.mu.Unlock()
				if idle {
					continue // nothing asked yet: not clamd's delay
				}
			}
			s.mu.Lock()
			clean := err == io.EOF && s.ended && len(s.pending) == 0 && s.err == nil
			s.mu.Unlock()
			if clean {
				return
			}
			if err == io.EOF {
				err = fmt.Errorf("%w: connection closed with requests outstanding", ErrNoReply)
			} else if !errors.Is(err, ErrProtocol) && !errors.Is(err, ErrNoReply) {
				err = s.c.ioError(s.ctx, "read", err)
			}
			s.abort(err)
			return
		}
		idStr, rest, ok := strings.Cut(raw, ": ")
		id, perr := strconv.Atoi(idStr)
		if !ok || perr != nil || id < 1 {
			// clamd ends a session it considers broken with an unnumbered
			// reply ("UNKNOWN COMMAND", "Error processing command. ERROR").
			s.abort(fmt.Errorf("%w: %q", ErrProtocol, raw))
			return
		}
		s.mu.Lock()
		tag, known := s.pending[id]
		delete(s.pending, id)
		s.mu.Unlock()
		if !known {
			s.abort(fmt.Errorf("%w: reply to request %d that is not outstanding: %q", ErrProtocol, id, raw))
			return
		}
		reply, err := parseFDReply(rest)
		if err != nil {
			err = fmt.Errorf("clamd FILDES: %w", err)
		}
		<-s.window
		s.onDone(tag, reply, err)
	}
}

// readNUL reads one NUL-terminated reply of at most maxReplyBytes.
func readNUL(br *bufio.Reader) (string, error) {
	var acc []byte
	for {
		b, err := br.ReadSlice(0)
		switch {
		case err == nil:
			if acc == nil {
				return string(b[:len(b)-1]), nil
			}
			acc = append(acc, b[:len(b)-1]...)
			return string(acc), nil
		case errors.Is(err, bufio.ErrBufferFull):
			acc = append(acc, b...)
			if len(acc) > maxReplyBytes {
				return "", fmt.Errorf("%w: reply longer than %d bytes without terminator", ErrProtocol, maxReplyBytes)
			}
		default:
			if err == io.EOF && len(acc)+len(b) > 0 {
				return "", fmt.Errorf("%w: connection closed after partial reply %q", ErrNoReply, append(acc, b...))
			}
			return "", err
		}
	}
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
