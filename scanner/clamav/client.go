// Package clamav is the malware check: a small clamd client of our own
// (INSTREAM over a unix or TCP socket; FILDES descriptor passing pipelined
// in an IDSESSION connection over a unix socket), the scanner.Check that
// sends every extracted file to clamd and records what clamd runs (its
// Identity: VERSION plus the digest of the signature directory), a canary
// that proves the engine still detects something, the signatures the
// project ships for tests and the zero-setup mode, and a helper that runs
// a private clamd.
//
// Everything here fails closed: only the exact reply "stream: OK" to a
// stream that was sent completely counts as clean. A missing, truncated or
// unknown reply, a time-out, a size-limit reply or an engine error is an
// error, never a pass.
package clamav

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/assetscan/assetscan/scanner"
)

// Errors returned by the client. Those that wrap scanner.ErrTransient may go
// away on retry (the queue retries them); the others are final.
var (
	// ErrUnavailable: clamd could not be reached (dial failed).
	ErrUnavailable = fmt.Errorf("clamd unavailable: %w", scanner.ErrTransient)
	// ErrTimeout: clamd did not answer in time (dial, write or read).
	ErrTimeout = fmt.Errorf("clamd timed out: %w", scanner.ErrTransient)
	// ErrNoReply: the connection ended without a complete reply (clamd
	// killed or restarted mid-scan, connection reset).
	ErrNoReply = fmt.Errorf("clamd gave no reply: %w", scanner.ErrTransient)
	// ErrEngine: clamd answered "... ERROR" (other than the size limit),
	// e.g. it could not create a temporary file or allocate memory.
	ErrEngine = fmt.Errorf("clamd engine error: %w", scanner.ErrTransient)
	// ErrSizeLimit: clamd refused the stream because it is longer than its
	// StreamMaxLength ("INSTREAM size limit exceeded. ERROR"). Retrying the
	// same stream cannot help: the client's window is larger than the
	// daemon's limit, a configuration error.
	ErrSizeLimit = errors.New("clamd: INSTREAM size limit exceeded (the check's MaxStreamBytes is larger than clamd's StreamMaxLength)")
	// ErrProtocol: clamd (or whatever listens at the address) answered
	// something this client does not understand.
	ErrProtocol = errors.New("clamd: unexpected reply")
)

// Defaults for Config.
const (
	DefaultDialTimeout    = 5 * time.Second
	DefaultWriteTimeout   = 60 * time.Second
	DefaultReadTimeout    = 330 * time.Second // clamd MaxScanTime (300 s) + margin
	DefaultCommandTimeout = 10 * time.Second
	DefaultChunkSize      = 1 << 20 // 1 MiB
	// MaxChunkSize bounds ChunkSize; clamd rejects a chunk longer than its
	// StreamMaxLength anyway.
	MaxChunkSize = 64 << 20
	// maxReplyBytes bounds how much of a reply is read.
	maxReplyBytes = 64 << 10
)

// Config configures a Client. The zero value of every field but Addr means
// its default.
type Config struct {
	// Addr is where clamd listens: "unix:/abs/path/clamd.sock" or
	// "tcp:host:port" (e.g. "tcp:127.0.0.1:3310"). This is the syntax of the
	// --clamd flag.
	Addr string
	// DialTimeout bounds connecting. Default 5 s.
	DialTimeout time.Duration
	// WriteTimeout bounds each chunk write of a stream, and in an
	// IDSESSION each wait for room to send a request. Default 60 s.
	WriteTimeout time.Duration
	// ReadTimeout bounds the wait for the reply once a stream has been sent,
	// and in an IDSESSION each wait for the next reply when the window is
	// full: it must exceed clamd's MaxScanTime. Default 330 s.
	ReadTimeout time.Duration
	// CommandTimeout bounds PING and VERSION. Default 10 s.
	CommandTimeout time.Duration
	// ChunkSize is the INSTREAM chunk length. Default 1 MiB, at most 64 MiB.
	ChunkSize int
}

