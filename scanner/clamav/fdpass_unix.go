//go:build unix

package clamav

import "syscall"

// socketRights is the SCM_RIGHTS control message carrying fd.
func socketRights(fd int) []byte { return syscall.UnixRights(fd) }
