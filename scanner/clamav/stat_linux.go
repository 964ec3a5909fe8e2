package clamav

import (
	"fmt"
	"os"
	"syscall"
	"time"
)

// statExtra is the part of a file's stat key beyond name, size and mtime:
// device, inode and change time (a file replaced or rewritten within one
// mtime tick still changes these).
func statExtra(st os.FileInfo) string {
	s, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	return fmt.Sprintf("%d %d %d.%d", s.Dev, s.Ino, s.Ctim.Sec, s.Ctim.Nsec)
}

// changeTime is the file's ctime, or its mtime if unknown.
func changeTime(st os.FileInfo) time.Time {
	s, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return st.ModTime()
	}
	return time.Unix(s.Ctim.Sec, s.Ctim.Nsec)
}
