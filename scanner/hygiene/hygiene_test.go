package hygiene

import (
	"context"
	"encoding/json"
	"io/fs"
	"maps"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/scanner"
)

const (
	sha512Hash = "$6$mEUhqoKrdiwMnsE5$5suEqNYtHrBxROd4bPvAIgVih77EtvFZS9LAbpcMANkeVoxeitUFm/yPrCSoQgsbs9Mu5OqqgbJB/DtBBeEZQ1"
	pubKey     = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGZ0ZXN0a2V5Zm9ydGhlc2Nhbm5lcnRlc3RzMTIz seller@laptop"
	// cloudInitKey is what cloud-init's disable_root writes to root's
	// authorized_keys (Ubuntu cloud images).
	cloudInitKey = `no-port-forwarding,no-agent-forwarding,no-X11-forwarding,command="echo 'Please login as the user \"ubuntu\" rather than the user \"root\".';echo;sleep 10;exit 142" ` + pubKey
	// secrets that must never appear in a message
	secretPW    = "S3cr3t-Pa55w0rd"
	secretToken = "ghp_abcdefghijklmnopqrstuvwxyz0123456789"
)

// cleanImage is a VM image that passes every hygiene rule: locked root,
// sshd with key logins only, empty machine id, cloud-init, empty logs.
func cleanImage() map[string]string {
	return map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/bash\n" +
			"daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n" +
			"ubuntu:x:1000:1000:Ubuntu:/home/ubuntu:/bin/bash\n",
		"etc/shadow":                       "root:*:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\nubuntu:!:19000:0:99999:7:::\n",
		"etc/ssh/sshd_config":              "Include /etc/ssh/sshd_config.d/*.conf\nPermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n",
		"etc/ssh/sshd_config.d/README":     "not included: no .conf suffix\nPasswordAuthentication yes\n",
		"etc/machine-id":                   "",
		"etc/cloud/cloud.cfg":              "disable_root: true\n",
		"usr/bin/cloud-init":               "#!/usr/bin/python3\n",
		"root/.bashrc":                     "# ~/.bashrc\n",
		"root/.bash_history":               "",
		"home/ubuntu/.bashrc":              "# ~/.bashrc\n",
		"home/ubuntu/.viminfo":             "",
		"home/ubuntu/.ssh/authorized_keys": "",
		"root/.ssh/authorized_keys":        cloudInitKey + "\n",
		"var/log/syslog":                   "",
		"var/log/apt/history.log":          "",
		"var/log/wtmp":                     "",
		"var/log/lastlog":                  strings.Repeat("\x00", 292*3),
		"var/log/journal/":                 "",
		"var/log/README":                   "a non-log file: not reported\n",
		"home/ubuntu/.docker/config.json":  `{"auths":{"registry.example.com":{}},"credsStore":"secretservice"}`,
		"home/ubuntu/.my.cnf":              "[client]\nuser=app\n",
		"home/ubuntu/.aws/config":          "[default]\nregion = eu-west-1\n",
		"home/ubuntu/.kube/config":         "apiVersion: v1\nusers:\n- name: u\n  user:\n    exec:\n      command: aws\n",
	}
}

func mapFS(files map[string]string) fstest.MapFS {
	m := fstest.MapFS{}
	for name, content := range files {
		if strings.HasSuffix(name, "/") {
			m[strings.TrimSuffix(name, "/")] = &fstest.MapFile{Mode: fs.ModeDir | 0o755}
			continue
		}
		m[name] = &fstest.MapFile{Data: []byte(content), Mode: 0o644}
	}
	return m
}

func inspect(t *testing.T, fsys fs.FS, k assetscan.Kind) []assetscan.Finding {
	t.Helper()
	got, err := Inspect(context.Background(), fsys, k, Options{})
	if err != nil {
		t.Fatalf("Inspect: %v", err)
	}
	checkFindings(t, got)
	return got
}

