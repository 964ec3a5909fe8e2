//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package clamav

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestOpenPlanned: the descriptor passed to clamd (or read for
// streaming) is a regular file of the size the extraction wrote, or there
// is no descriptor at all. Each case changes the file after it was
// written, before it is opened; none may block.
func TestOpenPlanned(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		change  func(t *testing.T, p string)
		wantErr error // nil: opened
	}{
		{"unchanged", func(*testing.T, string) {}, nil},
		{"grown", func(t *testing.T, p string) { mustWrite(t, p, "planned and more") }, errChanged},
		{"truncated", func(t *testing.T, p string) { mustWrite(t, p, "") }, errChanged},
		{"replaced by a symlink", func(t *testing.T, p string) {
			os.Remove(p)
			if err := os.Symlink("/etc/passwd", p); err != nil {
				t.Fatal(err)
			}
		}, errNotRegular},
		{"replaced by a directory", func(t *testing.T, p string) {
			os.Remove(p)
			os.Mkdir(p, 0o700)
		}, errNotRegular},
		{"replaced by a FIFO", func(t *testing.T, p string) {
			os.Remove(p)
			if err := syscall.Mkfifo(p, 0o600); err != nil {
				t.Fatal(err)
			}
		}, errNotRegular},
		{"removed", func(t *testing.T, p string) { os.Remove(p) }, os.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := filepath.Join(t.TempDir(), "f")
			mustWrite(t, p, "planned")
			tt.change(t, p)
			fd, err := openPlanned(p, int64(len("planned")))
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("openPlanned = %v", err)
				}
				closeFD(fd)
			} else if !errors.Is(err, tt.wantErr) || fd != -1 {
				t.Fatalf("openPlanned = %d, %v; want %v", fd, err, tt.wantErr)
			}
			f, err := openFile(p, int64(len("planned")))
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("openFile = %v", err)
				}
				f.Close()
			} else if !errors.Is(err, tt.wantErr) || f != nil {
				t.Fatalf("openFile = %v, %v; want %v", f, err, tt.wantErr)
			}
		})
	}
}

func mustWrite(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}
