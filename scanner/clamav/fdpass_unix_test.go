//go:build unix

package clamav

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestOpenPlanned: the descriptor passed to clamd is the file planned, or
// no descriptor at all. Each case changes the tree between planning
// (Lstat) and opening.
func TestOpenPlanned(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		change  func(t *testing.T, p string)
		wantErr error // nil: opened
	}{
		{"unchanged", func(*testing.T, string) {}, nil},
		{"replaced by another file of the same size", func(t *testing.T, p string) {
			os.Rename(p, p+".old") // keeps the inode in use: no reuse of its number
			mustWrite(t, p, "planned")
		}, errChanged},
		{"grown", func(t *testing.T, p string) { mustWrite(t, p, "planned and more") }, errChanged},
		{"replaced by a symlink", func(t *testing.T, p string) {
			os.Remove(p)
			if err := os.Symlink("/etc/passwd", p); err != nil {
				t.Fatal(err)
			}
		}, syscall.ELOOP},
		{"replaced by a directory", func(t *testing.T, p string) {
			os.Remove(p)
			os.Mkdir(p, 0o700)
		}, errChanged},
		{"removed", func(t *testing.T, p string) { os.Remove(p) }, os.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := filepath.Join(t.TempDir(), "f")
			mustWrite(t, p, "planned")
			info, err := os.Lstat(p)
			if err != nil {
				t.Fatal(err)
			}
			tt.change(t, p)
			fd, err := openPlanned(p, info)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("openPlanned = %v", err)
				}
				closeFD(fd)
				return
			}
			if !errors.Is(err, tt.wantErr) || fd != -1 {
				t.Fatalf("openPlanned = %d, %v; want %v", fd, err, tt.wantErr)
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
