package accounts

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/scanner"
)

// Hashes made with mkpasswd (whois 5.5.17, libxcrypt).
const (
	sha512Root   = "$6$mEUhqoKrdiwMnsE5$5suEqNYtHrBxROd4bPvAIgVih77EtvFZS9LAbpcMANkeVoxeitUFm/yPrCSoQgsbs9Mu5OqqgbJB/DtBBeEZQ1"
	sha512Strong = "$6$VjoHZ/Z/eCWgOKHA$wNwcXtBybGcS40UWOxk6O5ofhiatEts3pQlszhxr8V9gsMqeWAF2BUv3xTJ.jqC5LJyNs0p2L4UDoVgU//N7B0" // x7#Qm!v9Lr2zpZ
	sha512Ubuntu = "$6$rounds=1000$.5p2gW8GKyJsM/wU$fuTCzNsApN6CqyQsj6/KU5e7BvchJYjDn.uXhQRRKY4GqG7Ru5Q4LwPdQaBkpXsJM8AXhXkZXGOL.BazIaur21"
	sha256Pass   = "$5$hXZIJ7WTvszAoQPo$W/o7N1oyU/xSA8AmiYwwURFQND.8uxHcLAWqt5KVUa7"
	md5Changeme  = "$1$nSJtoeUe$UOndYL2Cd63Np0rcp/QUW0"
	bcryptAdmin  = "$2b$05$NnDcipu4u4xfCOwDhFzCU.N9g5mIqps.Cy0oQEpVhpGYxF93vuBmK"
	bcryptARoot  = "$2a$05$3FnV2oT6YpanInkn3TEUQutpjMWqsH/8sQ8AD8q42R.89VWth4K0e"
	yesRoot      = "$y$j9T$1ALVazXwFxWHB8Eidg4uZ/$lNmu8HCliXFs.Cj1.sKlz8Q6wKwvriQFpO2l94zc36B"
	yes123456    = "$y$j9T$fhMhyUzBIpwt2jnXq59hc/$cq8BcBBUc1/.3EwPhll..luIIeee.ugCo3FfCOzNDu6"
	yesStrongR1  = "$y$j75$zuycQG8vgfdpkiPDDVUdP.$P8rZQuVlp60Xvk2aKOHwwPabOUDdcLDA35iP5RzivNB" // x7#Qm!v9Lr2zpZ, cost 1
	yesQwertyR1  = "$y$j75$TdYSQHjgnz5OA4LnC6EYw.$R/Bw6DCPlPEmLvUrskKfLv5cjvxjOcd83TqO1UgbRm3"
	scryptToor   = "$7$CU..../....2VVhi8wB8lHn/RcBneags.$ZZMgEc31lTOJPIni8bjOWhE53Qz1kek5O8ShZiliPM7"
	scryptTiny   = "$7$06..../....SodiumChloride$ENlyo6fGw4PCcDBOFepfSZjFUnVatHzCcW55.ZGz3B0" // pleaseletmein, N=16 (yescrypt TESTS-OK)
	desRoot      = "Ibxkibm3Z.CDw"
	gostRoot     = "$gy$j9T$OETLoKRARtZpPDiwMkqi70$utsMxJAXqJ0GYnAUjq.35oTkuvGZhvgFe8qwuzo2BW."
	strongPW     = "x7#Qm!v9Lr2zpZ"
)

// allHashes lists every hash used in fixtures, for the leak test.
var allHashes = []string{sha512Root, sha512Strong, sha512Ubuntu, sha256Pass, md5Changeme, bcryptAdmin,
	bcryptARoot, yesRoot, yes123456, yesStrongR1, yesQwertyR1, scryptToor, scryptTiny, desRoot, gostRoot}

const rsaPrivate = `-----BEGIN RSA PRIVATE KEY-----
MIIEowIBAAKCAQEAx0Qe7a5S3bYp9iU1K8cVLqIhnmN1Qm0BfjA2z2z8vP0ZxXcF
-----END RSA PRIVATE KEY-----
`

const opensshPrivate = `-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
-----END OPENSSH PRIVATE KEY-----
`

const pubKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGZ0ZXN0a2V5Zm9ydGhlc2Nhbm5lcnRlc3RzMTIz seller@laptop\n"

func file(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s), Mode: 0o644} }

func passwd(lines ...string) *fstest.MapFile { return file(strings.Join(lines, "\n") + "\n") }

const basePasswd = "root:x:0:0:root:/root:/bin/bash\n" +
	"daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n" +
	"nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"

