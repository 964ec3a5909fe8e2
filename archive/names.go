package archive

import (
	"fmt"
	"path"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Name limits: Linux's PATH_MAX and NAME_MAX.
const (
	maxNameLen      = 4096
	maxComponentLen = 255
	// maxDisplayLen bounds a path shown in a finding.
	maxDisplayLen = 1024
)

// nameProblem says why an entry name cannot be extracted.
type nameProblem struct {
	rule string
	msg  string
}

// cleanName turns an entry name into a clean, relative, "/"-separated path
// inside the archive root. Backslashes count as separators. It returns "."
// for a name that is the root itself ("", "./", "a/..").
func cleanName(raw string) (string, *nameProblem) {
	if strings.IndexByte(raw, 0) >= 0 {
		return "", &nameProblem{RuleTraversal, "the entry name contains a NUL byte, which can truncate the name; rename the file"}
	}
	if len(raw) > maxNameLen {
		return "", &nameProblem{RuleBadName, fmt.Sprintf("the entry name is %d bytes long, more than the %d allowed; shorten the path", len(raw), maxNameLen)}
	}
	s := strings.ReplaceAll(raw, `\`, "/")
	if strings.HasPrefix(s, "/") {
		return "", &nameProblem{RuleTraversal, "the entry has an absolute path; archives must hold paths relative to the package root"}
	}
	if len(s) >= 2 && s[1] == ':' && ('a' <= s[0]|0x20 && s[0]|0x20 <= 'z') {
		return "", &nameProblem{RuleTraversal, "the entry has a Windows drive path; archives must hold paths relative to the package root"}
	}
	for c := range strings.SplitSeq(s, "/") {
		if len(c) > maxComponentLen {
			return "", &nameProblem{RuleBadName, fmt.Sprintf("a path component of the entry name is %d bytes long, more than the %d allowed; shorten it", len(c), maxComponentLen)}
		}
	}
	c := path.Clean(s)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", &nameProblem{RuleTraversal, `the entry name uses ".." to point outside the package root (path traversal); remove it`}
	}
	return c, nil
}

// linkEscapes reports whether a link named name (a clean path) with the
// given target points outside the archive root. Symlink targets are relative
// to the link's directory, hardlink targets to the archive root.
func linkEscapes(name, target string, hard bool) bool {
	t := strings.ReplaceAll(target, `\`, "/")
	if strings.IndexByte(t, 0) >= 0 || strings.HasPrefix(t, "/") ||
		(len(t) >= 2 && t[1] == ':' && ('a' <= t[0]|0x20 && t[0]|0x20 <= 'z')) {
		return true
	}
	base := path.Dir(name)
	if hard {
		base = "."
	}
	j := path.Join(base, t)
	return j == ".." || strings.HasPrefix(j, "../")
}

// join joins a level's directory (relative to the destination) and a clean
// member path.
func join(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

// DisplayPath makes a path from an archive safe to show: control and format
// characters (including bidi overrides) and invalid UTF-8 are escaped as
// \xNN or \uNNNN, and paths longer than 1024 bytes are cut short with "…".
// File.Path values are real names and may need it before being shown.
func DisplayPath(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); {
		if b.Len() >= maxDisplayLen {
			b.WriteString("…")
			break
		}
		r, w := utf8.DecodeRuneInString(p[i:])
		switch {
		case r == utf8.RuneError && w == 1:
			fmt.Fprintf(&b, `\x%02x`, p[i])
		case r < utf8.RuneSelf && (r < 0x20 || r == 0x7f):
			fmt.Fprintf(&b, `\x%02x`, r)
		case unicode.IsControl(r) || unicode.Is(unicode.Cf, r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
		i += w
	}
	return b.String()
}
