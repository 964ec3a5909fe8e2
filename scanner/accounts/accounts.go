// Package accounts implements the rule book's "preset OS accounts,
// passwords and keys" check (and the password half of "OS password
// complexity") for VM and container images: it looks at an image's final
// root file system and reports OS logins that every instance of the image
// would share.
//
// It reports, each under its own rule id (the Rule* constants):
//
//   - accounts with a usable password hash or an empty password in
//     etc/shadow or etc/passwd;
//   - hashes that match the account name, a simple variant of it, or a
//     common password (yescrypt, scrypt, sha512crypt, sha256crypt, md5crypt
//     and bcrypt are verified; other schemes are reported as unsupported);
//   - SSH authorized_keys of any account (default locations and those named
//     by AuthorizedKeysFile in sshd_config), private login keys in ~/.ssh,
//     and SSH host private keys;
//   - passwords set by cloud-init configuration and seeds.
//
// Everything in the file system is hostile: files are read only up to
// MaxFileSize, hash cost parameters are bounded, the time spent on one hash
// is bounded by Options.MaxHashTime, and messages never contain a password
// or a hash.
package accounts

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"syscall"
	"time"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/scanner"
)

// Rule ids of the findings this package reports. Every finding has Check
// assetscan.CheckAccount.
const (
	// RulePresetPassword: an account has a usable password hash (one
	// finding per account).
	RulePresetPassword = "account.preset_password"
	// RuleEmptyPassword: an account's password field is empty: it can
	// log in without a password.
	RuleEmptyPassword = "account.empty_password"
	// RuleWeakPassword: an account's password is the account name, a
	// simple variant of it, or a common password.
	RuleWeakPassword = "account.weak_password"
	// RuleWeakPasswordUnchecked (informational): a hash could not be
	// checked against every candidate password (time bound, cost
	// parameters too high, too many hashes).
	RuleWeakPasswordUnchecked = "account.weak_password_unchecked"
	// RuleUnsupportedHash (informational): a hash uses a scheme this
	// package cannot verify (DES, gost-yescrypt, ...), so it was not
	// checked against common passwords.
	RuleUnsupportedHash = "account.unsupported_hash"
	// RulePresetKey: an authorized_keys file with at least one key lets
	// someone log in over SSH.
	RulePresetKey = "account.preset_key"
	// RuleRootKeyDisabled (informational): an authorized_keys file whose
	// every key carries cloud-init's disable_root forced command ("Please
	// login as the user ... rather than the user root"; exit 142), which
	// many cloud images ship: the keys cannot open a shell. Reported
	// instead of RulePresetKey.
	RuleRootKeyDisabled = "account.root_key_disabled"
	// RuleLoginPrivateKey: a private key in an account's ~/.ssh.
	RuleLoginPrivateKey = "account.login_private_key"
	// RuleSSHHostKey: an SSH host private key baked into the image, which
	// every instance would share. Policies may also name it by its alias
	// hygiene.ssh_host_keys (scanner/hygiene.Alias); the finding keeps
	// this id.
	RuleSSHHostKey = "account.ssh_host_key"
	// RuleCloudInitPassword: cloud-init configuration sets a password,
	// in plain text or hashed.
	RuleCloudInitPassword = "account.cloud_init_password"
	// RuleUnreadable (informational): a file the check needs exists but
	// could not be read (too large, not a regular file, I/O error).
	RuleUnreadable = "account.unreadable"
)

// MaxFileSize is the largest file the check reads; larger ones are
// reported under RuleUnreadable and not inspected.
const MaxFileSize = 4 << 20

// Unexported bounds on hostile input.
const (
	maxAccounts     = 10000 // accounts read from etc/passwd and etc/shadow
	maxWeakHashes   = 64    // distinct hashes checked against candidates
	maxHomes        = 4096  // home directories inspected
	maxDirEntries   = 256   // entries of one ~/.ssh inspected
	maxConfigFiles  = 64    // sshd_config files (with Include) read
	maxCloudFiles   = 256   // cloud-init files read
	maxSymlinkHops  = 8     // symbolic links followed for one file
	maxNameInMsg    = 64    // bytes of an account name shown in a message
	maxAccountsList = 5     // accounts named in one message
)

//go:embed weak-passwords.txt
var weakPasswordsTxt string

// defaultWeakPasswords returns the embedded list of common passwords.
func defaultWeakPasswords() []string {
	var out []string
	for _, l := range strings.Split(weakPasswordsTxt, "\n") {
		l = strings.TrimRight(l, "\r")
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		out = append(out, l)
	}
	return out
}