// checkFindings checks the invariants of every finding: check name, known
// rule, relative path, a message without secrets.
func checkFindings(t *testing.T, got []assetscan.Finding) {
	t.Helper()
	for _, f := range got {
		if f.Check != CheckName || !slices.Contains(Rules, f.Rule) {
			t.Errorf("finding %+v: check %q rule %q", f, f.Check, f.Rule)
		}
		if strings.HasPrefix(f.Path, "/") || f.Message == "" {
			t.Errorf("finding %+v: leading slash or no message", f)
		}
		for _, s := range []string{secretPW, secretToken, sha512Hash, "AAAAC3Nza"} {
			if strings.Contains(f.Message, s) {
				t.Errorf("finding %+v: message leaks a secret", f)
			}
		}
	}
}

// summary renders findings as sorted "rule path" lines.
func summary(fs []assetscan.Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Rule+" "+f.Path)
	}
	slices.Sort(out)
	return out
}

func TestCleanImage(t *testing.T) {
	t.Parallel()
	for _, k := range []assetscan.Kind{assetscan.KindVMImage, assetscan.KindContainerImage} {
		if got := inspect(t, mapFS(cleanImage()), k); len(got) != 0 {
			t.Errorf("%s: clean image has findings:\n%s", k, strings.Join(summary(got), "\n"))
		}
	}
}