// fastOpts keep tests quick and deterministic on a loaded machine: a short
// candidate list, and a time bound that is never hit.
var fastOpts = Options{WeakPasswords: []string{"123456", "password", "changeme", "toor"}, MaxHashTime: time.Minute}

func inspect(t *testing.T, fsys fs.FS, opt Options) []assetscan.Finding {
	t.Helper()
	got, err := Inspect(context.Background(), fsys, opt)
	if err != nil {
		t.Fatalf("Inspect: %v", err)
	}
	for _, f := range got {
		if f.Check != assetscan.CheckAccount {
			t.Errorf("finding %+v: check %q", f, f.Check)
		}
		if strings.HasPrefix(f.Path, "/") {
			t.Errorf("finding %+v: path has a leading slash", f)
		}
		if f.Message == "" {
			t.Errorf("finding %+v: no message", f)
		}
	}
	return got
}

// summary renders findings as "rule path" lines, sorted, for comparison.
func summary(fs []assetscan.Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Rule+" "+f.Path)
	}
	slices.Sort(out)
	return out
}

func find(fs []assetscan.Finding, rule string) []assetscan.Finding {
	var out []assetscan.Finding
	for _, f := range fs {
		if f.Rule == rule {
			out = append(out, f)
		}
	}
	return out
}