// Options configure Inspect. The zero value selects every default.
type Options struct {
	// WeakPasswords are candidates tried against every usable hash,
	// besides the empty password, the account name and simple variants of
	// it (Name, NAME, name1, name123, name@123, namename, the name
	// reversed, ...). Nil selects the embedded list of about 100 of the
	// most common and OS-default passwords (weak-passwords.txt); an empty
	// non-nil slice tries the name variants only. Candidates are tried in
	// order, so put the likeliest first.
	WeakPasswords []string
	// MaxHashTime bounds the time spent verifying candidates against one
	// hash (yescrypt and bcrypt are deliberately slow). It is measured as
	// elapsed time, checked between candidates and, for yescrypt and
	// scrypt, inside the computation too. When it is exceeded the
	// remaining candidates are skipped and a RuleWeakPasswordUnchecked
	// finding names the account and how many candidates were tried.
	// Zero or negative selects the default, 2s.
	MaxHashTime time.Duration
	// Complexity is the password complexity rule applied to plain-text
	// passwords found in the image (cloud-init). The zero value selects
	// DefaultComplexity().
	Complexity Complexity
}

func (o Options) withDefaults() Options {
	if o.WeakPasswords == nil {
		o.WeakPasswords = defaultWeakPasswords()
	}
	if o.MaxHashTime <= 0 {
		o.MaxHashTime = 2 * time.Second
	}
	if o.Complexity == (Complexity{}) {
		o.Complexity = DefaultComplexity()
	}
	return o
}

// Check is a scanner.Check (Name() == assetscan.CheckAccount) that runs
// Inspect on the target's RootFS. Run returns an error if the target has no
// root file system ("no root file system to inspect") or if ctx ends before
// the inspection does.
type Check struct {
	// Options are passed to Inspect.
	Options Options
}

var _ scanner.Check = Check{}

// AppliesTo says the check runs on images only: packages have no OS
// accounts (scanner.Applier).
func (Check) AppliesTo(k assetscan.Kind) bool { return k != assetscan.KindPackage }

// Name returns assetscan.CheckAccount.
func (Check) Name() string { return assetscan.CheckAccount }

// Run inspects t.RootFS.
func (c Check) Run(ctx context.Context, t *scanner.Target) (scanner.Result, error) {
	if t == nil || t.RootFS == nil {
		return scanner.Result{}, errors.New("no root file system to inspect")
	}
	in := newInspector(ctx, t.RootFS, c.Options)
	findings, err := in.run()
	if err != nil {
		return scanner.Result{}, err
	}
	detail := fmt.Sprintf("%d accounts, %d password hashes checked, %d key files", len(in.accounts), in.stats.hashesChecked, in.stats.keyFiles)
	return scanner.Result{Findings: findings, Detail: detail}, nil
}

// Inspect examines the root file system fsys of an image (paths relative to
// "/", e.g. "etc/shadow") and returns what it found, each finding with Check
// assetscan.CheckAccount, one of the Rule* ids, the file's path inside the
// image and a message naming the account(s). Files that cannot be read are
// reported as findings, not errors; the error is non-nil only when ctx ends
// first (or fsys is nil).
func Inspect(ctx context.Context, fsys fs.FS, opt Options) ([]assetscan.Finding, error) {
	if fsys == nil {
		return nil, errors.New("no root file system to inspect")
	}
	return newInspector(ctx, fsys, opt).run()
}

// inspector holds the state of one Inspect call.
type inspector struct {
	ctx      context.Context
	fsys     fs.FS
	opt      Options
	findings []assetscan.Finding

	unreadable map[string]bool
	accounts   []*account
	byName     map[string]*account

	weakDone    map[string]bool // account + "\x00" + hash already checked
	weakSkipped []string        // accounts not checked: too many hashes
	weakList    []string        // opt.WeakPasswords, deduplicated

	stats struct {
		hashesChecked int
		keyFiles      int
	}
}

func newInspector(ctx context.Context, fsys fs.FS, opt Options) *inspector {
	opt = opt.withDefaults()
	in := &inspector{
		ctx:        ctx,
		fsys:       fsys,
		opt:        opt,
		unreadable: map[string]bool{},
		byName:     map[string]*account{},
		weakDone:   map[string]bool{},
	}
	seen := map[string]bool{}
	for _, p := range opt.WeakPasswords {
		if !seen[p] {
			seen[p] = true
			in.weakList = append(in.weakList, p)
		}
	}
	return in
}

func (in *inspector) run() ([]assetscan.Finding, error) {
	steps := []func(){
		in.loadAccounts,
		in.passwords,
		in.sshKeys,
		in.hostKeys,
		in.cloudInit,
	}
	for _, step := range steps {
		if err := in.ctx.Err(); err != nil {
			return nil, err
		}
		step()
	}
	if err := in.ctx.Err(); err != nil {
		return nil, err
	}
	return in.findings, nil
}

func (in *inspector) add(rule, file, msg string) {
	in.findings = append(in.findings, assetscan.Finding{
		Check:   assetscan.CheckAccount,
		Rule:    rule,
		Path:    file,
		Message: msg,
	})
}

// rel turns an absolute or relative path inside the image into a clean
// fs.FS path ("." for the root). ".." cannot climb above the root.
func rel(p string) string {
	p = strings.TrimPrefix(path.Clean("/"+p), "/")
	if p == "" {
		return "."
	}
	return p
}

