package hygiene

import (
	"encoding/json"
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// home is a home directory with the accounts that use it.
type home struct {
	dir   string // rel path ("root", "home/alice")
	names []string
}

// homes returns the home directories to inspect: /root, every home in
// etc/passwd and every directory under home/ (owned by the accounts whose
// passwd home it is, else by the account named like it). The file system
// root ("/" as a home) is skipped: it is not a home.
func (in *inspector) homes() []*home {
	var out []*home
	byDir := map[string]*home{}
	add := func(dir, name string) {
		if dir == "." {
			return
		}
		h := byDir[dir]
		if h == nil {
			if len(out) >= maxHomes {
				in.unreadableFinding("etc/passwd", fmt.Sprintf("it and home/ name more than %d home directories; the others were not inspected", maxHomes))
				return
			}
			h = &home{dir: dir}
			byDir[dir] = h
			out = append(out, h)
		}
		for _, n := range h.names {
			if n == name {
				return
			}
		}
		h.names = append(h.names, name)
	}
	add("root", "root")
	for _, u := range in.users {
		if u.home != "" {
			add(rel(u.home), u.name)
		}
	}
	for _, e := range in.readDir("home", maxHomes) {
		dir := "home/" + e.Name()
		if byDir[dir] == nil && in.isDir(dir) {
			add(dir, e.Name())
		}
	}
	return out
}

// historyFiles are the shell and tool history files reported when non-empty.
var historyFiles = [...]string{
	".bash_history", ".zsh_history", ".sh_history", ".history", ".ash_history",
	".python_history", ".mysql_history", ".psql_history", ".sqlite_history",
	".rediscli_history", ".node_repl_history", ".lesshst", ".viminfo",
}

// homesSteps runs the per-home rules: shell history and credentials.
func (in *inspector) homesSteps() {
	hs := in.homes()
	in.stats.homes = len(hs)
	for _, h := range hs {
		if in.ctx.Err() != nil {
			return
		}
		if !in.isDir(h.dir) {
			continue
		}
		in.history(h)
		in.credentials(h)
	}
}

// history reports non-empty history files in h. Emptiness is judged by size:
// the content is never read.
func (in *inspector) history(h *home) {
	for _, name := range historyFiles {
		p := join(h.dir, name)
		if n, ok := in.size(p); ok && n > 0 {
			in.add(RuleShellHistory, p, fmt.Sprintf(
				"%s is a non-empty history file (%d bytes) in the home of %s: clear shell and tool history before publishing the image",
				p, n, whose(h.names)))
		}
	}
}

// credentials reports credential files left in h.
func (in *inspector) credentials(h *home) {
	report := func(p, what string) {
		in.add(RuleTempCredentials, p, fmt.Sprintf(
			"%s %s, in the home of %s: images must not contain credentials; remove it",
			p, what, whose(h.names)))
	}
	check := func(name string, has func([]byte) bool, what string) {
		p := join(h.dir, name)
		if data, ok := in.read(p); ok && has(data) {
			report(p, what)
		}
	}
	check(".git-credentials", hasContentLine, "stores git credentials")
	check(".netrc", netrcHasPassword, "holds a password (netrc)")
	check(".pgpass", pgpassHasPassword, "holds a PostgreSQL password")
	check(".my.cnf", myCnfHasPassword, "holds a MySQL password")
	check(".docker/config.json", dockerHasAuth, "holds registry credentials (auths with auth or identitytoken)")
	check(".aws/credentials", awsHasKeys, "holds AWS access keys")
	check(".kube/config", kubeHasCredentials, "holds Kubernetes credentials (token, password or client key)")
	gc := join(h.dir, ".config/gcloud")
	for _, name := range []string{"credentials.db", "access_tokens.db", "application_default_credentials.json"} {
		p := join(gc, name)
		if n, ok := in.size(p); ok && n > 0 {
			report(p, "is a Google Cloud CLI credential file")
		}
	}
	lc := join(gc, "legacy_credentials")
	for _, e := range in.readDir(lc, maxDirEntries) {
		if !e.IsDir() {
			continue
		}
		for _, f := range in.readDir(join(lc, e.Name()), maxDirEntries) {
			p := join(join(lc, e.Name()), f.Name())
			if n, ok := in.size(p); ok && n > 0 {
				report(p, "is a Google Cloud CLI credential file (legacy_credentials)")
			}
		}
	}
}

// hasContentLine reports a line that is neither blank nor a '#' comment.
func hasContentLine(data []byte) bool {
	for _, l := range lines(data) {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "#") {
			return true
		}
	}
	return false
}

