package accounts

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// cloudPW is a password that cloud-init configuration sets.
type cloudPW struct {
	account string // "" for the default user
	unnamed bool   // the account is not known (line patterns)
	value   string
	hashed  bool
	where   string // the key, for the message ("chpasswd.list")
}

// cloudInit reports passwords set in cloud-init configuration: the system
// configuration (etc/cloud/cloud.cfg, etc/cloud/cloud.cfg.d/*.cfg and
// *.yaml), NoCloud seeds (var/lib/cloud/seed/**/user-data) and user data
// left over from the instance the image was built on
// (var/lib/cloud/instances/*/user-data.txt).
func (in *inspector) cloudInit() {
	files := []string{"etc/cloud/cloud.cfg"}
	files = append(files, in.glob("etc/cloud/cloud.cfg.d/*.cfg")...)
	files = append(files, in.glob("etc/cloud/cloud.cfg.d/*.yaml")...)
	files = append(files, in.seedFiles()...)
	files = append(files, in.glob("var/lib/cloud/instances/*/user-data.txt")...)
	if len(files) > maxCloudFiles {
		files = files[:maxCloudFiles]
	}
	for i, f := range files {
		if in.ctx.Err() != nil {
			return
		}
		var data []byte
		var ok bool
		if i == 0 {
			data, ok = in.probe(f) // a fixed path; the others were listed
		} else {
			data, ok = in.read(f)
		}
		if !ok {
			continue
		}
		for _, pw := range parseCloudConfig(data) {
			in.cloudFinding(f, pw)
		}
	}
}

// seedFiles finds user-data files under var/lib/cloud/seed (not following
// symbolic links), at most 4 directories deep.
func (in *inspector) seedFiles() []string {
	const root = "var/lib/cloud/seed"
	var out []string
	visited := 0
	_ = fs.WalkDir(in.fsys, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		visited++
		if visited > 4096 || len(out) >= maxCloudFiles {
			return fs.SkipAll
		}
		if d.IsDir() {
			if strings.Count(p[len(root):], "/") > 4 {
				return fs.SkipDir
			}
			return nil
		}
		if d.Name() == "user-data" {
			out = append(out, p)
		}
		return nil
	})
	return out
}

func (in *inspector) cloudFinding(file string, pw cloudPW) {
	who := "account " + quoteName(pw.account)
	if pw.account == "" {
		who = "the default user"
	}
	if pw.unnamed {
		who = "an account"
	}
	if pw.hashed {
		in.add(RuleCloudInitPassword, file, fmt.Sprintf(
			"hashed password preset in cloud-init for %s (%s, %s hash): every instance would accept the same password",
			who, pw.where, schemeOf(pw.value)))
		if classify(pw.value) == pwHash {
			in.weakCheck(pw.account, file, pw.value)
		}
		return
	}
	msg := fmt.Sprintf("cloud-init sets a plain-text password for %s (%s): every instance would accept the same password, and anyone with the image can read it", who, pw.where)
	if ok, _ := CheckComplexity(pw.account, pw.value, in.opt.Complexity); !ok {
		// Which part it breaks is not said: "equal to the account name"
		// would give the password away, and naming the other parts gives it
		// away by elimination.
		msg += "; it also breaks the password complexity rule (length, character classes, not the account name)"
	}
	in.add(RuleCloudInitPassword, file, msg)
	for _, c := range in.candidates(pw.account) {
		if c == pw.value {
			in.add(RuleWeakPassword, file, fmt.Sprintf(
				"the plain-text cloud-init password of %s (%s) is a common or guessable password (the account name, a variant of it, or a widely used password)",
				who, pw.where))
			break
		}
	}
}

// parseCloudConfig finds the passwords a cloud-init file sets. YAML
// documents are parsed with yaml.v3; a file that is not YAML (a shell
// script, MIME multipart, broken YAML) is scanned with line patterns.
func parseCloudConfig(data []byte) []cloudPW {
	if pws, ok := parseCloudYAML(data); ok {
		return pws
	}
	return scanCloudText(data)
}

// parseCloudYAML returns ok == false if data is not a YAML mapping.
func parseCloudYAML(data []byte) (pws []cloudPW, ok bool) {
	defer func() {
		if recover() != nil {
			pws, ok = nil, false
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for docs := 0; docs < 16; docs++ {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, false
		}
		root := &doc
		if root.Kind == yaml.DocumentNode {
			if len(root.Content) == 0 {
				continue
			}
			root = root.Content[0]
		}
		root = deref(root)
		if root == nil || root.Kind != yaml.MappingNode {
			if root != nil && root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
				continue
			}
			return nil, false
		}
		pws = append(pws, cloudDoc(root)...)
	}
	return pws, true
}

// deref follows YAML aliases (a few levels at most).
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode; i++ {
		if i >= 8 {
			return nil
		}
		n = n.Alias
	}
	return n
}

// get returns the value of key in mapping m, or nil.
func get(m *yaml.Node, key string) *yaml.Node {
	m = deref(m)
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if k := deref(m.Content[i]); k != nil && k.Kind == yaml.ScalarNode && k.Value == key {
			return deref(m.Content[i+1])
		}
	}
	return nil
}

// str returns the scalar value of n.
func str(n *yaml.Node) (string, bool) {
	n = deref(n)
	if n == nil || n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		return "", false
	}
	return n.Value, true
}

// items returns the elements of sequence n.
func items(n *yaml.Node) []*yaml.Node {
	n = deref(n)
	if n == nil || n.Kind != yaml.SequenceNode {
		return nil
	}
	return n.Content
}