// join joins a directory from rel with a relative name.
func join(dir, name string) string { return rel(path.Join(dir, name)) }

var errTooManyLinks = errors.New("too many levels of symbolic links")

// stat returns the file info of name, following symbolic links that fsys
// reports instead of following them itself (through fs.ReadLinkFS; the
// targets are resolved inside fsys). It returns the resolved name.
func (in *inspector) stat(name string) (string, fs.FileInfo, error) {
	for hop := 0; ; hop++ {
		fi, err := fs.Stat(in.fsys, name)
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			return name, fi, err
		}
		if hop >= maxSymlinkHops {
			return name, nil, errTooManyLinks
		}
		target, err := fs.ReadLink(in.fsys, name)
		if err != nil {
			return name, nil, err
		}
		if path.IsAbs(target) {
			name = rel(target)
		} else {
			name = rel(path.Join(path.Dir(name), target))
		}
	}
}

// absent reports whether err means the path is simply not there.
func absent(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrInvalid) || errors.Is(err, syscall.ENOTDIR)
}

func (in *inspector) unreadableFinding(name, why string) {
	if in.unreadable[name] {
		return
	}
	in.unreadable[name] = true
	in.add(RuleUnreadable, name, fmt.Sprintf("%s could not be fully inspected for preset accounts, passwords or keys: %s", name, why))
}

// read returns the content of the regular file name. A missing file or a
// directory gives ok == false silently; a file that exists but cannot be
// read (larger than MaxFileSize, not a regular file, I/O error) gives
// ok == false and a RuleUnreadable finding.
func (in *inspector) read(name string) (data []byte, ok bool) { return in.readFile(name, false) }

// probe is read for speculative paths (authorized_keys candidates in every
// home): any error looking the file up counts as "not there", so that a
// file system whose errors do not wrap fs.ErrNotExist makes no noise.
// Errors reading a file that is there are still reported.
func (in *inspector) probe(name string) (data []byte, ok bool) { return in.readFile(name, true) }

func (in *inspector) readFile(name string, quiet bool) (data []byte, ok bool) {
	if !fs.ValidPath(name) || name == "." {
		return nil, false
	}
	real, fi, err := in.stat(name)
	switch {
	case err != nil && (quiet || absent(err)):
		return nil, false
	case err != nil:
		in.unreadableFinding(name, "it cannot be read")
		return nil, false
	case fi.IsDir():
		return nil, false
	case !fi.Mode().IsRegular():
		in.unreadableFinding(name, "it is not a regular file")
		return nil, false
	case fi.Size() > MaxFileSize:
		in.unreadableFinding(name, "it is larger than 4 MiB")
		return nil, false
	}
	f, err := in.fsys.Open(real)
	if err != nil {
		in.unreadableFinding(name, "it cannot be read")
		return nil, false
	}
	defer f.Close()
	data, err = io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		in.unreadableFinding(name, "it cannot be read")
		return nil, false
	}
	if len(data) > MaxFileSize {
		in.unreadableFinding(name, "it is larger than 4 MiB")
		return nil, false
	}
	return data, true
}

// isDir reports whether name is a directory (following symbolic links).
func (in *inspector) isDir(name string) bool {
	if !fs.ValidPath(name) {
		return false
	}
	_, fi, err := in.stat(name)
	return err == nil && fi.IsDir()
}

// readDir lists name (following symbolic links), at most limit entries.
func (in *inspector) readDir(name string, limit int) []fs.DirEntry {
	if !fs.ValidPath(name) {
		return nil
	}
	real, fi, err := in.stat(name)
	if err != nil || !fi.IsDir() {
		return nil
	}
	ents, err := fs.ReadDir(in.fsys, real)
	if err != nil && len(ents) == 0 {
		return nil
	}
	if len(ents) > limit {
		in.unreadableFinding(name, fmt.Sprintf("it has more than %d entries; the others were not inspected", limit))
		ents = ents[:limit]
	}
	return ents
}

// glob is fs.Glob without errors.
func (in *inspector) glob(pattern string) []string {
	m, err := fs.Glob(in.fsys, pattern)
	if err != nil {
		return nil
	}
	return m
}

// lines splits data into lines without line terminators.
func lines(data []byte) []string {
	s := strings.Split(string(data), "\n")
	for i, l := range s {
		s[i] = strings.TrimSuffix(l, "\r")
	}
	return s
}

// quoteName formats an account name for a message: quoted, escaped and
// truncated.
func quoteName(name string) string {
	if len(name) > maxNameInMsg {
		name = name[:maxNameInMsg] + "..."
	}
	return fmt.Sprintf("%q", name)
}

// nameList formats account names for a message.
func nameList(names []string) string {
	var q []string
	for i, n := range names {
		if i == maxAccountsList {
			q = append(q, fmt.Sprintf("and %d more", len(names)-i))
			break
		}
		q = append(q, quoteName(n))
	}
	return strings.Join(q, ", ")
}
