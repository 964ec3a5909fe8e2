package accounts

import (
	"context"

	"github.com/assetscan/assetscan"
)

// CheckVersion is the version of this check's code. Bump it whenever a
// change can make the same image give other findings (a new rule, a new
// file read): findings made under another version are never reused.
const CheckVersion = "3"

// Identity implements scanner.Identifier; the check uses no engine or
// data outside its code (the weak-password list is embedded).
func (Check) Identity(context.Context) (assetscan.Identity, error) {
	return assetscan.Identity{Check: assetscan.CheckAccount, Version: CheckVersion}, nil
}
