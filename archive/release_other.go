//go:build !linux

package archive

import (
	"errors"
	"os"
)

// punchHole: not supported here; Extract then releases nothing.
func punchHole(*os.File, int64, int64) error {
	return errors.New("punching holes is supported on Linux only")
}
