//go:build unix

package clamav

import (
	"fmt"
	"os"
	"syscall"
)

// socketRights is the SCM_RIGHTS control message carrying fd.
func socketRights(fd int) []byte { return syscall.UnixRights(fd) }

// openPlanned opens path for clamd to read (O_NOFOLLOW: a symlink swapped
// in after planning is refused) and checks that it is the regular file
// planned (same device, inode and size). It returns a raw descriptor the
// caller closes with closeFD: an *os.File would cost two more system calls
// and a finalizer per file (it tries to register regular files with the
// poller), which is a tenth of the per-file cost on trees of tiny files.
func openPlanned(path string, planned os.FileInfo) (int, error) {
	var fd int
	var err error
	for {
		fd, err = syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC|syscall.O_NOFOLLOW|syscall.O_NOCTTY, 0)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: path, Err: err}
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		syscall.Close(fd)
		return -1, &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	want, ok := planned.Sys().(*syscall.Stat_t)
	if !ok || st.Mode&syscall.S_IFMT != syscall.S_IFREG || uint64(st.Dev) != uint64(want.Dev) ||
		uint64(st.Ino) != uint64(want.Ino) || st.Size != planned.Size() {
		syscall.Close(fd)
		return -1, fmt.Errorf("%s: %w", path, errChanged)
	}
	return fd, nil
}

func closeFD(fd int) { syscall.Close(fd) }

// readConn reads once from a connection into buf: n > 0 bytes, 0 at the
// end of the stream, or -1 when nothing is there and wait is false. With
// wait the poller waits for data, and the connection's deadlines apply.
func readConn(raw syscall.RawConn, buf []byte, wait bool) (int, error) {
	var n int
	var rerr error
	err := raw.Read(func(fd uintptr) bool {
		for {
			n, rerr = syscall.Read(int(fd), buf)
			if rerr != syscall.EINTR {
				break
			}
		}
		if rerr == syscall.EAGAIN {
			if wait {
				return false
			}
			n, rerr = -1, nil
		}
		return true
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		return 0, err
	}
	return n, nil
}