func TestPasswords(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		files  fstest.MapFS
		opt    *Options
		want   []string // "rule path", sorted
		inMsgs []string // substrings some message must contain
	}{
		{
			name: "root sha512 equal to the account name",
			files: fstest.MapFS{
				"etc/passwd": file(basePasswd),
				"etc/shadow": passwd("root:"+sha512Root+":19000:0:99999:7:::", "daemon:*:19000:0:99999:7:::", "nobody:*:19000:0:99999:7:::"),
			},
			want:   []string{"account.preset_password etc/shadow", "account.weak_password etc/shadow"},
			inMsgs: []string{`account "root"`, "sha512crypt", "matches a common or guessable password"},
		},
		{
			name: "strong sha512: preset only",
			files: fstest.MapFS{
				"etc/passwd": file(basePasswd),
				"etc/shadow": passwd("root:" + sha512Strong + ":19000:0:99999:7:::"),
			},
			want: []string{"account.preset_password etc/shadow"},
		},
		{
			name: "sha512 with rounds, password is the account name",
			files: fstest.MapFS{
				"etc/passwd": passwd("ubuntu:x:1000:1000::/home/ubuntu:/bin/bash"),
				"etc/shadow": passwd("ubuntu:" + sha512Ubuntu + ":19000::::::"),
			},
			want: []string{"account.preset_password etc/shadow", "account.weak_password etc/shadow"},
		},
		{
			name: "sha256, md5, bcrypt and scrypt from the list or the name",
			files: fstest.MapFS{
				"etc/passwd": passwd("a:x:1:1::/a:/bin/sh", "b:x:2:2::/b:/bin/sh", "admin:x:3:3::/admin:/bin/sh", "c:x:4:4::/c:/bin/sh", "d:x:5:5::/d:/bin/sh"),
				"etc/shadow": passwd("a:"+sha256Pass+":1::::::", "b:"+md5Changeme+":1::::::", "admin:"+bcryptAdmin+":1::::::", "c:"+scryptTiny+":1::::::", "d:"+bcryptARoot+":1::::::"),
			},
			opt: &Options{WeakPasswords: []string{"password", "changeme", "pleaseletmein", "root"}, MaxHashTime: time.Minute},
			want: []string{
				"account.preset_password etc/shadow", "account.preset_password etc/shadow", "account.preset_password etc/shadow",
				"account.preset_password etc/shadow", "account.preset_password etc/shadow",
				"account.weak_password etc/shadow", "account.weak_password etc/shadow", "account.weak_password etc/shadow",
				"account.weak_password etc/shadow", "account.weak_password etc/shadow",
			},
			inMsgs: []string{"sha256crypt", "md5crypt", "bcrypt", "scrypt"},
		},
		{
			name: "empty password in shadow",
			files: fstest.MapFS{
				"etc/passwd": file(basePasswd),
				"etc/shadow": passwd("root::19000:0:99999:7:::", "daemon:*:19000:0:99999:7:::"),
			},
			want:   []string{"account.empty_password etc/shadow"},
			inMsgs: []string{`account "root"`, "without a password"},
		},
		{
			name: "empty password in passwd without shadow (Alpine CVE-2019-5021 style)",
			files: fstest.MapFS{
				"etc/passwd": passwd("root::0:0:root:/root:/bin/ash", "guest:x:405:100:guest:/dev/null:/sbin/nologin"),
			},
			want: []string{"account.empty_password etc/passwd"},
		},
		{
			name: "locked and disabled accounts",
			files: fstest.MapFS{
				"etc/passwd": passwd("a:x:1:1::/:/bin/sh", "b:x:2:2::/:/bin/sh", "c:x:3:3::/:/bin/sh", "d:x:4:4::/:/bin/sh",
					"e:x:5:5::/:/bin/sh", "f:x:6:6::/:/bin/sh", "g:x:7:7::/:/bin/sh", "h:*:8:8::/:/bin/sh", "i:!:9:9::/:/bin/sh"),
				"etc/shadow": passwd("a:!:1::::::", "b:*:1::::::", "c:!!:1::::::", "d:!"+sha512Root+":1::::::",
					"e:*LK*:1::::::", "f:x:1::::::", "g:NP:1::::::", "h:*:1::::::", "i:!*:1::::::"),
			},
			want: nil,
		},
		{
			name: "legacy hash in passwd",
			files: fstest.MapFS{
				"etc/passwd": passwd("root:" + sha512Root + ":0:0:root:/root:/bin/sh"),
			},
			want: []string{"account.preset_password etc/passwd", "account.weak_password etc/passwd"},
		},
		{
			name: "unsupported schemes",
			files: fstest.MapFS{
				"etc/passwd": passwd("a:x:1:1::/:/bin/sh", "b:x:2:2::/:/bin/sh", "c:x:3:3::/:/bin/sh"),
				"etc/shadow": passwd("a:"+desRoot+":1::::::", "b:"+gostRoot+":1::::::", "c:$sha1$19703$abcdefgh$0123456789abcdefghijklmnopqr:1::::::"),
			},
			want: []string{
				"account.preset_password etc/shadow", "account.preset_password etc/shadow", "account.preset_password etc/shadow",
				"account.unsupported_hash etc/shadow", "account.unsupported_hash etc/shadow", "account.unsupported_hash etc/shadow",
			},
			inMsgs: []string{"descrypt (DES)", "gost-yescrypt", "sha1crypt"},
		},
		{
			name: "costs too high to try",
			files: fstest.MapFS{
				"etc/passwd": passwd("a:x:1:1::/:/bin/sh", "b:x:2:2::/:/bin/sh", "c:x:3:3::/:/bin/sh"),
				"etc/shadow": passwd(
					"a:"+strings.Replace(bcryptAdmin, "$05$", "$31$", 1)+":1::::::",
					"b:$y$jFT$1ALVazXwFxWHB8Eidg4uZ/$lNmu8HCliXFs.Cj1.sKlz8Q6wKwvriQFpO2l94zc36B:1::::::",
					"c:$6$rounds=999999999$mEUhqoKrdiwMnsE5$5suEqNYtHrBxROd4bPvAIgVih77EtvFZS9LAbpcMANkeVoxeitUFm/yPrCSoQgsbs9Mu5OqqgbJB/DtBBeEZQ1:1::::::"),
			},
			want: []string{
				"account.preset_password etc/shadow", "account.preset_password etc/shadow", "account.preset_password etc/shadow",
				"account.weak_password_unchecked etc/shadow", "account.weak_password_unchecked etc/shadow", "account.weak_password_unchecked etc/shadow",
			},
			inMsgs: []string{"cost 31", "999999999 rounds", "256 MiB"},
		},
		{
			name: "yescrypt strong password: preset only",
			files: fstest.MapFS{
				"etc/passwd": passwd("deploy:x:1000:1000::/srv/deploy:/bin/bash"),
				"etc/shadow": passwd("deploy:" + yesStrongR1 + ":19000:0:99999:7:::"),
			},
			want: []string{"account.preset_password etc/shadow"},
		},
		{
			name: "yescrypt weak password from the list",
			files: fstest.MapFS{
				"etc/passwd": passwd("deploy:x:1000:1000::/srv/deploy:/bin/bash"),
				"etc/shadow": passwd("deploy:" + yesQwertyR1 + ":19000:0:99999:7:::"),
			},
			opt:  &Options{WeakPasswords: []string{"123456", "qwerty"}, MaxHashTime: time.Minute},
			want: []string{"account.preset_password etc/shadow", "account.weak_password etc/shadow"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opt := fastOpts
			if tc.opt != nil {
				opt = *tc.opt
			}
			got := inspect(t, tc.files, opt)
			if s := summary(got); !slices.Equal(s, tc.want) {
				t.Errorf("findings:\n got %q\nwant %q", s, tc.want)
				for _, f := range got {
					t.Logf("  %s %s: %s", f.Rule, f.Path, f.Message)
				}
			}
			all := ""
			for _, f := range got {
				all += f.Message + "\n"
			}
			for _, s := range tc.inMsgs {
				if !strings.Contains(all, s) {
					t.Errorf("no message mentions %q:\n%s", s, all)
				}
			}
		})
	}
}