func TestRules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		add    map[string]string
		del    []string
		kind   assetscan.Kind // default VM
		want   []string       // "rule path", sorted
		inMsgs []string
	}{
		// shell history
		{name: "bash history of root", add: map[string]string{"root/.bash_history": "ls\nsudo su\n"},
			want: []string{"hygiene.shell_history root/.bash_history"}, inMsgs: []string{`account "root"`, "11 bytes"}},
		{name: "every history file in a passwd home outside /home",
			add: map[string]string{
				"etc/passwd":           cleanImage()["etc/passwd"] + "svc:x:998:998::/srv/svc:/bin/sh\n",
				"srv/svc/.zsh_history": "x", "srv/svc/.sh_history": "x", "srv/svc/.history": "x",
				"srv/svc/.python_history": "x", "srv/svc/.mysql_history": "x", "srv/svc/.psql_history": "x",
				"srv/svc/.lesshst": "x", "home/ubuntu/.viminfo": "x",
			},
			want: []string{
				"hygiene.shell_history home/ubuntu/.viminfo", "hygiene.shell_history srv/svc/.history",
				"hygiene.shell_history srv/svc/.lesshst", "hygiene.shell_history srv/svc/.mysql_history",
				"hygiene.shell_history srv/svc/.psql_history", "hygiene.shell_history srv/svc/.python_history",
				"hygiene.shell_history srv/svc/.sh_history", "hygiene.shell_history srv/svc/.zsh_history",
			}, inMsgs: []string{`account "svc"`, `account "ubuntu"`}},
		{name: "a home under home/ without a passwd entry", add: map[string]string{"home/olduser/.bash_history": "x"},
			want: []string{"hygiene.shell_history home/olduser/.bash_history"}},
		{name: "history as a directory or empty is clean", add: map[string]string{"root/.history/": "", "root/.zsh_history": ""}},

		// sshd password authentication
		{name: "PasswordAuthentication yes", add: map[string]string{"etc/ssh/sshd_config": "PasswordAuthentication yes\n"},
			want: []string{"hygiene.ssh_password_auth etc/ssh/sshd_config"}, inMsgs: []string{"etc/ssh/sshd_config:1"}},
		{name: "PasswordAuthentication unset: OpenSSH default yes", add: map[string]string{"etc/ssh/sshd_config": "PermitRootLogin no\n"},
			want: []string{"hygiene.ssh_password_auth etc/ssh/sshd_config"}, inMsgs: []string{"default is yes"}},
		{name: "Include file sets yes before the main file's no (cloud-init 50-cloud-init.conf)",
			add:  map[string]string{"etc/ssh/sshd_config.d/50-cloud-init.conf": "PasswordAuthentication yes\n"},
			want: []string{"hygiene.ssh_password_auth etc/ssh/sshd_config.d/50-cloud-init.conf"}},
		{name: "yes only in a Match block", add: map[string]string{"etc/ssh/sshd_config": "PasswordAuthentication no\nMatch User admin\n  PasswordAuthentication yes\n"},
			want: []string{"hygiene.ssh_password_auth etc/ssh/sshd_config"}, inMsgs: []string{`Match User admin`, "some connections"}},
		{name: "no sshd_config: no ssh findings", del: []string{"etc/ssh/sshd_config"}},

		// root login
		{name: "PermitRootLogin yes", add: map[string]string{"etc/ssh/sshd_config": "PasswordAuthentication no\nPermitRootLogin yes\n"},
			want: []string{"hygiene.root_login etc/ssh/sshd_config"}, inMsgs: []string{"PermitRootLogin yes at etc/ssh/sshd_config:2"}},
		{name: "root password and login shell", add: map[string]string{"etc/shadow": "root:" + sha512Hash + ":19000:0:99999:7:::\n"},
			want: []string{"hygiene.root_login etc/shadow"}, inMsgs: []string{"usable password hash", "/bin/bash"}},
		{name: "root empty password in passwd", add: map[string]string{"etc/passwd": "root::0:0:root:/root:/bin/sh\n"},
			want: []string{"hygiene.root_login etc/passwd"}, inMsgs: []string{"empty password"}},
		{name: "root password but nologin shell", add: map[string]string{
			"etc/passwd": "root:x:0:0:root:/root:/sbin/nologin\n", "etc/shadow": "root:" + sha512Hash + ":19000::::::\n"}},
		{name: "root key without forced command, PermitRootLogin unset", add: map[string]string{
			"etc/ssh/sshd_config":       "PasswordAuthentication no\n",
			"root/.ssh/authorized_keys": cloudInitKey + "\n" + pubKey + "\n"},
			want: []string{"hygiene.root_login root/.ssh/authorized_keys"}, inMsgs: []string{"1 SSH key line", "default since 7.0"}},
		{name: "root key, PermitRootLogin no", add: map[string]string{
			"etc/ssh/sshd_config":       "PasswordAuthentication no\nPermitRootLogin no\n",
			"root/.ssh/authorized_keys": pubKey + "\n"}},
		{name: "root key with any forced command", add: map[string]string{
			"root/.ssh/authorized_keys": `command="/usr/local/bin/backup",no-pty ` + pubKey + "\n"}},
		{name: "root key in AuthorizedKeysFile location", add: map[string]string{
			"etc/ssh/sshd_config":       "AuthorizedKeysFile /etc/ssh/keys/%u\nPasswordAuthentication no\n",
			"etc/ssh/keys/root":         pubKey + "\n",
			"root/.ssh/authorized_keys": pubKey + "\n", // not read by sshd any more
		}, want: []string{"hygiene.root_login etc/ssh/keys/root"}},
		{name: "root home from passwd", add: map[string]string{
			"etc/passwd":                     "root:x:0:0:root:/var/root:/bin/bash\n",
			"var/root/.ssh/authorized_keys2": pubKey + "\n"},
			want: []string{"hygiene.root_login var/root/.ssh/authorized_keys2"}},
		{name: "root keys but no sshd", del: []string{"etc/ssh/sshd_config"}, add: map[string]string{"root/.ssh/authorized_keys": pubKey + "\n"}},

		// logs
		{name: "logs", add: map[string]string{
			"var/log/syslog": "x", "var/log/apt/history.log": "x", "var/log/auth.log.1": "x", "var/log/dpkg.log.2.gz": "x",
			"var/log/messages-20240101": "x", "var/log/nginx/access.log": "x",
			"var/log/journal/0123/system.journal": "LPKSHHRH", "var/log/README": "x",
		}, want: []string{
			"hygiene.log_files var/log/apt/history.log", "hygiene.log_files var/log/auth.log.1",
			"hygiene.log_files var/log/dpkg.log.2.gz", "hygiene.log_files var/log/journal/0123/system.journal",
			"hygiene.log_files var/log/messages-20240101", "hygiene.log_files var/log/nginx/access.log",
			"hygiene.log_files var/log/syslog",
		}, inMsgs: []string{"rotated log", "journal"}},
		{name: "login records with entries", add: map[string]string{
			"var/log/wtmp": "\x07\x00\x00\x00" + strings.Repeat("\x00", 380), "var/log/btmp": "\x06",
			"var/log/lastlog": strings.Repeat("\x00", 292) + "\x01" + strings.Repeat("\x00", 291),
		}, want: []string{"hygiene.log_files var/log/btmp", "hygiene.log_files var/log/lastlog", "hygiene.log_files var/log/wtmp"},
			inMsgs: []string{"login record"}},
		{name: "zero-filled login records", add: map[string]string{"var/log/wtmp": strings.Repeat("\x00", 384), "var/log/btmp": strings.Repeat("\x00", 10)}},

		// machine id
		{name: "machine-id set", add: map[string]string{"etc/machine-id": "0123456789abcdef0123456789abcdef\n"},
			want: []string{"hygiene.machine_id etc/machine-id"}},
		{name: "machine-id uninitialized", add: map[string]string{"etc/machine-id": "uninitialized\n"}},
		{name: "dbus machine-id and persistent net rules", add: map[string]string{
			"var/lib/dbus/machine-id":                  "0123456789abcdef0123456789abcdef\n",
			"etc/udev/rules.d/70-persistent-net.rules": "# generated\nSUBSYSTEM==\"net\", ATTR{address}==\"52:54:00:12:34:56\", NAME=\"eth0\"\n",
		}, want: []string{"hygiene.machine_id etc/udev/rules.d/70-persistent-net.rules", "hygiene.machine_id var/lib/dbus/machine-id"}},
		{name: "persistent net rules with comments only", add: map[string]string{"etc/udev/rules.d/70-persistent-net.rules": "# empty\n\n"}},

		// provisioning agent
		{name: "no cloud-init in a VM image", del: []string{"usr/bin/cloud-init", "etc/cloud/cloud.cfg"},
			want: []string{"hygiene.no_cloud_init etc/cloud/cloud.cfg"}},
		{name: "no cloud-init in a container image", del: []string{"usr/bin/cloud-init", "etc/cloud/cloud.cfg"}, kind: assetscan.KindContainerImage},
		{name: "waagent", del: []string{"usr/bin/cloud-init", "etc/cloud/cloud.cfg"}, add: map[string]string{"usr/sbin/waagent": "#!"}},
		{name: "ignition", del: []string{"usr/bin/cloud-init", "etc/cloud/cloud.cfg"}, add: map[string]string{"usr/lib/dracut/modules.d/30ignition/ignition": "x"}},

		// credentials
		{name: "credential files", add: map[string]string{
			"root/.git-credentials":                                          "https://u:" + secretToken + "@github.com\n",
			"root/.netrc":                                                    "machine example.com login u password " + secretPW + "\n",
			"home/ubuntu/.pgpass":                                            "db:5432:app:app:" + secretPW + "\n",
			"home/ubuntu/.my.cnf":                                            "[client]\nuser=app\npassword = " + secretPW + "\n",
			"home/ubuntu/.docker/config.json":                                `{"auths":{"r.example.com":{"auth":"dTpw"}}}`,
			"home/ubuntu/.aws/credentials":                                   "[default]\naws_access_key_id = AKIAEXAMPLE\naws_secret_access_key = " + secretPW + "\n",
			"home/ubuntu/.kube/config":                                       "users:\n- name: u\n  user:\n    token: " + secretToken + "\n",
			"root/.config/gcloud/credentials.db":                             "SQLite",
			"root/.config/gcloud/application_default_credentials.json":       "{}",
			"root/.config/gcloud/legacy_credentials/me@example.com/adc.json": "{}",
		}, want: []string{
			"hygiene.temp_credentials home/ubuntu/.aws/credentials", "hygiene.temp_credentials home/ubuntu/.docker/config.json",
			"hygiene.temp_credentials home/ubuntu/.kube/config", "hygiene.temp_credentials home/ubuntu/.my.cnf",
			"hygiene.temp_credentials home/ubuntu/.pgpass", "hygiene.temp_credentials root/.config/gcloud/application_default_credentials.json",
			"hygiene.temp_credentials root/.config/gcloud/credentials.db",
			"hygiene.temp_credentials root/.config/gcloud/legacy_credentials/me@example.com/adc.json",
			"hygiene.temp_credentials root/.git-credentials", "hygiene.temp_credentials root/.netrc",
		}, inMsgs: []string{`account "ubuntu"`, `account "root"`}},
		{name: "credential files without credentials", add: map[string]string{
			"root/.git-credentials": "\n# none\n", "root/.netrc": "machine example.com login u\n",
			"home/ubuntu/.pgpass":                "# host:port:db:user:password\ndb:5432:app:app:\n",
			"home/ubuntu/.docker/config.json":    `{"auths":{"r.example.com":{"auth":""}}}`,
			"home/ubuntu/.aws/credentials":       "[default]\n# aws_secret_access_key =\n",
			"home/ubuntu/.kube/config":           "users:\n- name: u\n  user:\n    client-certificate: /x\n",
			"root/.config/gcloud/credentials.db": "",
		}},
		{name: "docker config in a container image", kind: assetscan.KindContainerImage,
			add:  map[string]string{"root/.docker/config.json": `{"auths":{"r":{"identitytoken":"x"}}}`},
			want: []string{"hygiene.temp_credentials root/.docker/config.json"}},
		{name: "too large: unreadable", add: map[string]string{"root/.my.cnf": strings.Repeat("#", MaxFileSize+1)},
			want: []string{"hygiene.unreadable root/.my.cnf"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			files := cleanImage()
			for _, d := range tc.del {
				delete(files, d)
			}
			maps.Copy(files, tc.add)
			k := tc.kind
			if k == "" {
				k = assetscan.KindVMImage
			}
			got := inspect(t, mapFS(files), k)
			if s := summary(got); !slices.Equal(s, tc.want) {
				t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(s, "\n"), strings.Join(tc.want, "\n"))
			}
			var msgs []string
			for _, f := range got {
				msgs = append(msgs, f.Message)
			}
			all := strings.Join(msgs, "\n")
			for _, m := range tc.inMsgs {
				if !strings.Contains(all, m) {
					t.Errorf("no message contains %q:\n%s", m, all)
				}
			}
		})
	}
}

