package accounts

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Complexity is the rule book's "OS password complexity" rule.
type Complexity struct {
	// MinLength is the least number of characters (Unicode code points)
	// a password must have. Default 8.
	MinLength int
	// MinClasses is the least number of character classes a password must
	// use, out of: ASCII lower-case letters, ASCII upper-case letters,
	// ASCII digits, and the rule book's special characters. Default 2.
	MinClasses int
	// ForbidAccountName rejects a password equal to the account name,
	// compared case-insensitively. Default true.
	ForbidAccountName bool
}

// DefaultComplexity returns the rule book's values: at least 8 characters,
// at least 2 of the 4 classes, and not the account name.
func DefaultComplexity() Complexity {
	return Complexity{MinLength: 8, MinClasses: 2, ForbidAccountName: true}
}

// specialChars are the rule book's special characters, space included. The
// list is applied literally: other ASCII punctuation (the backtick `) and
// every non-ASCII character belong to no class.
const specialChars = "~!@#$%^&*()-_=+\\|[{}];:'\",<.>/? "

// CheckComplexity applies the rule book's password complexity rule to
// password, set for account: at least c.MinLength characters (counted as
// Unicode code points; invalid UTF-8 bytes count one each), at least
// c.MinClasses of the classes {a-z, A-Z, 0-9, special characters
// ~!@#$%^&*()-_=+\|[{}];:'",<.>/? and space}, and, if c.ForbidAccountName,
// not equal to the account name ignoring case. Letters outside ASCII (é, ß,
// Cyrillic, ...) count towards the length but belong to no class, since the
// rule book names ASCII classes.
//
// It returns ok, or a reason listing every rule broken. The reason never
// contains the password.
func CheckComplexity(account, password string, c Complexity) (ok bool, reason string) {
	var reasons []string
	if n := utf8.RuneCountInString(password); n < c.MinLength {
		reasons = append(reasons, fmt.Sprintf("shorter than %d characters", c.MinLength))
	}
	var lower, upper, digit, special bool
	for i := 0; i < len(password); i++ {
		b := password[i]
		switch {
		case b >= 'a' && b <= 'z':
			lower = true
		case b >= 'A' && b <= 'Z':
			upper = true
		case b >= '0' && b <= '9':
			digit = true
		case strings.IndexByte(specialChars, b) >= 0:
			special = true
		}
	}
	classes := 0
	for _, has := range []bool{lower, upper, digit, special} {
		if has {
			classes++
		}
	}
	if classes < c.MinClasses {
		reasons = append(reasons, fmt.Sprintf("uses %d of the 4 character classes (lower-case, upper-case, digits, special characters), fewer than %d", classes, c.MinClasses))
	}
	if c.ForbidAccountName && account != "" && strings.EqualFold(password, account) {
		reasons = append(reasons, "equal to the account name")
	}
	if len(reasons) == 0 {
		return true, ""
	}
	return false, strings.Join(reasons, "; ")
}
