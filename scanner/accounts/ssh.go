package accounts

import (
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strings"
)

// homeDir is a home directory with the accounts that use it.
type homeDir struct {
	dir   string // rel path ("root", "home/alice", "." for /)
	users []homeUser
	names map[string]bool
}

type homeUser struct{ name, uid string }

// homes returns the home directories to inspect: root's, every home in
// etc/passwd, and every directory under home/ (owned by the account whose
// passwd home it is, else by the account named like the directory).
func (in *inspector) homes() []*homeDir {
	var out []*homeDir
	byDir := map[string]*homeDir{}
	addUser := func(dir, name, uid string) {
		h := byDir[dir]
		if h == nil {
			if len(out) >= maxHomes {
				in.unreadableFinding("etc/passwd", fmt.Sprintf("it and home/ name more than %d home directories; the others were not inspected for SSH keys", maxHomes))
				return
			}
			h = &homeDir{dir: dir, names: map[string]bool{}}
			byDir[dir] = h
			out = append(out, h)
		}
		if !h.names[name] {
			h.names[name] = true
			h.users = append(h.users, homeUser{name, uid})
		}
	}
	rootUID := "0"
	if a := in.byName["root"]; a != nil && a.inPasswd && a.home != "" {
		rootUID = a.uid
		addUser(rel(a.home), "root", a.uid)
	}
	addUser("root", "root", rootUID)
	for _, a := range in.accounts {
		if a.inPasswd && a.home != "" {
			addUser(rel(a.home), a.name, a.uid)
		}
	}
	for _, e := range in.readDir("home", maxHomes) {
		dir := "home/" + e.Name()
		if byDir[dir] != nil || !in.isDir(dir) {
			continue
		}
		uid := ""
		if a := in.byName[e.Name()]; a != nil {
			uid = a.uid
		}
		addUser(dir, e.Name(), uid)
	}
	return out
}

// keyFile is an authorized_keys file to inspect, with the accounts it
// authorizes logins to.
type keyFile struct {
	path     string
	accounts []string
	names    map[string]bool
	every    bool // named by an AuthorizedKeysFile without %u/%h: all accounts
}

// sshKeys reports authorized_keys files with keys (RulePresetKey) and
// private keys in ~/.ssh (RuleLoginPrivateKey). Any line of an
// authorized_keys file that is neither blank nor a comment counts as a key:
// sshd ignores lines it cannot parse, but a scanner that tried to parse them
// could miss key types it does not know.
func (in *inspector) sshKeys() {
	homes := in.homes()
	var files []*keyFile
	byPath := map[string]*keyFile{}
	add := func(p, account string, every bool) {
		if !fs.ValidPath(p) || p == "." {
			return
		}
		k := byPath[p]
		if k == nil {
			k = &keyFile{path: p, names: map[string]bool{}}
			byPath[p] = k
			files = append(files, k)
		}
		if every {
			k.every = true
			return
		}
		if !k.names[account] {
			k.names[account] = true
			k.accounts = append(k.accounts, account)
		}
	}
	patterns := in.authorizedKeysPatterns()
	for _, h := range homes {
		for _, u := range h.users {
			add(join(h.dir, ".ssh/authorized_keys"), u.name, false)
			add(join(h.dir, ".ssh/authorized_keys2"), u.name, false)
			for _, p := range patterns {
				if !perUser(p) {
					continue
				}
				if f, ok := ExpandKeysFile(p, u.name, u.uid, h.dir); ok {
					add(f, u.name, false)
				}
			}
		}
	}
	for _, p := range patterns {
		if !perUser(p) {
			add(rel(strings.ReplaceAll(p, "%%", "%")), "", true)
		}
	}
	for _, k := range files {
		if in.ctx.Err() != nil {
			return
		}
		data, ok := in.probe(k.path)
		if !ok {
			continue
		}
		in.stats.keyFiles++
		n, disabled := 0, 0
		for _, l := range lines(data) {
			opts, ok := ParseAuthorizedKeyLine(l)
			if !ok {
				continue
			}
			n++
			if IsCloudInitDisabledKey(opts) {
				disabled++
			}
		}
		if n == 0 {
			continue
		}
		who := "account " + nameList(k.accounts)
		if len(k.accounts) > 1 {
			who = "accounts " + nameList(k.accounts)
		}
		if k.every {
			who = "every account (AuthorizedKeysFile in sshd_config)"
		}
		if disabled == n {
			in.add(RuleRootKeyDisabled, k.path, fmt.Sprintf(
				"%s holds %d SSH key line(s) for %s, each with cloud-init's disable_root forced command (\"Please login as the user ... rather than the user root\"): they cannot open a shell",
				k.path, n, who))
			continue
		}
		in.add(RulePresetKey, k.path, fmt.Sprintf(
			"%s holds %d SSH key line(s) authorizing logins as %s: images must not ship authorized_keys; let cloud-init install the buyer's key at first boot",
			k.path, n, who))
	}
	for _, h := range homes {
		if in.ctx.Err() != nil {
			return
		}
		in.privateKeys(h)
	}
}

// privateKeyRE matches PEM and OpenSSH private key headers (RSA, DSA, EC,
// OPENSSH, ENCRYPTED, PKCS#8) and PuTTY key files.
var privateKeyRE = regexp.MustCompile(`-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----|PuTTY-User-Key-File-\d+:`)

