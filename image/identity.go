package image

import (
	"context"

	"github.com/assetscan/assetscan"
)

// Version is the version of this package's reading code. Bump it whenever
// a change can make the same image read to other files or findings (a new
// partition table, file system or layout): findings made under another
// version are never reused.
const Version = "2"

// Identity implements scanner.Identifier for the preparer: what read the
// image is recorded in the verdict and the reuse key (as the archive check).
func (Preparer) Identity(context.Context) (assetscan.Identity, error) {
	return assetscan.Identity{Check: assetscan.CheckArchive, Version: "image " + Version}, nil
}
