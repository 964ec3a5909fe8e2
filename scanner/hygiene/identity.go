package hygiene

import (
	"context"

	"github.com/assetscan/assetscan"
)

// CheckVersion is the version of this check's code. Bump it whenever a
// change can make the same image give other findings.
const CheckVersion = "1"

// Identity implements scanner.Identifier; the check uses no engine.
func (Check) Identity(context.Context) (assetscan.Identity, error) {
	return assetscan.Identity{Check: CheckName, Version: CheckVersion}, nil
}
