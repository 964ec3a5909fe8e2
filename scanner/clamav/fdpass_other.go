//go:build !unix

package clamav

// socketRights: no descriptor passing on this OS.
func socketRights(int) []byte { return nil }