func TestManyLogsSummarized(t *testing.T) {
	t.Parallel()
	files := cleanImage()
	for i := range 40 {
		files["var/log/app/"+strings.Repeat("a", i+1)+".log"] = "x"
	}
	got := inspect(t, mapFS(files), assetscan.KindVMImage)
	if len(got) != maxLogFindings+1 {
		t.Fatalf("%d findings, want %d", len(got), maxLogFindings+1)
	}
	last := got[len(got)-1]
	if last.Path != "var/log" || !strings.Contains(last.Message, "8 more") {
		t.Errorf("summary finding %+v", last)
	}
}

func TestSymlinks(t *testing.T) {
	t.Parallel()
	files := mapFS(cleanImage())
	// .bash_history -> /dev/null is the usual way to keep history empty.
	files["root/.bash_history"] = &fstest.MapFile{Data: []byte("/dev/null"), Mode: fs.ModeSymlink | 0o777}
	// machine-id through a link. (No link loop: fstest.MapFS recurses
	// forever on one; the disk image file systems bound their hops.)
	files["etc/machine-id"] = &fstest.MapFile{Data: []byte("../var/lib/id"), Mode: fs.ModeSymlink | 0o777}
	files["var/lib/id"] = &fstest.MapFile{Data: []byte("0123456789abcdef\n"), Mode: 0o644}
	// a link out of the root stays inside.
	files["root/.git-credentials"] = &fstest.MapFile{Data: []byte("../../../../etc/hostname"), Mode: fs.ModeSymlink | 0o777}
	got := inspect(t, files, assetscan.KindVMImage)
	want := []string{"hygiene.machine_id etc/machine-id"}
	if s := summary(got); !slices.Equal(s, want) {
		t.Errorf("findings %v, want %v", s, want)
	}
}