// netrcHasPassword reports a "password" (or "account") token followed by a
// value; macdef bodies are skipped.
func netrcHasPassword(data []byte) bool {
	inMacro := false
	for _, l := range lines(data) {
		if inMacro {
			if strings.TrimSpace(l) == "" {
				inMacro = false
			}
			continue
		}
		f := strings.Fields(l)
		for i := 0; i < len(f); i++ {
			switch f[i] {
			case "macdef":
				inMacro = true
				i = len(f)
			case "password", "passwd":
				if i+1 < len(f) {
					return true
				}
			}
		}
	}
	return false
}

// pgpassHasPassword reports a host:port:database:user:password line with a
// non-empty password (backslash escapes ':' and '\').
func pgpassHasPassword(data []byte) bool {
	for _, l := range lines(data) {
		if strings.HasPrefix(strings.TrimSpace(l), "#") {
			continue
		}
		fields, cur := 0, 0
		for i := 0; i < len(l); i++ {
			switch {
			case l[i] == '\\' && i+1 < len(l):
				i++
				cur++
			case l[i] == ':':
				fields++
				cur = 0
			default:
				cur++
			}
		}
		if fields >= 4 && cur > 0 {
			return true
		}
	}
	return false
}

// myCnfHasPassword reports a password option with a value in any section
// (password=..., password = ..., pass=...).
func myCnfHasPassword(data []byte) bool {
	for _, l := range lines(data) {
		l = strings.TrimSpace(l)
		if l == "" || l[0] == '#' || l[0] == ';' || l[0] == '[' {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			continue
		}
		k = strings.ToLower(strings.TrimSpace(k))
		k = strings.ReplaceAll(k, "_", "-")
		if (k == "password" || k == "pass" || k == "passwd") && strings.Trim(strings.TrimSpace(v), `"'`) != "" {
			return true
		}
	}
	return false
}

// dockerHasAuth reports a docker config.json whose "auths" has an entry with
// a non-empty "auth" or "identitytoken" (or "registrytoken").
func dockerHasAuth(data []byte) bool {
	var cfg struct {
		Auths map[string]struct {
			Auth          string `json:"auth"`
			IdentityToken string `json:"identitytoken"`
			RegistryToken string `json:"registrytoken"`
			Password      string `json:"password"`
		} `json:"auths"`
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		return false
	}
	for _, a := range cfg.Auths {
		if a.Auth != "" || a.IdentityToken != "" || a.RegistryToken != "" || a.Password != "" {
			return true
		}
	}
	return false
}

// awsHasKeys reports an aws_secret_access_key, aws_session_token or
// aws_access_key_id with a value.
func awsHasKeys(data []byte) bool {
	for _, l := range lines(data) {
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			continue
		}
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "aws_secret_access_key", "aws_session_token", "aws_access_key_id", "aws_security_token":
			if strings.TrimSpace(v) != "" {
				return true
			}
		}
	}
	return false
}

// kubeHasCredentials reports a kubeconfig user with a token, a password, a
// client key (inline or a file) or auth-provider tokens.
func kubeHasCredentials(data []byte) bool {
	var cfg struct {
		Users []struct {
			User struct {
				Token         string `yaml:"token"`
				Password      string `yaml:"password"`
				ClientKey     string `yaml:"client-key"`
				ClientKeyData string `yaml:"client-key-data"`
				AuthProvider  struct {
					Config map[string]string `yaml:"config"`
				} `yaml:"auth-provider"`
			} `yaml:"user"`
		} `yaml:"users"`
	}
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		return false
	}
	for _, u := range cfg.Users {
		x := u.User
		if x.Token != "" || x.Password != "" || x.ClientKey != "" || x.ClientKeyData != "" {
			return true
		}
		for _, k := range []string{"access-token", "refresh-token", "id-token", "client-secret"} {
			if x.AuthProvider.Config[k] != "" {
				return true
			}
		}
	}
	return false
}
