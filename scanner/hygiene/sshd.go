package hygiene

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
)

// SSHDConfigPath is where sshd reads its configuration (fs.FS path).
const SSHDConfigPath = "etc/ssh/sshd_config"

// Bounds of ReadSSHDConfig.
const (
	maxSSHDFiles    = 64      // configuration files read (Include expanded)
	maxSSHDDepth    = 16      // Include nesting (OpenSSH: READCONF_MAX_DEPTH)
	maxSSHDSettings = 100000  // keyword lines kept
	maxSSHDArgs     = 256     // arguments kept per line
	maxSSHDFileSize = 1 << 20 // one configuration file
	maxSSHDIncludes = 1024    // Include patterns expanded
)

// ErrNoSSHDConfig means the image has no etc/ssh/sshd_config: sshd is not
// installed or cannot start.
var ErrNoSSHDConfig = errors.New("no sshd_config")

// SSHDSetting is one keyword line of the sshd configuration.
type SSHDSetting struct {
	// Keyword, lower-cased ("passwordauthentication").
	Keyword string
	// Args are the arguments, quotes removed.
	Args []string
	// File is the fs.FS path of the file holding the line, Line its
	// 1-based line number.
	File string
	Line int
	// Match is the criteria of the enclosing Match block ("User admin"),
	// "" outside any Match block.
	Match string
}

// Value returns the first argument, or "".
func (s SSHDSetting) Value() string {
	if len(s.Args) == 0 {
		return ""
	}
	return s.Args[0]
}

// Where is "file:line" (with " (Match criteria)" inside a Match block).
func (s SSHDSetting) Where() string {
	w := fmt.Sprintf("%s:%d", s.File, s.Line)
	if s.Match != "" {
		w += fmt.Sprintf(" (inside \"Match %s\")", clip(s.Match, 80))
	}
	return w
}

// SSHDConfig is the sshd configuration of an image, read the way sshd reads
// it: etc/ssh/sshd_config with every Include expanded in place (relative
// paths are relative to /etc/ssh; glob matches in lexical order; an Include
// inside a Match block includes into that block; a Match block in an
// included file ends with that file), keywords case-insensitive, '#'
// comments, "keyword value" or "keyword=value", quoted arguments.
type SSHDConfig struct {
	// Files are the files read, in order.
	Files []string
	// Settings are the keyword lines in the order sshd reads them
	// (Match and Include lines excluded).
	Settings []SSHDSetting
	// Problems are things that keep the configuration from being read in
	// full (an Include nested too deep, a file too large), one line each.
	Problems []string
}

// Global returns the setting sshd uses for keyword (lower-case) outside any
// Match block: the first one read (first value wins). ok is false when the
// configuration does not set it, so the compiled-in default applies.
func (c *SSHDConfig) Global(keyword string) (SSHDSetting, bool) {
	for _, s := range c.Settings {
		if s.Match == "" && s.Keyword == keyword {
			return s, true
		}
	}
	return SSHDSetting{}, false
}

// InMatch returns the settings of keyword made inside Match blocks, the
// first one of each block (sshd applies, per connection, the first value
// from the blocks that match).
func (c *SSHDConfig) InMatch(keyword string) []SSHDSetting {
	var out []SSHDSetting
	seen := map[string]bool{}
	for _, s := range c.Settings {
		if s.Match == "" || s.Keyword != keyword {
			continue
		}
		block := s.File + "\x00" + s.Match
		if !seen[block] {
			seen[block] = true
			out = append(out, s)
		}
	}
	return out
}