func TestGarbage(t *testing.T) {
	t.Parallel()
	files := cleanImage()
	for _, p := range []string{"etc/passwd", "etc/shadow", "etc/ssh/sshd_config", "root/.docker/config.json",
		"root/.kube/config", "root/.pgpass", "root/.netrc", "root/.my.cnf", "root/.aws/credentials"} {
		files[p] = "\x00\xff::::\n\"unterminated\n:{[&a *a\nmacdef\n" + strings.Repeat("\\", 100)
	}
	_, err := Inspect(context.Background(), mapFS(files), assetscan.KindVMImage, Options{})
	if err != nil {
		t.Fatal(err)
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	c := New(Options{})
	if c.Name() != CheckName {
		t.Errorf("Name() = %q", c.Name())
	}
	a, ok := c.(interface{ AppliesTo(assetscan.Kind) bool })
	if !ok || a.AppliesTo(assetscan.KindPackage) || !a.AppliesTo(assetscan.KindVMImage) || !a.AppliesTo(assetscan.KindContainerImage) {
		t.Error("AppliesTo: want images only")
	}
	if _, err := c.Run(context.Background(), &scanner.Target{Kind: assetscan.KindVMImage}); err == nil {
		t.Error("Run without RootFS: no error")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Run(ctx, &scanner.Target{Kind: assetscan.KindVMImage, RootFS: mapFS(cleanImage())}); err == nil {
		t.Error("Run with a cancelled context: no error")
	}
	files := cleanImage()
	files["root/.bash_history"] = "x"
	res, err := c.Run(context.Background(), &scanner.Target{Kind: assetscan.KindVMImage, RootFS: mapFS(files)})
	if err != nil || len(res.Findings) != 1 || res.Detail == "" {
		t.Errorf("Run = %+v, %v", res, err)
	}
}

func TestEOLFinding(t *testing.T) {
	t.Parallel()
	osi := &assetscan.OSInfo{Family: "centos", Name: "7.9.2009"}
	if f := EOLFinding(osi, false); f != nil {
		t.Errorf("not EOL: %+v", f)
	}
	if f := EOLFinding(nil, true); f != nil {
		t.Errorf("no OS: %+v", f)
	}
	f := EOLFinding(osi, true)
	if f == nil || f.Rule != RuleEOLOS || f.Check != CheckName || !strings.Contains(f.Message, "centos 7.9.2009") {
		t.Errorf("EOL: %+v", f)
	}
	b, _ := json.Marshal(f)
	if strings.Contains(string(b), `"path":"/`) {
		t.Errorf("path: %s", b)
	}
}

func TestAliasAndRules(t *testing.T) {
	t.Parallel()
	if r, ok := Alias(RuleSSHHostKeys); !ok || r != "account.ssh_host_key" {
		t.Errorf("Alias(%q) = %q, %v", RuleSSHHostKeys, r, ok)
	}
	if r, ok := Alias(RuleLogFiles); ok || r != RuleLogFiles {
		t.Errorf("Alias(%q) = %q, %v", RuleLogFiles, r, ok)
	}
	seen := map[string]bool{}
	for _, r := range Rules {
		if seen[r] || !strings.HasPrefix(r, "hygiene.") {
			t.Errorf("Rules: %q duplicated or not hygiene.*", r)
		}
		seen[r] = true
	}
}