// A default-cost yescrypt hash (what Debian 12 / Ubuntu 22.04+ write) of a
// guessable password is found with the default options and time bound.
func TestYescryptWeakWithinDefaultBound(t *testing.T) {
	t.Parallel()
	fsys := fstest.MapFS{
		"etc/passwd": file(basePasswd),
		"etc/shadow": passwd("root:" + yesRoot + ":19000:0:99999:7:::"),
	}
	start := time.Now()
	got := inspect(t, fsys, Options{})
	t.Logf("default options, yescrypt: %v", time.Since(start))
	want := []string{"account.preset_password etc/shadow", "account.weak_password etc/shadow"}
	if s := summary(got); !slices.Equal(s, want) {
		t.Fatalf("got %q, want %q", s, want)
	}
	// From the default list, a few dozen candidates in: give it room.
	fsys = fstest.MapFS{
		"etc/passwd": passwd("deploy:x:1000:1000::/srv/deploy:/bin/bash"),
		"etc/shadow": passwd("deploy:" + yes123456 + ":19000:0:99999:7:::"),
	}
	got = inspect(t, fsys, Options{MaxHashTime: time.Minute})
	if s := summary(got); !slices.Equal(s, want) {
		t.Fatalf("got %q, want %q", s, want)
	}
}

func TestTimeBound(t *testing.T) {
	t.Parallel()
	many := make([]string, 5000)
	for i := range many {
		many[i] = fmt.Sprintf("candidate%04d", i)
	}
	for _, h := range []string{sha512Strong, yesRoot, bcryptAdmin} {
		t.Run(schemeOf(h), func(t *testing.T) {
			t.Parallel()
			fsys := fstest.MapFS{
				"etc/passwd": passwd("svc:x:1000:1000::/home/svc:/bin/sh"),
				"etc/shadow": passwd("svc:" + h + ":1::::::"),
			}
			start := time.Now()
			got := inspect(t, fsys, Options{WeakPasswords: many, MaxHashTime: 20 * time.Millisecond})
			el := time.Since(start)
			un := find(got, RuleWeakPasswordUnchecked)
			if len(un) != 1 {
				t.Fatalf("want one unchecked finding, got %q", summary(got))
			}
			if !strings.Contains(un[0].Message, `account "svc"`) || !strings.Contains(un[0].Message, "checked against only ") ||
				!strings.Contains(un[0].Message, fmt.Sprintf(" of %d ", len(many)+len(nameVariants("svc"))-1)) {
				t.Errorf("message: %s", un[0].Message)
			}
			// One slow verification may overrun the bound; 5000 would not.
			if el > 3*time.Second {
				t.Errorf("took %v", el)
			}
			t.Logf("%v: %s", el, un[0].Message)
		})
	}
	// yescrypt gives up mid-computation: a tiny bound ends the first
	// attempt early.
	t.Run("yescrypt abort", func(t *testing.T) {
		t.Parallel()
		h, err := parseYescrypt(yesRoot)
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(time.Millisecond)
		st := newYescryptState(h, func() bool { return time.Now().After(deadline) })
		if _, err := st.verify([]byte("root")); err != errYescryptAborted {
			t.Fatalf("verify = %v, want aborted", err)
		}
	})
}

func TestManyAccountsBounded(t *testing.T) {
	t.Parallel()
	var sh strings.Builder
	for i := range 200 {
		fmt.Fprintf(&sh, "u%d:%s:1::::::\n", i, md5Changeme)
	}
	got := inspect(t, fstest.MapFS{"etc/shadow": file(sh.String())}, Options{WeakPasswords: []string{"x"}})
	if n := len(find(got, RulePresetPassword)); n != 200 {
		t.Errorf("%d preset findings, want 200", n)
	}
	un := find(got, RuleWeakPasswordUnchecked)
	if len(un) != 1 || !strings.Contains(un[0].Message, "136 more accounts") {
		t.Errorf("unchecked findings: %+v", un)
	}
}

