package accounts

import (
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

// cloudInitKeyLine is what cloud-init's disable_root writes to root's
// authorized_keys on Ubuntu and Amazon Linux cloud images.
const cloudInitKeyLine = `no-port-forwarding,no-agent-forwarding,no-X11-forwarding,command="echo 'Please login as the user \"ubuntu\" rather than the user \"root\".';echo;sleep 10;exit 142" ` + pubKey

func TestParseAuthorizedKeyLine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		line     string
		ok       bool
		opts     []string // name=value
		disabled bool
	}{
		{line: "", ok: false},
		{line: "   # comment", ok: false},
		{line: pubKey, ok: true},
		{line: "ecdsa-sha2-nistp256 AAAA x", ok: true},
		{line: "2048 65537 1234 old@ssh1", ok: true},
		{line: `no-pty,from="10.0.0.0/8,192.168.0.1" ` + pubKey, ok: true, opts: []string{"no-pty=", "from=10.0.0.0/8,192.168.0.1"}},
		{line: `command="echo \"hi there\"",restrict ` + pubKey, ok: true, opts: []string{`command=echo "hi there"`, "restrict="}},
		{line: cloudInitKeyLine, ok: true, disabled: true, opts: []string{"no-port-forwarding=", "no-agent-forwarding=", "no-X11-forwarding=",
			`command=echo 'Please login as the user "ubuntu" rather than the user "root".';echo;sleep 10;exit 142`}},
		{line: `command="echo 'Please login as the user \"ec2-user\" rather than the user \"root\".';echo;sleep 10;exit 142" ` + pubKey, ok: true, disabled: true},
		{line: `command="echo 'Please login as the user \"centos\" rather than the user \"root\".'; echo; sleep 5; exit 1" ` + pubKey, ok: true, disabled: true},
		// the shape, not just the words: a command that goes on is not disabled
		{line: `command="echo 'Please login as the user \"u\" rather than the user \"root\".';echo;sleep 10;exit 142;bash" ` + pubKey, ok: true},
		{line: `command="echo 'Please login as the user \"u\" rather than the user \"root\".';bash" ` + pubKey, ok: true},
		{line: `command="/bin/bash" ` + pubKey, ok: true},
		{line: `command="unterminated ` + pubKey, ok: true},
	}
	for _, tc := range tests {
		opts, ok := ParseAuthorizedKeyLine(tc.line)
		if ok != tc.ok {
			t.Errorf("%q: ok = %v", tc.line, ok)
			continue
		}
		if tc.opts != nil {
			var got []string
			for _, o := range opts {
				got = append(got, o.Name+"="+o.Value)
			}
			if !slices.Equal(got, func() []string {
				var w []string
				for _, o := range tc.opts {
					n, v, _ := strings.Cut(o, "=")
					w = append(w, strings.ToLower(n)+"="+v)
				}
				return w
			}()) {
				t.Errorf("%q: options %q, want %q", tc.line, got, tc.opts)
			}
		}
		if d := IsCloudInitDisabledKey(opts); d != tc.disabled {
			t.Errorf("%q: disabled = %v", tc.line, d)
		}
	}
}

func TestCloudInitDisabledRootKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		keys string
		want []string
	}{
		{"every key disabled", "# cloud-init\n" + cloudInitKeyLine + "\n" + cloudInitKeyLine + "\n", []string{"account.root_key_disabled root/.ssh/authorized_keys"}},
		{"one usable key among disabled ones", cloudInitKeyLine + "\n" + pubKey, []string{"account.preset_key root/.ssh/authorized_keys"}},
		{"usable key only", pubKey, []string{"account.preset_key root/.ssh/authorized_keys"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fsys := fstest.MapFS{
				"etc/passwd":                file(basePasswd),
				"root/.ssh/authorized_keys": file(tc.keys),
			}
			got := inspect(t, fsys, fastOpts)
			if s := summary(got); !slices.Equal(s, tc.want) {
				t.Errorf("got %q, want %q", s, tc.want)
			}
			if f := find(got, RuleRootKeyDisabled); len(f) == 1 && !strings.Contains(f[0].Message, `account "root"`) {
				t.Errorf("message %q", f[0].Message)
			}
		})
	}
}
