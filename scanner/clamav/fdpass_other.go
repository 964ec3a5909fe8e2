//go:build !unix

package clamav

import "os"

// socketRights: no descriptor passing on this OS.
func socketRights(int) []byte { return nil }

// openPlanned: no descriptor passing on this OS.
func openPlanned(string, os.FileInfo) (int, error) { return -1, ErrNoFDPass }

func closeFD(int) {}
