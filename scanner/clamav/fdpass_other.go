//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package clamav

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"
)

// Descriptor passing is built for Linux, macOS and the BSDs (poll(2) and
// O_NOFOLLOW's errors differ elsewhere); other systems stream.

// socketRights: no descriptor passing on this OS.
func socketRights(int) []byte { return nil }

// openPlanned: no descriptor passing on this OS.
func openPlanned(string, int64) (int, error) { return -1, ErrNoFDPass }

// openFile opens path for reading and checks that it is a regular file of
// the planned size (errNotRegular, errChanged).
func openFile(path string, size int64) (*os.File, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: %w (%s)", path, errNotRegular, fi.Mode().Type())
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() || !os.SameFile(fi, st) {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, errChanged)
	}
	if st.Size() != size {
		f.Close()
		return nil, fmt.Errorf("%s: %w: %d bytes, %d planned", path, errChanged, st.Size(), size)
	}
	return f, nil
}

func closeFD(int) {}

// sessionConn: sessions need descriptor passing, which this OS lacks.
type sessionConn struct{}

var errWouldBlock = errors.New("would block")

const (
	waitRead  = 1
	waitWrite = 4
)

func dialSession(context.Context, string, time.Duration) (*sessionConn, error) {
	return nil, ErrNoFDPass
}
func (*sessionConn) send([]byte, []byte) (int, error)         { return 0, ErrNoFDPass }
func (*sessionConn) read([]byte) (int, error)                 { return 0, ErrNoFDPass }
func (*sessionConn) wait(int16, time.Duration) (int16, error) { return 0, ErrNoFDPass }
func (*sessionConn) close()                                   {}