// ParseAddr splits an address of the form "unix:/path" or "tcp:host:port"
// into a network and address for net.Dial.
func ParseAddr(addr string) (network, address string, err error) {
	const want = `want "unix:/path/to/clamd.sock" or "tcp:host:port"`
	scheme, rest, ok := strings.Cut(addr, ":")
	if !ok {
		return "", "", fmt.Errorf("clamd address %q: missing scheme; %s", addr, want)
	}
	switch scheme {
	case "unix":
		if rest == "" {
			return "", "", fmt.Errorf("clamd address %q: empty socket path; %s", addr, want)
		}
		if !filepath.IsAbs(rest) {
			return "", "", fmt.Errorf("clamd address %q: socket path must be absolute; %s", addr, want)
		}
		return "unix", rest, nil
	case "tcp":
		host, port, err := net.SplitHostPort(rest)
		if err != nil {
			return "", "", fmt.Errorf("clamd address %q: %v; %s", addr, err, want)
		}
		if host == "" {
			return "", "", fmt.Errorf("clamd address %q: empty host; %s", addr, want)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return "", "", fmt.Errorf("clamd address %q: bad port %q; %s", addr, port, want)
		}
		return "tcp", rest, nil
	default:
		return "", "", fmt.Errorf("clamd address %q: unknown scheme %q; %s", addr, scheme, want)
	}
}

// Validate reports whether c is usable.
func (c Config) Validate() error {
	if _, _, err := ParseAddr(c.Addr); err != nil {
		return err
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"DialTimeout", c.DialTimeout}, {"WriteTimeout", c.WriteTimeout}, {"ReadTimeout", c.ReadTimeout}, {"CommandTimeout", c.CommandTimeout}} {
		if d.v < 0 {
			return fmt.Errorf("clamd config: %s must not be negative", d.name)
		}
	}
	if c.ChunkSize < 0 || c.ChunkSize > MaxChunkSize {
		return fmt.Errorf("clamd config: ChunkSize %d out of range (0 for the default %d, at most %d)", c.ChunkSize, DefaultChunkSize, MaxChunkSize)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	if c.CommandTimeout == 0 {
		c.CommandTimeout = DefaultCommandTimeout
	}
	if c.ChunkSize == 0 {
		c.ChunkSize = DefaultChunkSize
	}
	return c
}

// Client talks to one clamd. It opens one connection per call (per
// Session for OpenSession) and is safe for concurrent use.
type Client struct {
	cfg     Config
	network string
	address string
	bufs    sync.Pool // *[]byte of 4+ChunkSize
}

// NewClient validates cfg and returns a client. It does not connect.
func NewClient(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	network, address, _ := ParseAddr(cfg.Addr)
	c := &Client{cfg: cfg, network: network, address: address}
	c.bufs.New = func() any {
		b := make([]byte, 4+cfg.ChunkSize)
		return &b
	}
	return c, nil
}

// Addr returns the address the client was configured with.
func (c *Client) Addr() string { return c.cfg.Addr }

// Config returns the client's configuration with defaults applied.
func (c *Client) Config() Config { return c.cfg }

// Status is the outcome of one INSTREAM scan. The zero value is
// StatusError, so a Reply nobody filled in is never clean.
type Status int

// Reply statuses.
const (
	StatusError Status = iota
	StatusOK
	StatusFound
)

func (s Status) String() string {
	switch s {
	case StatusOK:
		return "OK"
	case StatusFound:
		return "FOUND"
	default:
		return "ERROR"
	}
}

// Reply is clamd's answer to a scan.
type Reply struct {
	Status Status
	// Signature is the detection name when Status is StatusFound, as clamd
	// reports it (custom signatures carry an ".UNOFFICIAL" suffix).
	Signature string
	// Raw is the reply text without its NUL terminator.
	Raw string
}

// extendedInfo is the "(md5:size)" suffix clamd adds to a signature name
// when ExtendedDetectionInfo is on.
var extendedInfo = regexp.MustCompile(`\([0-9a-fA-F]{32,64}:[0-9]+\)$`)

// ParseReply parses the reply to an INSTREAM scan. It returns an error for
// anything but "stream: OK" and "stream: <name> FOUND".
func ParseReply(raw string) (Reply, error) {
	r := Reply{Status: StatusError, Raw: raw}
	switch {
	case raw == "stream: OK":
		r.Status = StatusOK
		return r, nil
	case raw == "INSTREAM size limit exceeded. ERROR":
		return r, fmt.Errorf("%w: %q", ErrSizeLimit, raw)
	case strings.HasSuffix(raw, " ERROR"):
		return r, fmt.Errorf("%w: %q", ErrEngine, raw)
	case strings.HasPrefix(raw, "stream: ") && strings.HasSuffix(raw, " FOUND"):
		sig := strings.TrimSuffix(strings.TrimPrefix(raw, "stream: "), " FOUND")
		sig = strings.TrimSpace(extendedInfo.ReplaceAllString(sig, ""))
		if sig == "" || strings.ContainsAny(sig, " \t\r\n\x00") {
			return r, fmt.Errorf("%w: %q", ErrProtocol, raw)
		}
		r.Status = StatusFound
		r.Signature = sig
		return r, nil
	}
	return r, fmt.Errorf("%w: %q", ErrProtocol, raw)
}

