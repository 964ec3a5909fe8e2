package hygiene

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

func TestSplitSSHDLine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		line string
		kw   string
		args []string
	}{
		{"", "", nil},
		{"   # PasswordAuthentication yes", "", nil},
		{"PasswordAuthentication yes", "passwordauthentication", []string{"yes"}},
		{"\tpasswordauthentication\tYES  \r", "passwordauthentication", []string{"YES"}},
		{"PasswordAuthentication=no", "passwordauthentication", []string{"no"}},
		{"PasswordAuthentication = no", "passwordauthentication", []string{"no"}},
		{"PasswordAuthentication =no", "passwordauthentication", []string{"no"}},
		{"PasswordAuthentication no # trailing comment", "passwordauthentication", []string{"no"}},
		{`PasswordAuthentication "yes"`, "passwordauthentication", []string{"yes"}},
		{`AuthorizedKeysFile "/etc/ssh/my keys" .ssh/authorized_keys`, "authorizedkeysfile", []string{"/etc/ssh/my keys", ".ssh/authorized_keys"}},
		{`Banner 'a b'`, "banner", []string{"a b"}},
		{`ForceCommand echo a\ b \"q\"`, "forcecommand", []string{"echo", "a b", `"q"`}},
		{"Match User admin,ops Address 10.0.0.0/8", "match", []string{"User", "admin,ops", "Address", "10.0.0.0/8"}},
		{"PermitRootLogin", "permitrootlogin", nil},
	}
	for _, tc := range tests {
		kw, args := SplitSSHDLine(tc.line)
		if kw != tc.kw || !slices.Equal(args, tc.args) {
			t.Errorf("SplitSSHDLine(%q) = %q %q, want %q %q", tc.line, kw, args, tc.kw, tc.args)
		}
	}
}

// TestResolveSSHD runs the effective-value resolution over real-world
// configuration shapes: Include files, Match blocks, duplicated keys,
// comments, case, '=' separators, quoted values.
func TestResolveSSHD(t *testing.T) {
	t.Parallel()
	type want struct {
		global  string // effective global value; "" when unset
		where   string // "file:line" of the global value
		inMatch []string
	}
	tests := []struct {
		name  string
		files map[string]string
		want  want
	}{
		{"unset", map[string]string{"etc/ssh/sshd_config": "# PasswordAuthentication yes\nPort 22\n"}, want{}},
		{"set", map[string]string{"etc/ssh/sshd_config": "PasswordAuthentication no\n"}, want{"no", "etc/ssh/sshd_config:1", nil}},
		{"first value wins", map[string]string{"etc/ssh/sshd_config": "PasswordAuthentication no\nPasswordAuthentication yes\n"},
			want{"no", "etc/ssh/sshd_config:1", nil}},
		{"case-insensitive keyword", map[string]string{"etc/ssh/sshd_config": "passwordAUTHENTICATION Yes\n"},
			want{"Yes", "etc/ssh/sshd_config:1", nil}},
		{"= separator and quotes", map[string]string{"etc/ssh/sshd_config": "PasswordAuthentication=\"yes\"\n"},
			want{"yes", "etc/ssh/sshd_config:1", nil}},
		{"Ubuntu 22.04: Include first, cloud-init drop-in wins over the main file", map[string]string{
			"etc/ssh/sshd_config":                      "Include /etc/ssh/sshd_config.d/*.conf\n#PermitRootLogin prohibit-password\nPasswordAuthentication no\n",
			"etc/ssh/sshd_config.d/50-cloud-init.conf": "PasswordAuthentication yes\n",
		}, want{"yes", "etc/ssh/sshd_config.d/50-cloud-init.conf:1", nil}},
		{"relative Include, lexical order", map[string]string{
			"etc/ssh/sshd_config":             "Include sshd_config.d/*.conf\nPasswordAuthentication yes\n",
			"etc/ssh/sshd_config.d/99-z.conf": "PasswordAuthentication yes\n",
			"etc/ssh/sshd_config.d/10-a.conf": "PasswordAuthentication no\n",
			"etc/ssh/sshd_config.d/10-a.off":  "PasswordAuthentication yes\n",
		}, want{"no", "etc/ssh/sshd_config.d/10-a.conf:1", nil}},
		{"Include after the setting (RHEL 8 style)", map[string]string{
			"etc/ssh/sshd_config":                  "PasswordAuthentication no\nInclude /etc/ssh/sshd_config.d/*.conf\n",
			"etc/ssh/sshd_config.d/50-redhat.conf": "PasswordAuthentication yes\n",
		}, want{"no", "etc/ssh/sshd_config:1", nil}},
		{"Include of several patterns and a missing file", map[string]string{
			"etc/ssh/sshd_config":      "Include /etc/ssh/none.conf \"/etc/ssh/extra dir/*.conf\"\n",
			"etc/ssh/extra dir/a.conf": "PasswordAuthentication no\n",
		}, want{"no", "etc/ssh/extra dir/a.conf:1", nil}},
		{"Match block is not global", map[string]string{
			"etc/ssh/sshd_config": "Match User admin\n  PasswordAuthentication yes\n",
		}, want{"", "", []string{"etc/ssh/sshd_config:2 (inside \"Match User admin\")"}}},
		{"Match blocks: first per block; global after Match is still Match", map[string]string{
			"etc/ssh/sshd_config": "PasswordAuthentication no\nMatch Address 10.0.0.0/8\n PasswordAuthentication yes\n PasswordAuthentication no\nMatch all\nPasswordAuthentication yes\n",
		}, want{"no", "etc/ssh/sshd_config:1", []string{
			"etc/ssh/sshd_config:3 (inside \"Match Address 10.0.0.0/8\")",
			"etc/ssh/sshd_config:6 (inside \"Match all\")",
		}}},
		{"Include inside a Match block includes into it", map[string]string{
			"etc/ssh/sshd_config": "Match Group sftp\n Include /etc/ssh/sftp.conf\n",
			"etc/ssh/sftp.conf":   "PasswordAuthentication yes\n",
		}, want{"", "", []string{"etc/ssh/sftp.conf:1 (inside \"Match Group sftp\")"}}},
		{"a Match in an included file ends with the file", map[string]string{
			"etc/ssh/sshd_config":          "Include /etc/ssh/sshd_config.d/*.conf\nPasswordAuthentication yes\n",
			"etc/ssh/sshd_config.d/a.conf": "Match User x\nPasswordAuthentication no\n",
		}, want{"yes", "etc/ssh/sshd_config:2", []string{"etc/ssh/sshd_config.d/a.conf:2 (inside \"Match User x\")"}}},
		{"Include loop is bounded", map[string]string{
			"etc/ssh/sshd_config": "Include /etc/ssh/sshd_config\nPasswordAuthentication no\n",
		}, want{"no", "etc/ssh/sshd_config:2", nil}},
		{"CRLF and tabs", map[string]string{"etc/ssh/sshd_config": "\r\n\tPasswordAuthentication\tno\r\n"}, want{"no", "etc/ssh/sshd_config:2", nil}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := ReadSSHDConfig(context.Background(), mapFS(tc.files))
			if err != nil {
				t.Fatal(err)
			}
			g, ok := c.Global("passwordauthentication")
			if ok != (tc.want.global != "") || g.Value() != tc.want.global || (ok && fmt.Sprintf("%s:%d", g.File, g.Line) != tc.want.where) {
				t.Errorf("Global = %q at %s:%d (set %v), want %q at %s", g.Value(), g.File, g.Line, ok, tc.want.global, tc.want.where)
			}
			var im []string
			for _, s := range c.InMatch("passwordauthentication") {
				im = append(im, s.Where())
			}
			if !slices.Equal(im, tc.want.inMatch) {
				t.Errorf("InMatch = %q, want %q", im, tc.want.inMatch)
			}
		})
	}
}