func TestKeys(t *testing.T) {
	t.Parallel()
	fsys := fstest.MapFS{
		"etc/passwd": file(basePasswd +
			"deploy:x:1000:1000::/srv/deploy:/bin/bash\n" +
			"alice:x:1001:1001::/home/alice:/bin/bash\n" +
			"bob:x:1002:1002::/home/bob:/bin/bash\n"),
		"etc/ssh/sshd_config": file("# comment\nInclude /etc/ssh/sshd_config.d/*.conf\nPermitRootLogin no\n" +
			"Match User ci\n  AuthorizedKeysFile \"/etc/ssh/ci keys\"\n"),
		"etc/ssh/sshd_config.d/50-keys.conf": file("AuthorizedKeysFile .ssh/authorized_keys /etc/ssh/keys/%u %h/.ssh/extra_%U\n"),
		"root/.ssh/authorized_keys":          file("# the seller's key\n" + pubKey),
		"srv/deploy/.ssh/authorized_keys":    file(pubKey + pubKey),
		"home/alice/.ssh/authorized_keys":    file("# no keys here\n\n   # none\n"),
		"home/alice/.ssh/authorized_keys2":   file("\n"),
		"etc/ssh/keys/bob":                   file(pubKey),
		"home/alice/.ssh/extra_1001":         file(pubKey),
		"etc/ssh/ci keys":                    file(pubKey),
		"home/orphan/.ssh/authorized_keys2":  file(pubKey),
		"root/.ssh/id_rsa":                   file(rsaPrivate),
		"root/.ssh/id_rsa.pub":               file(pubKey),
		"srv/deploy/.ssh/id_ed25519":         file(opensshPrivate),
		"srv/deploy/.ssh/known_hosts":        file("github.com ssh-ed25519 AAAA\n"),
		"home/bob/.ssh/config":               file("Host *\n"),
		"etc/ssh/ssh_host_ed25519_key":       file(opensshPrivate),
		"etc/ssh/ssh_host_ed25519_key.pub":   file(pubKey),
		"etc/ssh/ssh_host_rsa_key":           file(rsaPrivate),
		"etc/ssh/ssh_host_ecdsa_key":         file(""),
	}
	got := inspect(t, fsys, fastOpts)
	want := []string{
		"account.login_private_key root/.ssh/id_rsa",
		"account.login_private_key srv/deploy/.ssh/id_ed25519",
		"account.preset_key etc/ssh/ci keys",
		"account.preset_key etc/ssh/keys/bob",
		"account.preset_key home/alice/.ssh/extra_1001",
		"account.preset_key home/orphan/.ssh/authorized_keys2",
		"account.preset_key root/.ssh/authorized_keys",
		"account.preset_key srv/deploy/.ssh/authorized_keys",
		"account.ssh_host_key etc/ssh/ssh_host_ed25519_key",
		"account.ssh_host_key etc/ssh/ssh_host_rsa_key",
	}
	if s := summary(got); !slices.Equal(s, want) {
		t.Errorf("got\n%q\nwant\n%q", s, want)
	}
	msgs := map[string]string{}
	for _, f := range got {
		msgs[f.Path] = f.Message
	}
	for p, sub := range map[string]string{
		"root/.ssh/authorized_keys":         `1 SSH key line(s) authorizing logins as account "root"`,
		"srv/deploy/.ssh/authorized_keys":   `2 SSH key line(s) authorizing logins as account "deploy"`,
		"etc/ssh/keys/bob":                  `account "bob"`,
		"home/alice/.ssh/extra_1001":        `account "alice"`,
		"home/orphan/.ssh/authorized_keys2": `account "orphan"`,
		"etc/ssh/ci keys":                   "every account",
		"root/.ssh/id_rsa":                  `account "root"`,
		"srv/deploy/.ssh/id_ed25519":        `account "deploy"`,
	} {
		if !strings.Contains(msgs[p], sub) {
			t.Errorf("%s: message %q lacks %q", p, msgs[p], sub)
		}
	}
}

func TestSymlinks(t *testing.T) {
	t.Parallel()
	link := func(target string) *fstest.MapFile {
		return &fstest.MapFile{Data: []byte(target), Mode: fs.ModeSymlink}
	}
	fsys := fstest.MapFS{
		"etc/passwd":                   file(basePasswd),
		"etc/shadow":                   link("shadow.real"),
		"etc/shadow.real":              passwd("root:" + sha512Strong + ":1::::::"),
		"root/.ssh":                    link("../var/roothome/.ssh"),
		"var/roothome/.ssh/id_ed25519": file(opensshPrivate),
		"etc/ssh/ssh_host_rsa_key":     link("/etc/ssh/loop"),
		"etc/ssh/loop":                 link("ssh_host_rsa_key"),
	}
	got := inspect(t, fsys, fastOpts)
	want := []string{"account.login_private_key root/.ssh/id_ed25519", "account.preset_password etc/shadow"}
	if s := summary(got); !slices.Equal(s, want) {
		t.Errorf("got %q, want %q", s, want)
	}
}

