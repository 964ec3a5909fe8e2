package accounts

import (
	"regexp"
	"strings"
)

// AuthorizedKeyOption is one option of an authorized_keys line
// (no-pty, command="...", from="..."): Name lower-cased, Value unquoted
// ("" for a flag).
type AuthorizedKeyOption struct {
	Name, Value string
}

// maxKeyOptions bounds the options parsed on one line.
const maxKeyOptions = 64

// ParseAuthorizedKeyLine splits one authorized_keys line as sshd does: a
// line that does not start with a key type ("ssh-", "ecdsa-", "sk-", or
// SSH-1 bits) starts with options, comma separated, values in double quotes
// with \" escapes. ok is false for a blank or comment line. The key itself
// is not parsed.
func ParseAuthorizedKeyLine(line string) (opts []AuthorizedKeyOption, ok bool) {
	l := strings.TrimSpace(line)
	if l == "" || l[0] == '#' {
		return nil, false
	}
	if keyTypeStart(l) {
		return nil, true
	}
	var name, val strings.Builder
	inName, inQuote := true, false
	flush := func() {
		if name.Len() > 0 && len(opts) < maxKeyOptions {
			opts = append(opts, AuthorizedKeyOption{Name: strings.ToLower(name.String()), Value: val.String()})
		}
		name.Reset()
		val.Reset()
		inName = true
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		switch {
		case inQuote && c == '\\' && i+1 < len(l) && l[i+1] == '"':
			i++
			val.WriteByte('"')
		case c == '"':
			inQuote = !inQuote
		case inQuote:
			val.WriteByte(c)
		case c == ' ' || c == '\t':
			flush()
			return opts, true
		case c == ',':
			flush()
		case inName && c == '=':
			inName = false
		case inName:
			name.WriteByte(c)
		default:
			val.WriteByte(c)
		}
	}
	flush()
	return opts, true
}

// keyTypeStart reports whether an authorized_keys line starts with a key
// (no options).
func keyTypeStart(l string) bool {
	for _, p := range []string{"ssh-", "ecdsa-", "sk-", "rsa-sha2-", "x509v3-"} {
		if strings.HasPrefix(l, p) {
			return true
		}
	}
	return l[0] >= '0' && l[0] <= '9' // SSH-1: bits exponent modulus
}

// ForcedCommand returns the value of the command= option, if any.
func ForcedCommand(opts []AuthorizedKeyOption) (string, bool) {
	for _, o := range opts {
		if o.Name == "command" {
			return o.Value, true
		}
	}
	return "", false
}

// cloudInitDisableRE is the shape of cloud-init's disable_root forced
// command: echo 'Please login as the user "ubuntu" rather than the user
// "root".';echo;sleep 10;exit 142 (any users, any sleep and exit status).
var cloudInitDisableRE = regexp.MustCompile(`^\s*echo\s+'Please login as the user "[^"']*" rather than the user "[^"']*"\.?'\s*;\s*echo\s*;\s*sleep\s+\d+\s*;\s*exit\s+\d+\s*;?\s*$`)

// IsCloudInitDisabledKey reports whether a key's options carry cloud-init's
// disable_root forced command, which only prints "Please login as the user
// ... rather than the user root" and exits: the key cannot open a shell.
func IsCloudInitDisabledKey(opts []AuthorizedKeyOption) bool {
	cmd, ok := ForcedCommand(opts)
	return ok && cloudInitDisableRE.MatchString(cmd)
}