// Ping sends PING and requires PONG.
func (c *Client) Ping(ctx context.Context) error {
	reply, err := c.command(ctx, "PING")
	if err != nil {
		return fmt.Errorf("clamd PING: %w", err)
	}
	if reply != "PONG" {
		return fmt.Errorf("clamd PING: %w: %q", ErrProtocol, reply)
	}
	return nil
}

// Version returns clamd's VERSION reply, e.g. "ClamAV 1.4.6" (custom
// signatures only) or "ClamAV 1.4.6/27530/Mon Jan 12 09:30:24 2026" (with
// the official database: engine/daily version/daily date).
func (c *Client) Version(ctx context.Context) (string, error) {
	reply, err := c.command(ctx, "VERSION")
	if err != nil {
		return "", fmt.Errorf("clamd VERSION: %w", err)
	}
	if !strings.HasPrefix(reply, "ClamAV ") {
		return "", fmt.Errorf("clamd VERSION: %w: %q", ErrProtocol, reply)
	}
	return reply, nil
}

func (c *Client) command(ctx context.Context, cmd string) (string, error) {
	conn, stop, err := c.dial(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	defer stop()
	if err := setDeadline(ctx, conn.SetDeadline, c.cfg.CommandTimeout); err != nil {
		return "", err
	}
	if _, err := conn.Write([]byte("z" + cmd + "\x00")); err != nil {
		return "", c.ioError(ctx, "write", err)
	}
	return c.readReply(ctx, conn)
}

// Scan streams r to clamd with INSTREAM and returns the parsed reply. The
// error is nil only for StatusOK and StatusFound; every other outcome
// (transport failure, time-out, missing or unknown reply, ERROR reply) is
// an error, and Reply.Raw holds the reply text if there was one.
func (c *Client) Scan(ctx context.Context, r io.Reader) (Reply, error) {
	conn, stop, err := c.dial(ctx)
	if err != nil {
		return Reply{}, fmt.Errorf("clamd INSTREAM: %w", err)
	}
	defer conn.Close()
	defer stop()

	if err := c.send(ctx, conn, r); err != nil {
		var we *writeError
		if !errors.As(err, &we) {
			return Reply{}, fmt.Errorf("clamd INSTREAM: %w", err)
		}
		// clamd may close the socket while we still write (it does after
		// "INSTREAM size limit exceeded"): read its reply if there is one.
		// The stream was not sent completely, so no reply can make it clean.
		if err := setDeadline(ctx, conn.SetReadDeadline, min(c.cfg.ReadTimeout, 5*time.Second)); err != nil {
			return Reply{}, fmt.Errorf("clamd INSTREAM: %w", err)
		}
		raw, rerr := c.readReply(ctx, conn)
		if rerr != nil {
			return Reply{}, fmt.Errorf("clamd INSTREAM: %w", we.err)
		}
		reply, perr := ParseReply(raw)
		if perr != nil {
			return reply, fmt.Errorf("clamd INSTREAM: %w", perr)
		}
		reply.Status = StatusError
		return reply, fmt.Errorf("clamd INSTREAM: %w: clamd replied %q before the stream was sent completely", ErrProtocol, raw)
	}

	if err := setDeadline(ctx, conn.SetReadDeadline, c.cfg.ReadTimeout); err != nil {
		return Reply{}, fmt.Errorf("clamd INSTREAM: %w", err)
	}
	raw, err := c.readReply(ctx, conn)
	if err != nil {
		return Reply{}, fmt.Errorf("clamd INSTREAM: %w", err)
	}
	reply, err := ParseReply(raw)
	if err != nil {
		return reply, fmt.Errorf("clamd INSTREAM: %w", err)
	}
	return reply, nil
}

// writeError marks a failed write to clamd, after which its reply may
// still be readable.
type writeError struct{ err error }

func (e *writeError) Error() string { return e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }

func (c *Client) send(ctx context.Context, conn net.Conn, r io.Reader) error {
	if err := setDeadline(ctx, conn.SetWriteDeadline, c.cfg.WriteTimeout); err != nil {
		return err
	}
	if _, err := conn.Write([]byte("zINSTREAM\x00")); err != nil {
		return c.writeError(ctx, err)
	}
	bp := c.bufs.Get().(*[]byte)
	defer c.bufs.Put(bp)
	buf := *bp
	for {
		n, rerr := io.ReadFull(r, buf[4:])
		if rerr != nil && rerr != io.EOF && rerr != io.ErrUnexpectedEOF {
			return fmt.Errorf("read input: %w", rerr)
		}
		if n > 0 {
			binary.BigEndian.PutUint32(buf[:4], uint32(n))
			if err := setDeadline(ctx, conn.SetWriteDeadline, c.cfg.WriteTimeout); err != nil {
				return err
			}
			if _, err := conn.Write(buf[:4+n]); err != nil {
				return c.writeError(ctx, err)
			}
		}
		if rerr != nil { // EOF: the input is complete
			break
		}
	}
	var end [4]byte // zero-length chunk terminates the stream
	if _, err := conn.Write(end[:]); err != nil {
		return c.writeError(ctx, err)
	}
	return nil
}

// writeError classifies a failed write: after a time-out or cancellation
// there is nothing to wait for; otherwise clamd closed the connection and
// its reply may be waiting.
func (c *Client) writeError(ctx context.Context, err error) error {
	e := c.ioError(ctx, "write", err)
	if ctx.Err() != nil || errors.Is(e, ErrTimeout) {
		return e
	}
	return &writeError{e}
}

// readReply reads one NUL-terminated reply. A reply without its NUL (the
// connection ended early) is no reply.
func (c *Client) readReply(ctx context.Context, conn net.Conn) (string, error) {
	var buf bytes.Buffer
	chunk := make([]byte, 512)
	for {
		n, err := conn.Read(chunk)
		buf.Write(chunk[:n])
		if i := bytes.IndexByte(buf.Bytes(), 0); i >= 0 {
			return string(buf.Bytes()[:i]), nil
		}
		if buf.Len() > maxReplyBytes {
			return "", fmt.Errorf("%w: reply longer than %d bytes without terminator", ErrProtocol, maxReplyBytes)
		}
		if err != nil {
			if err == io.EOF {
				if buf.Len() == 0 {
					return "", fmt.Errorf("%w: connection closed", ErrNoReply)
				}
				return "", fmt.Errorf("%w: connection closed after partial reply %q", ErrNoReply, buf.String())
			}
			return "", c.ioError(ctx, "read", err)
		}
	}
}

func (c *Client) dial(ctx context.Context) (net.Conn, func() bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, ctxError(ctx)
	}
	d := net.Dialer{Timeout: c.cfg.DialTimeout}
	conn, err := d.DialContext(ctx, c.network, c.address)
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, ctxError(ctx)
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil, nil, fmt.Errorf("%w: dial %s: %w", ErrTimeout, c.cfg.Addr, err)
		}
		return nil, nil, fmt.Errorf("%w: dial %s: %w", ErrUnavailable, c.cfg.Addr, err)
	}
	// Cancelling ctx unblocks any pending read or write at once.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	return conn, stop, nil
}

