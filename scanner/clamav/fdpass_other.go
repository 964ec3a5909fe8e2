//go:build !unix

package clamav

import (
	"os"
	"syscall"
)

// socketRights: no descriptor passing on this OS.
func socketRights(int) []byte { return nil }

// openPlanned: no descriptor passing on this OS.
func openPlanned(string, os.FileInfo) (int, error) { return -1, ErrNoFDPass }

func closeFD(int) {}

// readConn: sessions need descriptor passing, which this OS lacks.
func readConn(syscall.RawConn, []byte, bool) (int, error) { return 0, ErrNoFDPass }