// ReadSSHDConfig reads the sshd configuration of the image fsys. It returns
// ErrNoSSHDConfig when etc/ssh/sshd_config is absent. Files are read up to
// 1 MiB each, at most 64 files, Includes 16 deep; what could not be read is
// listed in Problems. It never follows a link out of fsys.
func ReadSSHDConfig(ctx context.Context, fsys fs.FS) (*SSHDConfig, error) {
	if _, fi, err := stat(fsys, SSHDConfigPath); err != nil || !fi.Mode().IsRegular() {
		if err != nil && !absent(err) {
			return nil, fmt.Errorf("sshd config: %w", err)
		}
		return nil, ErrNoSSHDConfig
	}
	r := &sshdReader{ctx: ctx, fsys: fsys, c: &SSHDConfig{}}
	r.file(SSHDConfigPath, "", 0)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return r.c, nil
}

type sshdReader struct {
	ctx      context.Context
	fsys     fs.FS
	c        *SSHDConfig
	includes int // Include patterns expanded so far
}

func (r *sshdReader) problem(format string, a ...any) {
	if len(r.c.Problems) < 32 {
		r.c.Problems = append(r.c.Problems, fmt.Sprintf(format, a...))
	}
}

// file reads one configuration file in the Match context match.
func (r *sshdReader) file(name, match string, depth int) {
	if r.ctx.Err() != nil {
		return
	}
	if len(r.c.Files) >= maxSSHDFiles {
		r.problem("%s: not read, more than %d configuration files", name, maxSSHDFiles)
		return
	}
	data, err := readBounded(r.fsys, name, maxSSHDFileSize)
	if err != nil {
		if absent(err) || errors.Is(err, errIsDir) {
			return
		}
		r.problem("%s: not read: %v", name, err)
		return
	}
	r.c.Files = append(r.c.Files, name)
	for i, l := range lines(data) {
		kw, args := SplitSSHDLine(l)
		switch kw {
		case "":
			continue
		case "match":
			match = strings.Join(args, " ")
			if match == "" {
				match = "(no criteria)"
			}
		case "include":
			if depth+1 > maxSSHDDepth {
				r.problem("%s:%d: Include nested more than %d deep", name, i+1, maxSSHDDepth)
				continue
			}
			for _, a := range args {
				if r.includes++; r.includes > maxSSHDIncludes {
					r.problem("%s:%d: more than %d Include patterns; the others were not read", name, i+1, maxSSHDIncludes)
					break
				}
				if !strings.HasPrefix(a, "/") {
					a = "/etc/ssh/" + a
				}
				matches, err := fs.Glob(r.fsys, rel(a))
				if err != nil {
					r.problem("%s:%d: bad Include pattern", name, i+1)
					continue
				}
				for _, m := range matches {
					r.file(m, match, depth+1)
				}
			}
		default:
			if len(r.c.Settings) >= maxSSHDSettings {
				r.problem("%s: more than %d settings; the others were not read", name, maxSSHDSettings)
				return
			}
			r.c.Settings = append(r.c.Settings, SSHDSetting{Keyword: kw, Args: args, File: name, Line: i + 1, Match: match})
		}
	}
}

// SplitSSHDLine splits one sshd_config line into its lower-cased keyword and
// its arguments, as sshd does: leading and trailing white space is ignored,
// the keyword ends at white space or a single '=' (so "Keyword=value" and
// "Keyword = value" work), arguments are separated by white space, double or
// single quotes group (and are removed), a backslash escapes a quote, a
// backslash or a space, and an unquoted '#' at the start of an argument
// starts a comment. A blank or comment line gives "".
func SplitSSHDLine(l string) (string, []string) {
	l = strings.TrimLeft(l, " \t\r\f\v")
	l = strings.TrimRight(l, " \t\r\n\f\v")
	if l == "" || l[0] == '#' {
		return "", nil
	}
	i := strings.IndexAny(l, " \t=")
	kw := l
	rest := ""
	if i >= 0 {
		kw, rest = l[:i], l[i:]
	}
	if strings.HasPrefix(kw, "\"") {
		// sshd accepts a quoted keyword; such a keyword never names an
		// option, but keep it recognisable.
		kw = strings.Trim(kw, "\"")
	}
	rest = strings.TrimLeft(rest, " \t")
	if strings.HasPrefix(rest, "=") {
		rest = strings.TrimLeft(rest[1:], " \t")
	}
	return strings.ToLower(kw), splitArgs(rest)
}