// setDeadline sets a deadline timeout from now (or ctx's deadline, if
// earlier). It re-checks ctx afterwards, so a cancellation racing with the
// call is never lost.
func setDeadline(ctx context.Context, set func(time.Time) error, timeout time.Duration) error {
	d := time.Now().Add(timeout)
	if cd, ok := ctx.Deadline(); ok && cd.Before(d) {
		d = cd
	}
	if err := set(d); err != nil {
		return fmt.Errorf("%w: set deadline: %w", ErrNoReply, err)
	}
	if ctx.Err() != nil {
		return ctxError(ctx)
	}
	return nil
}

func (c *Client) ioError(ctx context.Context, op string, err error) error {
	if ctx.Err() != nil {
		return ctxError(ctx)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
			// The I/O deadline was ctx's, which expired a moment ago.
			return fmt.Errorf("%w: %s %s: %w", ErrTimeout, op, c.cfg.Addr, context.DeadlineExceeded)
		}
		return fmt.Errorf("%w: %s %s: %w", ErrTimeout, op, c.cfg.Addr, err)
	}
	return fmt.Errorf("%w: %s %s: %w", ErrNoReply, op, c.cfg.Addr, err)
}

// ctxError reports why ctx ended. A passed deadline is a time-out (and so
// transient); a cancellation is not.
func ctxError(ctx context.Context) error {
	err := context.Cause(ctx)
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", ErrTimeout, err)
	}
	return err
}
