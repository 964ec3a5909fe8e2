package hygiene

import (
	"fmt"
	"path"
	"strings"

	"github.com/assetscan/assetscan/scanner/accounts"
)

// noLoginShell reports a shell that refuses logins.
func noLoginShell(sh string) bool {
	switch path.Base(strings.TrimSpace(sh)) {
	case "nologin", "false", "true", "sync", "halt", "shutdown":
		return true
	}
	return false
}

// usablePassword classifies a password field: "" when it cannot be used to
// log in (locked "!...", "*", "x" with no shadow entry), else a description.
func usablePassword(field string) string {
	switch {
	case field == "":
		return "an empty password"
	case strings.HasPrefix(field, "!"), strings.HasPrefix(field, "*"), field == "x":
		return ""
	case len(field) < 13:
		return "" // not a crypt(3) hash: no password matches it
	}
	return "a usable password hash"
}

// rootLogin reports ways root can log in remotely:
//
//   - sshd PermitRootLogin yes (global, or in a Match block);
//   - root has a usable (or empty) password and a login shell;
//   - root's authorized_keys hold a key without a forced command, and sshd
//     lets root log in with a key (PermitRootLogin unset, i.e. OpenSSH's
//     default prohibit-password since 7.0, or yes, prohibit-password,
//     without-password).
func (in *inspector) rootLogin() {
	i, ok := in.byName["root"]
	var root user
	if ok {
		root = in.users[i]
	} else {
		root = user{name: "root", home: "/root", shell: "/bin/sh"}
	}
	shellOK := !noLoginShell(root.shell)

	permit := "prohibit-password"
	permitWhere := "PermitRootLogin not set: OpenSSH's default since 7.0 is prohibit-password"
	if c := in.sshd; c != nil {
		if s, set := c.Global("permitrootlogin"); set {
			permit = strings.ToLower(s.Value())
			permitWhere = fmt.Sprintf("PermitRootLogin %s at %s", clip(s.Value(), 32), s.Where())
			if permit == "yes" {
				in.add(RuleRootLogin, s.File, fmt.Sprintf(
					"sshd lets root log in with any method: PermitRootLogin yes at %s: set it to prohibit-password or no", s.Where()))
			}
		}
		for _, s := range c.InMatch("permitrootlogin") {
			if isYes(s.Value()) {
				in.add(RuleRootLogin, s.File, fmt.Sprintf(
					"sshd lets root log in with any method for some connections: PermitRootLogin yes at %s: set it to prohibit-password or no", s.Where()))
			}
		}
	}

	// The password: etc/shadow when etc/passwd says "x" (pam_unix's
	// is_pwd_shadowed); any other passwd field, empty included, is used as
	// is.
	pw, pwFile := root.passwdPW, "etc/passwd"
	if s, ok := in.shadow["root"]; ok && pw == "x" {
		pw, pwFile = s, "etc/shadow"
	}
	if kind := usablePassword(pw); kind != "" && shellOK && ok {
		via := "on the console"
		if in.sshd != nil && permit == "yes" {
			via = "on the console and over SSH (PermitRootLogin yes)"
		}
		in.add(RuleRootLogin, pwFile, fmt.Sprintf(
			"account \"root\" has %s in %s and the login shell %s: root can log in %s; lock it (passwd -l root) and let cloud-init set up access",
			kind, pwFile, clip(root.shell, 64), via))
	}

	if !shellOK || in.sshd == nil {
		return // no login shell, or no sshd (no sshd_config): keys cannot be used
	}
	switch permit {
	case "no", "forced-commands-only":
		return
	}
	home := rel(root.home)
	if root.home == "" || home == "." {
		home = "root"
	}
	for _, p := range in.rootKeyFiles(home) {
		data, ok := in.read(p)
		if !ok {
			continue
		}
		n := 0
		for _, l := range lines(data) {
			opts, ok := accounts.ParseAuthorizedKeyLine(l)
			if !ok {
				continue
			}
			if _, forced := accounts.ForcedCommand(opts); !forced {
				n++
			}
		}
		if n > 0 {
			in.add(RuleRootLogin, p, fmt.Sprintf(
				"%s holds %d SSH key line(s) without a forced command for account \"root\", and sshd allows root key logins (%s): root can log in over SSH; use cloud-init's disable_root or remove the keys",
				p, n, permitWhere))
		}
	}
}

// rootKeyFiles returns root's authorized_keys files: the global
// AuthorizedKeysFile patterns (tokens %h, %u, %U, %% expanded; relative ones
// in the home), or sshd's default .ssh/authorized_keys and
// .ssh/authorized_keys2.
func (in *inspector) rootKeyFiles(home string) []string {
	patterns := []string{".ssh/authorized_keys", ".ssh/authorized_keys2"}
	if c := in.sshd; c != nil {
		if s, set := c.Global("authorizedkeysfile"); set {
			patterns = nil
			for _, a := range s.Args {
				if !strings.EqualFold(a, "none") {
					patterns = append(patterns, a)
				}
			}
		}
	}
	var out []string
	seen := map[string]bool{}
	for _, p := range patterns {
		f, ok := accounts.ExpandKeysFile(p, "root", "0", home)
		if ok && f != "." && !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	return out
}