func TestCloudInit(t *testing.T) {
	t.Parallel()
	fsys := fstest.MapFS{
		"etc/cloud/cloud.cfg": file(`
users:
  - default
system_info:
  default_user:
    name: ubuntu
    lock_passwd: True
`),
		"etc/cloud/cloud.cfg.d/99-seller.cfg": file(`#cloud-config
password: Sup3r-Secret-Pw
chpasswd:
  expire: false
  list: |
    root:toor
    ubuntu:RANDOM
    admin:` + md5Changeme + `
`),
		"etc/cloud/cloud.cfg.d/50-users.yaml": file(`
users:
  - default
  - name: ops
    plain_text_passwd: opsops
    lock_passwd: false
  - name: svc
    passwd: ` + sha512Strong + `
chpasswd:
  users:
    - {name: alice, password: Wonderland-2024, type: text}
    - {name: bob, password: RANDOM, type: RANDOM}
    - {name: carol, password: "` + yesStrongR1 + `", type: hash}
`),
		"var/lib/cloud/seed/nocloud/user-data": file("#cloud-config\nchpasswd:\n  list:\n    - 'pi:raspberry'\n"),
		"var/lib/cloud/seed/nocloud/meta-data": file("instance-id: x\n"),
		// Broken YAML: the line patterns still find the password.
		"var/lib/cloud/instances/i-123/user-data.txt": file("#cloud-config\nusers:\n  - name: x\n  plain_text_passwd: Leak3d!pw\n   bad: [indent\nchpasswd:\n  list: |\n    root:Zz9-Another\n"),
		"var/lib/cloud/seed/other/user-data":          file("#!/bin/sh\necho 'root:ScriptPw-123' | chpasswd\n"),
	}
	got := inspect(t, fsys, fastOpts)
	for _, f := range got {
		t.Logf("%s %s: %s", f.Rule, f.Path, f.Message)
	}
	want := []string{
		"account.cloud_init_password etc/cloud/cloud.cfg.d/50-users.yaml", // ops
		"account.cloud_init_password etc/cloud/cloud.cfg.d/50-users.yaml", // svc hash
		"account.cloud_init_password etc/cloud/cloud.cfg.d/50-users.yaml", // alice
		"account.cloud_init_password etc/cloud/cloud.cfg.d/50-users.yaml", // carol hash
		"account.cloud_init_password etc/cloud/cloud.cfg.d/99-seller.cfg", // password
		"account.cloud_init_password etc/cloud/cloud.cfg.d/99-seller.cfg", // root:toor
		"account.cloud_init_password etc/cloud/cloud.cfg.d/99-seller.cfg", // admin hash
		"account.cloud_init_password var/lib/cloud/instances/i-123/user-data.txt",
		"account.cloud_init_password var/lib/cloud/instances/i-123/user-data.txt",
		"account.cloud_init_password var/lib/cloud/seed/nocloud/user-data",
		"account.cloud_init_password var/lib/cloud/seed/other/user-data",
		"account.weak_password etc/cloud/cloud.cfg.d/50-users.yaml",  // opsops = name+name
		"account.weak_password etc/cloud/cloud.cfg.d/99-seller.cfg",  // toor
		"account.weak_password etc/cloud/cloud.cfg.d/99-seller.cfg",  // admin changeme (hash)
		"account.weak_password var/lib/cloud/seed/nocloud/user-data", // pi:raspberry? not in fastOpts, but "pi"... see below
	}
	// raspberry is not in fastOpts' list: not weak there.
	want = slices.DeleteFunc(want, func(s string) bool { return s == "account.weak_password var/lib/cloud/seed/nocloud/user-data" })
	if s := summary(got); !slices.Equal(s, want) {
		t.Errorf("got\n%q\nwant\n%q", s, want)
	}
	all := ""
	for _, f := range got {
		all += f.Message + "\n"
	}
	for _, sub := range []string{
		`the default user (password)`, `account "root" (chpasswd.list)`, `account "ops" (users.plain_text_passwd)`,
		`hashed password preset in cloud-init for account "svc" (users.passwd, sha512crypt hash)`,
		`account "carol" (chpasswd.users, yescrypt hash)`, `account "alice"`, `account "pi"`, "it also breaks the password complexity rule (length, character classes, not the account name)",
		`account "root" (chpasswd in a script)`,
	} {
		if !strings.Contains(all, sub) {
			t.Errorf("no message contains %q", sub)
		}
	}
	if strings.Contains(all, `"bob"`) {
		t.Errorf("RANDOM password reported")
	}
	// The default user's name comes from system_info in the same file only.
	if strings.Contains(all, `for account "ubuntu" (password)`) {
		t.Errorf("unexpected default user name")
	}
}