func TestReadSSHDConfigAbsentAndBounded(t *testing.T) {
	t.Parallel()
	if _, err := ReadSSHDConfig(context.Background(), fstest.MapFS{}); !errors.Is(err, ErrNoSSHDConfig) {
		t.Errorf("absent: %v", err)
	}
	files := map[string]string{"etc/ssh/sshd_config": "Include /etc/ssh/d/*\n"}
	for i := range 100 {
		files[fmt.Sprintf("etc/ssh/d/%03d", i)] = "Port 22\n"
	}
	files["etc/ssh/big"] = strings.Repeat("#", maxSSHDFileSize+1)
	files["etc/ssh/sshd_config"] += "Include /etc/ssh/big\n"
	c, err := ReadSSHDConfig(context.Background(), mapFS(files))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Files) != maxSSHDFiles || len(c.Problems) == 0 {
		t.Errorf("%d files read, problems %q", len(c.Files), c.Problems)
	}
}

// FuzzSSHDConfig feeds arbitrary bytes as sshd_config (including itself
// and a drop-in): no panic, and the resolution stays consistent.
func FuzzSSHDConfig(f *testing.F) {
	f.Add([]byte("Include /etc/ssh/sshd_config.d/*.conf\nPasswordAuthentication no\nMatch User a\n PasswordAuthentication yes\n"))
	f.Add([]byte("PasswordAuthentication=\"yes\" # c\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fsys := fstest.MapFS{
			"etc/ssh/sshd_config":          {Data: data},
			"etc/ssh/sshd_config.d/a.conf": {Data: data},
		}
		c, err := ReadSSHDConfig(context.Background(), fsys)
		if err != nil {
			t.Fatal(err)
		}
		if g, ok := c.Global("passwordauthentication"); ok && (g.Match != "" || g.Keyword != "passwordauthentication") {
			t.Fatalf("global %+v", g)
		}
		for _, s := range c.InMatch("passwordauthentication") {
			if s.Match == "" {
				t.Fatalf("in match %+v", s)
			}
		}
		for _, l := range strings.Split(string(data), "\n") {
			SplitSSHDLine(l)
		}
		in := newInspector(context.Background(), fsys, "vm-image")
		if _, err := in.run(); err != nil {
			t.Fatal(err)
		}
	})
}