// privateKeys reports files in the home's .ssh directory (id_rsa,
// id_ed25519, or any other name but *.pub) holding a private key.
func (in *inspector) privateKeys(h *homeDir) {
	dir := join(h.dir, ".ssh")
	var names []string
	for _, u := range h.users {
		names = append(names, u.name)
	}
	for _, e := range in.readDir(dir, maxDirEntries) {
		name := e.Name()
		if e.IsDir() || strings.HasSuffix(name, ".pub") {
			continue
		}
		p := join(dir, name)
		data, ok := in.read(p)
		if !ok || !privateKeyRE.Match(data) {
			continue
		}
		who := "account " + nameList(names)
		if len(names) > 1 {
			who = "accounts " + nameList(names)
		}
		in.add(RuleLoginPrivateKey, p, fmt.Sprintf(
			"%s is a private SSH key in the home of %s: a login credential must not ship in an image",
			p, who))
	}
}

// hostKeys reports SSH host private keys (etc/ssh/ssh_host_*_key).
func (in *inspector) hostKeys() {
	for _, p := range in.glob("etc/ssh/ssh_host_*_key") {
		data, ok := in.read(p)
		if !ok || len(strings.TrimSpace(string(data))) == 0 {
			continue
		}
		in.add(RuleSSHHostKey, p, fmt.Sprintf(
			"%s is an SSH host private key baked into the image: every instance would share it; delete it so that each instance generates its own at first boot",
			p))
	}
}

// perUser reports whether an AuthorizedKeysFile pattern depends on the
// user: it has %h, %u or %U tokens, or is relative to the home directory.
func perUser(p string) bool {
	return strings.Contains(strings.ReplaceAll(p, "%%", ""), "%") || !strings.HasPrefix(p, "/")
}

// ExpandKeysFile expands the tokens of an AuthorizedKeysFile pattern (%%,
// %h, %u, %U) for one user whose home is homeRel (a path relative to the
// image root, "." for /); relative results are relative to the home
// directory, as with sshd. It returns the file relative to the image root,
// and false for unknown tokens (sshd refuses the pattern).
func ExpandKeysFile(p, user, uid, homeRel string) (string, bool) {
	home := "/"
	if homeRel != "." {
		home += homeRel
	}
	var sb strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] != '%' {
			sb.WriteByte(p[i])
			continue
		}
		if i+1 >= len(p) {
			return "", false
		}
		i++
		switch p[i] {
		case '%':
			sb.WriteByte('%')
		case 'h':
			sb.WriteString(home)
		case 'u':
			sb.WriteString(user)
		case 'U':
			sb.WriteString(uid)
		default:
			return "", false
		}
	}
	out := sb.String()
	if !strings.HasPrefix(out, "/") {
		out = path.Join(home, out)
	}
	return rel(out), true
}

// authorizedKeysPatterns returns the AuthorizedKeysFile values of
// etc/ssh/sshd_config, etc/ssh/sshd_config.d/*.conf and the files they
// Include, in every context (Match blocks included).
func (in *inspector) authorizedKeysPatterns() []string {
	queue := []string{"etc/ssh/sshd_config"}
	queue = append(queue, in.glob("etc/ssh/sshd_config.d/*.conf")...)
	seen := map[string]bool{}
	var out []string
	for len(queue) > 0 && len(seen) < maxConfigFiles {
		f := queue[0]
		queue = queue[1:]
		if seen[f] {
			continue
		}
		seen[f] = true
		data, ok := in.read(f)
		if !ok {
			continue
		}
		for _, l := range lines(data) {
			kw, args := sshdConfigLine(l)
			switch kw {
			case "authorizedkeysfile":
				for _, a := range args {
					if a != "" && !strings.EqualFold(a, "none") {
						out = append(out, a)
					}
				}
			case "include":
				for _, a := range args {
					if !strings.HasPrefix(a, "/") && !strings.HasPrefix(a, "~") {
						a = "/etc/ssh/" + a
					}
					queue = append(queue, in.glob(rel(a))...)
				}
			}
		}
	}
	return out
}

// sshdConfigLine splits a sshd_config line into its lower-cased keyword
// and arguments (whitespace separated, double quotes group).
func sshdConfigLine(l string) (string, []string) {
	l = strings.TrimSpace(l)
	if l == "" || l[0] == '#' {
		return "", nil
	}
	i := strings.IndexAny(l, " \t=")
	if i < 0 {
		return strings.ToLower(l), nil
	}
	kw := strings.ToLower(l[:i])
	rest := strings.TrimLeft(l[i:], " \t")
	rest = strings.TrimPrefix(rest, "=")
	var args []string
	var cur strings.Builder
	inQuote, have := false, false
	for j := 0; j < len(rest); j++ {
		c := rest[j]
		switch {
		case c == '"':
			inQuote = !inQuote
			have = true
		case !inQuote && (c == ' ' || c == '\t'):
			if have {
				args = append(args, cur.String())
				cur.Reset()
				have = false
			}
		case !inQuote && c == '#' && !have:
			// trailing comment
			j = len(rest)
		default:
			cur.WriteByte(c)
			have = true
		}
	}
	if have {
		args = append(args, cur.String())
	}
	return kw, args
}