func TestCheckComplexity(t *testing.T) {
	t.Parallel()
	c := DefaultComplexity()
	tests := []struct {
		account, password string
		ok                bool
		reason            string
	}{
		{"root", "Abcde1!", false, "shorter than 8 characters"},   // 7 characters
		{"root", "password", false, "uses 1 of the 4 character"},  // one class
		{"root", "Password", true, ""},                            // lower + upper
		{"root", "12345678", false, "uses 1 of the 4"},            // digits only
		{"root", "pass word", true, ""},                           // space is special
		{"root", "pass`word", false, "uses 1 of the 4"},           // backtick is not in the list
		{"root", "ROOT", false, "shorter than 8"},                 // short and the name
		{"administrator", "Administrator", false, "account name"}, // case-insensitive
		{"root", "пароль-пароль", false, "uses 1 of the 4"},       // Cyrillic letters: no class; '-' is the only one
		{"root", "пароль1пароль", false, "uses 1 of the 4"},       // Cyrillic letters belong to no class
		{"root", "éééééééé1A", true, ""},                          // digit + upper
		{"root", "ab1", false, "shorter than 8 characters"},
		{"root", "r", false, "shorter than 8 characters; uses 1 of the 4"},
		{"x", "Correct Horse", true, ""},
		{"root", "P@ssw0rd", true, ""},
	}
	for _, tc := range tests {
		ok, reason := CheckComplexity(tc.account, tc.password, c)
		if ok != tc.ok || !strings.Contains(reason, tc.reason) {
			t.Errorf("CheckComplexity(%q, %q) = %v, %q; want %v, %q", tc.account, tc.password, ok, reason, tc.ok, tc.reason)
		}
		if len(tc.password) >= 4 && strings.Contains(reason, tc.password) {
			t.Errorf("reason %q contains the password", reason)
		}
	}
	if ok, _ := CheckComplexity("root", "root", Complexity{}); !ok {
		t.Errorf("zero Complexity must accept anything")
	}
	if ok, _ := CheckComplexity("root", "rootroot", Complexity{MinLength: 8, MinClasses: 1}); !ok {
		t.Errorf("ForbidAccountName false: rootroot ok")
	}
}

func TestGarbage(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	bin := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		return b
	}
	var lines100k strings.Builder
	for i := range 100_000 {
		fmt.Fprintf(&lines100k, "%x:%s:%d\n", bin(4), []string{"$", "$6$", "!", "", "x", "\x00\xff", "$y$", "$7$", "$2b$99$", "$y$j9T$$", "$7$Z"}[i%11], i)
	}
	big := make([]byte, MaxFileSize+1)
	cases := map[string]fstest.MapFS{
		"binary": {
			"etc/passwd":                     {Data: bin(1 << 20)},
			"etc/shadow":                     {Data: bin(1 << 20)},
			"etc/ssh/sshd_config":            {Data: bin(64 << 10)},
			"etc/cloud/cloud.cfg":            {Data: bin(64 << 10)},
			"var/lib/cloud/seed/x/user-data": {Data: bin(64 << 10)},
		},
		"100k lines": {
			"etc/shadow": {Data: []byte(lines100k.String())},
			"etc/passwd": {Data: []byte(strings.ReplaceAll(lines100k.String(), ":", ":x:0:0::/:"))},
		},
		"odd structures": {
			"etc/passwd":                    {Data: []byte("::::::\n:\n\n\x00\nroot\nroot:\nx:x:x:x:x:../../../../etc:x\n")},
			"etc/shadow":                    {Data: []byte("root:$y$" + strings.Repeat("z", 5000) + "$a$b:\nu:$7$" + strings.Repeat("/", 100) + "\n")},
			"etc/ssh/sshd_config":           {Data: []byte("AuthorizedKeysFile \"\nAuthorizedKeysFile %\nAuthorizedKeysFile %z %%%\nInclude ../../../*\nInclude /etc/ssh/sshd_config\n")},
			"etc/cloud/cloud.cfg":           {Data: []byte("a: &a [*a, *a]\nusers: *a\nchpasswd: {list: [1, {x: y}, null]}\npassword: [1]\n")},
			"etc/cloud/cloud.cfg.d/x.cfg":   {Data: []byte(strings.Repeat("[", 10000))},
			"etc/cloud/cloud.cfg.d/y.cfg":   {Data: []byte("---\n---\nnull\n---\n- 1\n")},
			"etc/cloud/cloud.cfg.d/dir.cfg": {Mode: fs.ModeDir},
			"root/.ssh/authorized_keys":     {Data: big},
			"etc/ssh/ssh_host_rsa_key":      {Mode: fs.ModeNamedPipe},
		},
	}
	for name, fsys := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			got := inspect(t, fsys, Options{WeakPasswords: []string{"a"}, MaxHashTime: 50 * time.Millisecond})
			t.Logf("%d findings in %v", len(got), time.Since(start))
			if name == "odd structures" {
				un := find(got, RuleUnreadable)
				if len(un) != 2 {
					t.Errorf("unreadable findings: %q", summary(un))
				}
			}
		})
	}
}