// isRandom reports cloud-init's request for a random password.
func isRandom(v string) bool { return strings.EqualFold(v, "RANDOM") || strings.EqualFold(v, "R") }

// looksHashed reports whether a chpasswd value is a crypt(3) hash, as
// cloud-init decides it.
func looksHashed(v string) bool { return strings.HasPrefix(v, "$") && strings.Count(v, "$") >= 3 }

// cloudDoc extracts the passwords of one cloud-config mapping: top-level
// password, chpasswd list and users, and the password keys of users[],
// user and system_info.default_user entries.
func cloudDoc(root *yaml.Node) []cloudPW {
	var out []cloudPW
	defaultName, _ := str(get(get(get(root, "system_info"), "default_user"), "name"))
	if v, ok := str(get(root, "password")); ok && v != "" && !isRandom(v) {
		out = append(out, cloudPW{account: defaultName, value: v, where: "password"})
	}
	chp := get(root, "chpasswd")
	list := get(chp, "list")
	var entries []string
	if v, ok := str(list); ok {
		entries = strings.Split(v, "\n")
	} else {
		for _, it := range items(list) {
			if v, ok := str(it); ok {
				entries = append(entries, v)
			}
		}
	}
	for _, e := range entries {
		name, pw, ok := strings.Cut(strings.TrimSpace(e), ":")
		if !ok || name == "" || pw == "" || isRandom(pw) {
			continue
		}
		out = append(out, cloudPW{account: name, value: pw, hashed: looksHashed(pw), where: "chpasswd.list"})
	}
	for _, it := range items(get(chp, "users")) {
		name, _ := str(get(it, "name"))
		pw, ok := str(get(it, "password"))
		typ, _ := str(get(it, "type"))
		if !ok || pw == "" || isRandom(pw) || strings.EqualFold(typ, "RANDOM") {
			continue
		}
		hashed := strings.EqualFold(typ, "hash") || (typ == "" && looksHashed(pw))
		out = append(out, cloudPW{account: name, value: pw, hashed: hashed, where: "chpasswd.users"})
	}
	for _, it := range items(get(root, "users")) {
		out = append(out, cloudUser(it, "", "users")...)
	}
	out = append(out, cloudUser(get(root, "user"), defaultName, "user")...)
	out = append(out, cloudUser(get(get(root, "system_info"), "default_user"), defaultName, "system_info.default_user")...)
	return out
}

// cloudUser extracts the passwords of a users[] style entry.
func cloudUser(u *yaml.Node, defaultName, where string) []cloudPW {
	u = deref(u)
	if u == nil || u.Kind != yaml.MappingNode {
		return nil
	}
	name, ok := str(get(u, "name"))
	if !ok {
		name = defaultName
	}
	var out []cloudPW
	for _, k := range []struct {
		key    string
		hashed bool
	}{{"passwd", true}, {"hashed_passwd", true}, {"plain_text_passwd", false}, {"password", false}} {
		v, ok := str(get(u, k.key))
		if !ok || v == "" || (!k.hashed && isRandom(v)) {
			continue
		}
		out = append(out, cloudPW{account: name, value: v, hashed: k.hashed, where: where + "." + k.key})
	}
	return out
}

var (
	cloudKeyRE    = regexp.MustCompile(`^[ \t-]*(password|plain_text_passwd|passwd|hashed_passwd)[ \t]*:[ \t]*["']?([^"'\s]+)`)
	cloudListRE   = regexp.MustCompile(`^[ \t]+-?[ \t]*["']?([A-Za-z0-9_][A-Za-z0-9_.-]*):([^\s"']+)["']?[ \t]*$`)
	cloudScriptRE = regexp.MustCompile(`echo[ \t]+(?:-e[ \t]+)?["']?([A-Za-z0-9_][A-Za-z0-9_.-]*):([^\s"'|]+)["']?[ \t]*\|[ \t]*(?:sudo[ \t]+)?chpasswd`)
)

// scanCloudText finds passwords in text that is not a YAML mapping, line by
// line: password keys, user:password lines inside a chpasswd block, and
// "echo user:password | chpasswd" in scripts.
func scanCloudText(data []byte) []cloudPW {
	var out []cloudPW
	inChpasswd := false
	for _, l := range lines(data) {
		if m := cloudScriptRE.FindStringSubmatch(l); m != nil {
			out = append(out, cloudPW{account: m[1], value: m[2], hashed: looksHashed(m[2]), where: "chpasswd in a script"})
			continue
		}
		if strings.HasPrefix(strings.TrimSpace(l), "chpasswd:") {
			inChpasswd = true
			continue
		}
		if l != "" && l[0] != ' ' && l[0] != '\t' && l[0] != '-' && l[0] != '#' {
			inChpasswd = false
		}
		if m := cloudKeyRE.FindStringSubmatch(l); m != nil {
			v := m[2]
			if isRandom(v) || v == "|" || v == ">" {
				continue
			}
			hashed := m[1] == "passwd" || m[1] == "hashed_passwd"
			out = append(out, cloudPW{unnamed: true, value: v, hashed: hashed, where: m[1]})
			continue
		}
		if inChpasswd {
			if m := cloudListRE.FindStringSubmatch(l); m != nil && !isRandom(m[2]) {
				out = append(out, cloudPW{account: m[1], value: m[2], hashed: looksHashed(m[2]), where: "chpasswd.list"})
			}
		}
	}
	return out
}