// splitArgs splits arguments the way OpenSSH's argv_split does.
func splitArgs(s string) []string {
	var args []string
	var cur strings.Builder
	have := false
	var quote byte
	for j := 0; j < len(s); j++ {
		c := s[j]
		switch {
		case quote == 0 && (c == ' ' || c == '\t'):
			if have {
				args = append(args, cur.String())
				cur.Reset()
				have = false
				if len(args) >= maxSSHDArgs {
					return args
				}
			}
		case quote == 0 && c == '#' && !have:
			j = len(s) // a comment
		case c == '\\' && j+1 < len(s) && (s[j+1] == '"' || s[j+1] == '\'' || s[j+1] == '\\' || (quote == 0 && s[j+1] == ' ')):
			j++
			cur.WriteByte(s[j])
			have = true
		case quote == 0 && (c == '"' || c == '\''):
			quote = c
			have = true
		case quote != 0 && c == quote:
			quote = 0
		default:
			cur.WriteByte(c)
			have = true
		}
	}
	if have {
		args = append(args, cur.String())
	}
	return args
}

// clip shortens s for a message.
func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// loadSSHD reads the sshd configuration once for the ssh rules.
func (in *inspector) loadSSHD() {
	c, err := ReadSSHDConfig(in.ctx, in.fsys)
	if err != nil {
		if !errors.Is(err, ErrNoSSHDConfig) && in.ctx.Err() == nil {
			in.unreadableFinding(SSHDConfigPath, "it cannot be read")
		}
		return
	}
	in.sshd = c
	in.stats.sshdFiles = len(c.Files)
	for _, p := range c.Problems {
		name, _, _ := strings.Cut(p, ":")
		in.unreadableFinding(name, "sshd configuration not read in full: "+p)
	}
}

// isYes reports whether an sshd flag value is "yes" (case-insensitive).
func isYes(v string) bool { return strings.EqualFold(v, "yes") }

// sshPasswordAuth reports password authentication enabled in sshd:
// globally (set, or unset: OpenSSH's compiled-in default is yes), or only
// inside Match blocks.
func (in *inspector) sshPasswordAuth() {
	c := in.sshd
	if c == nil || len(c.Files) == 0 {
		return // no sshd, or its configuration is unreadable (reported)
	}
	const kw = "passwordauthentication"
	g, set := c.Global(kw)
	var yesInMatch, noInMatch []string
	for _, s := range c.InMatch(kw) {
		if isYes(s.Value()) {
			yesInMatch = append(yesInMatch, s.Where())
		} else {
			noInMatch = append(noInMatch, s.Where())
		}
	}
	file := SSHDConfigPath
	var msg string
	switch {
	case set && isYes(g.Value()):
		file = g.File
		msg = fmt.Sprintf("sshd accepts passwords: PasswordAuthentication yes at %s", g.Where())
	case !set:
		msg = fmt.Sprintf("sshd accepts passwords: PasswordAuthentication is not set in %s, and OpenSSH's default is yes", strings.Join(c.Files, ", "))
	case len(yesInMatch) > 0:
		file = strings.SplitN(yesInMatch[0], ":", 2)[0]
		msg = fmt.Sprintf("sshd accepts passwords for some connections: PasswordAuthentication yes at %s (the global value is %q at %s)",
			strings.Join(yesInMatch, ", "), g.Value(), g.Where())
	default:
		return
	}
	if (!set || isYes(g.Value())) && len(noInMatch) > 0 {
		msg += "; Match blocks turn it off at " + strings.Join(noInMatch, ", ")
	}
	in.add(RuleSSHPasswordAuth, file, msg+": marketplace images must allow key-based logins only (PasswordAuthentication no)")
}