// Findings never contain a hash or a password (except where the password
// is the account name, which a message must name).
func TestNoSecretsInFindings(t *testing.T) {
	t.Parallel()
	secrets := []string{strongPW, "changeme", "toor", "Sup3r-Secret-Pw", "Wonderland-2024", "opsops-x", "raspberry", "ScriptPw-123", "123456", "qwerty"}
	var sh strings.Builder
	for i, h := range allHashes {
		fmt.Fprintf(&sh, "user%d:%s:1::::::\n", i, h)
	}
	fsys := fstest.MapFS{
		"etc/shadow": file(sh.String()),
		"etc/passwd": passwd("legacy:" + sha256Pass + ":5:5::/:/bin/sh"),
		"etc/cloud/cloud.cfg.d/99.cfg": file("password: Sup3r-Secret-Pw\nchpasswd:\n  list: |\n    root:toor\n    a:" + md5Changeme +
			"\n  users:\n    - {name: alice, password: Wonderland-2024}\nusers:\n  - name: ops\n    plain_text_passwd: opsops-x\n    passwd: " + yes123456 + "\n"),
		"var/lib/cloud/seed/a/user-data": file("#!/bin/sh\necho root:ScriptPw-123 | chpasswd\n"),
		"var/lib/cloud/seed/b/user-data": file("#cloud-config\nchpasswd:\n  list: |\n    pi:raspberry\n  bad: [\n"),
	}
	got := inspect(t, fsys, Options{MaxHashTime: 300 * time.Millisecond})
	if len(got) < len(allHashes)+6 {
		t.Fatalf("only %d findings: %q", len(got), summary(got))
	}
	js, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range append(slices.Clone(allHashes), secrets...) {
		if strings.Contains(string(js), s) {
			t.Errorf("findings contain %q", s)
		}
	}
	// Salts and hash bodies neither.
	for _, h := range allHashes {
		parts := strings.Split(h, "$")
		for _, p := range parts {
			if len(p) >= 8 && strings.Contains(string(js), p) {
				t.Errorf("findings contain hash part %q", p)
			}
		}
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	var c scanner.Check = Check{Options: fastOpts}
	if c.Name() != assetscan.CheckAccount {
		t.Errorf("Name = %q", c.Name())
	}
	if _, err := c.Run(context.Background(), &scanner.Target{}); err == nil || !strings.Contains(err.Error(), "no root file system to inspect") {
		t.Errorf("Run without RootFS: %v", err)
	}
	res, err := c.Run(context.Background(), &scanner.Target{RootFS: fstest.MapFS{
		"etc/passwd":                file(basePasswd),
		"etc/shadow":                passwd("root::1::::::"),
		"root/.ssh/authorized_keys": file(pubKey),
	}})
	if err != nil {
		t.Fatal(err)
	}
	if s := summary(res.Findings); !slices.Equal(s, []string{"account.empty_password etc/shadow", "account.preset_key root/.ssh/authorized_keys"}) {
		t.Errorf("findings %q", s)
	}
	if !strings.HasPrefix(res.Detail, "3 accounts, 0 password hashes checked, 1 key files") {
		t.Errorf("Detail = %q", res.Detail)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Run(ctx, &scanner.Target{RootFS: fstest.MapFS{}}); err == nil {
		t.Errorf("Run with a cancelled context: no error")
	}
}

func TestDefaultWeakPasswords(t *testing.T) {
	t.Parallel()
	l := defaultWeakPasswords()
	if len(l) < 90 || len(l) > 150 {
		t.Errorf("%d default weak passwords", len(l))
	}
	for _, must := range []string{"123456", "password", "admin", "root", "toor", "12345678", "qwerty", "changeme", "ubuntu", "centos", "debian", "raspberry", "P@ssw0rd"} {
		if !slices.Contains(l, must) {
			t.Errorf("default list lacks %q", must)
		}
	}
	for _, p := range l {
		if strings.TrimSpace(p) != p || p == "" {
			t.Errorf("bad entry %q", p)
		}
	}
}
