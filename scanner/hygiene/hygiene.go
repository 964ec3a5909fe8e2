// Package hygiene reports the image hygiene facts that the large cloud
// marketplaces check before they list a VM or container image (AWS
// Marketplace AMI policy, Azure VM certification, Oracle, DigitalOcean,
// Alibaba): shell history, leftover credentials and logs, the machine
// identity, sshd settings that allow password or root logins, and the lack
// of a provisioning agent. Each fact is a finding under its own rule id (the
// Rule* constants, all listed in Rules), so that the policy decides per rule
// whether it fails, warns or informs.
//
// It looks at the image's final root file system (scanner.Target.RootFS).
// Everything there is hostile: files are read only up to MaxFileSize,
// directory listings and walks are bounded, symbolic links are resolved
// inside the file system, and messages name files and accounts, never a
// secret.
package hygiene

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"syscall"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/scanner"
)

// CheckName is the check name of the findings and of the check run
// ("hygiene"). The integrator may add it to assetscan as CheckHygiene.
const CheckName = "hygiene"

// Rule ids. Every finding this package produces has Check CheckName and one
// of these rules.
const (
	// RuleShellHistory: a non-empty shell or tool history file in a home.
	RuleShellHistory = "hygiene.shell_history"
	// RuleSSHPasswordAuth: sshd accepts passwords (PasswordAuthentication
	// yes, set or by default), globally or in a Match block.
	RuleSSHPasswordAuth = "hygiene.ssh_password_auth"
	// RuleRootLogin: root can log in remotely (PermitRootLogin yes, a
	// usable root password with a login shell, or root SSH keys without a
	// forced command).
	RuleRootLogin = "hygiene.root_login"
	// RuleSSHHostKeys is an alias of scanner/accounts' account.ssh_host_key
	// (SSH host private keys baked in). This package never emits it; see
	// Alias.
	RuleSSHHostKeys = "hygiene.ssh_host_keys"
	// RuleEOLOS: the OS release is past its vendor's end of life (made by
	// EOLFinding from trivy's OS detection).
	RuleEOLOS = "hygiene.eol_os"
	// RulePendingSecurityFixes: fixable vulnerabilities below the failing
	// threshold. Emitted by the policy evaluation, not by this package.
	RulePendingSecurityFixes = "hygiene.pending_security_fixes"
	// RuleLogFiles: non-empty log files, rotated logs, journal files,
	// login records (wtmp, btmp, lastlog) under var/log.
	RuleLogFiles = "hygiene.log_files"
	// RuleMachineID: a machine identity every clone would share
	// (etc/machine-id set, persistent network rules).
	RuleMachineID = "hygiene.machine_id"
	// RuleNoCloudInit (VM images only): no provisioning agent (cloud-init,
	// waagent, Ignition, cloudbase-init).
	RuleNoCloudInit = "hygiene.no_cloud_init"
	// RuleTempCredentials: credential files left in a home (.git-credentials,
	// .netrc, .pgpass, .my.cnf, docker, AWS, gcloud, kube).
	RuleTempCredentials = "hygiene.temp_credentials"
	// RuleUnreadable (informational): a file the check needs exists but
	// could not be inspected (too large, not a regular file, I/O error).
	RuleUnreadable = "hygiene.unreadable"
)

// Rules lists every rule id of this package, for policies and
// documentation: the ones Check emits, EOLFinding's, the alias
// RuleSSHHostKeys and RulePendingSecurityFixes (emitted by the policy
// evaluation). Read it only.
var Rules = []string{
	RuleShellHistory,
	RuleSSHPasswordAuth,
	RuleRootLogin,
	RuleSSHHostKeys,
	RuleEOLOS,
	RulePendingSecurityFixes,
	RuleLogFiles,
	RuleMachineID,
	RuleNoCloudInit,
	RuleTempCredentials,
	RuleUnreadable,
}

// Alias returns the rule id a policy rule id stands for: for
// "hygiene.ssh_host_keys" it returns ("account.ssh_host_key", true), the id
// scanner/accounts emits; for any other id (id, false). Policies should
// resolve rule ids (in rules: and in allow entries) through it.
func Alias(rule string) (string, bool) {
	if rule == RuleSSHHostKeys {
		return "account.ssh_host_key", true
	}
	return rule, false
}

// MaxFileSize is the largest file the check reads (4 MiB, as
// accounts.MaxFileSize); larger ones are reported under RuleUnreadable when
// their content matters, and judged by size when it does not.
const MaxFileSize = 4 << 20

// Unexported bounds on hostile input.
const (
	maxAccounts     = 10000 // etc/passwd entries read
	maxHomes        = 4096  // home directories inspected
	maxDirEntries   = 256   // entries of one credential directory inspected
	maxLogEntries   = 20000 // entries visited under var/log
	maxLogDepth     = 6     // directory levels under var/log
	maxLogFindings  = 32    // log files named one by one; then one summary
	maxSymlinkHops  = 8     // symbolic links followed for one file
	maxNameInMsg    = 64    // bytes of an account name shown in a message
	maxAccountsList = 5     // accounts named in one message
)

// Options configure the check. The zero value selects every default; there
// are none to tune today.
type Options struct{}

// Check is the scanner.Check of image hygiene (Name() == CheckName). Run
// returns an error when the target has no root file system or ctx ends
// first; unreadable files are findings, not errors.
type Check struct {
	Options Options
}

var _ scanner.Check = Check{}

// New returns the hygiene check.
func New(opt Options) scanner.Check { return Check{Options: opt} }

// AppliesTo says the check runs on images only (scanner.Applier).
func (Check) AppliesTo(k assetscan.Kind) bool { return k != assetscan.KindPackage }

// Name returns CheckName.
func (Check) Name() string { return CheckName }

// Run inspects t.RootFS.
func (c Check) Run(ctx context.Context, t *scanner.Target) (scanner.Result, error) {
	if t == nil || t.RootFS == nil {
		return scanner.Result{}, errors.New("hygiene: no root file system to inspect")
	}
	in := newInspector(ctx, t.RootFS, t.Kind)
	findings, err := in.run()
	if err != nil {
		return scanner.Result{}, err
	}
	detail := fmt.Sprintf("%d homes, %d sshd config files, %d log files", in.stats.homes, in.stats.sshdFiles, in.stats.logFiles)
	return scanner.Result{Findings: findings, Detail: detail}, nil
}

// Inspect examines the root file system fsys of an image of kind k (paths
// relative to "/", e.g. "etc/ssh/sshd_config") and returns its findings,
// each with Check CheckName, a Rule* id, the file's path inside the image
// and a message naming the account. The error is non-nil only when ctx
// ends first or fsys is nil.
func Inspect(ctx context.Context, fsys fs.FS, k assetscan.Kind, _ Options) ([]assetscan.Finding, error) {
	if fsys == nil {
		return nil, errors.New("hygiene: no root file system to inspect")
	}
	return newInspector(ctx, fsys, k).run()
}

// user is an etc/passwd entry.
type user struct {
	name, uid, home, shell string
	passwdPW               string
}

// inspector holds the state of one Inspect call.
type inspector struct {
	ctx        context.Context
	fsys       fs.FS
	kind       assetscan.Kind
	findings   []assetscan.Finding
	unreadable map[string]bool
	users      []user
	byName     map[string]int
	shadow     map[string]string // account -> password field
	sshd       *SSHDConfig       // nil when there is no sshd_config

	stats struct {
		homes, sshdFiles, logFiles int
	}
}

func newInspector(ctx context.Context, fsys fs.FS, k assetscan.Kind) *inspector {
	return &inspector{
		ctx:        ctx,
		fsys:       fsys,
		kind:       k,
		unreadable: map[string]bool{},
		byName:     map[string]int{},
		shadow:     map[string]string{},
	}
}

func (in *inspector) run() ([]assetscan.Finding, error) {
	steps := []func(){
		in.loadAccounts,
		in.loadSSHD,
		in.homesSteps,
		in.sshPasswordAuth,
		in.rootLogin,
		in.logFiles,
		in.machineID,
		in.provisioningAgent,
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
		Check:   CheckName,
		Rule:    rule,
		Path:    file,
		Message: msg,
	})
}

func (in *inspector) unreadableFinding(name, why string) {
	if in.unreadable[name] {
		return
	}
	in.unreadable[name] = true
	in.add(RuleUnreadable, name, fmt.Sprintf("%s could not be inspected for image hygiene: %s", name, why))
}

// loadAccounts reads etc/passwd and etc/shadow; the first entry of a name
// wins, as with getpwnam(3).
func (in *inspector) loadAccounts() {
	if data, ok := in.read("etc/passwd"); ok {
		for _, l := range lines(data) {
			f := strings.SplitN(l, ":", 8)
			if len(f) < 7 || f[0] == "" || strings.ContainsAny(f[0][:1], "#+-") {
				continue
			}
			if _, dup := in.byName[f[0]]; dup {
				continue
			}
			if len(in.users) >= maxAccounts {
				in.unreadableFinding("etc/passwd", fmt.Sprintf("it lists more than %d accounts; the others were not inspected", maxAccounts))
				break
			}
			in.byName[f[0]] = len(in.users)
			in.users = append(in.users, user{name: f[0], passwdPW: f[1], uid: f[2], home: f[5], shell: f[6]})
		}
	}
	if data, ok := in.read("etc/shadow"); ok {
		for _, l := range lines(data) {
			f := strings.SplitN(l, ":", 3)
			if len(f) < 2 || f[0] == "" {
				continue
			}
			if _, dup := in.shadow[f[0]]; !dup && len(in.shadow) < maxAccounts {
				in.shadow[f[0]] = f[1]
			}
		}
	}
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

// stat returns the file info of name, resolving symbolic links that fsys
// reports instead of following them itself (through fs.ReadLinkFS; targets
// resolve inside fsys). It returns the resolved name.
func stat(fsys fs.FS, name string) (string, fs.FileInfo, error) {
	for hop := 0; ; hop++ {
		fi, err := fs.Stat(fsys, name)
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			return name, fi, err
		}
		if hop >= maxSymlinkHops {
			return name, nil, errTooManyLinks
		}
		target, err := fs.ReadLink(fsys, name)
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

// size returns the size of the regular file name (following links); ok is
// false when it is absent, a directory or not a regular file.
func (in *inspector) size(name string) (int64, bool) {
	if !fs.ValidPath(name) || name == "." {
		return 0, false
	}
	_, fi, err := stat(in.fsys, name)
	if err != nil || !fi.Mode().IsRegular() {
		return 0, false
	}
	return fi.Size(), true
}

// exists reports whether name is there (a file or a directory).
func (in *inspector) exists(name string) bool {
	if !fs.ValidPath(name) {
		return false
	}
	_, _, err := stat(in.fsys, name)
	return err == nil
}

// read returns the content of the regular file name. A missing file or a
// directory gives ok == false silently; a file that exists but cannot be
// read (larger than MaxFileSize, not a regular file, I/O error) gives
// ok == false and a RuleUnreadable finding.
func (in *inspector) read(name string) ([]byte, bool) {
	data, err := readBounded(in.fsys, name, MaxFileSize)
	switch {
	case err == nil:
		return data, true
	case absent(err) || errors.Is(err, errIsDir):
		return nil, false
	case errors.Is(err, errTooLarge):
		in.unreadableFinding(name, "it is larger than 4 MiB")
	case errors.Is(err, errNotRegular):
		in.unreadableFinding(name, "it is not a regular file")
	default:
		in.unreadableFinding(name, "it cannot be read")
	}
	return nil, false
}

var (
	errTooLarge   = errors.New("file too large")
	errNotRegular = errors.New("not a regular file")
	errIsDir      = errors.New("is a directory")
)

// readBounded reads the regular file name of fsys, following links inside
// fsys, refusing files larger than limit bytes (errTooLarge).
func readBounded(fsys fs.FS, name string, limit int64) ([]byte, error) {
	if !fs.ValidPath(name) || name == "." {
		return nil, fs.ErrInvalid
	}
	real, fi, err := stat(fsys, name)
	switch {
	case err != nil:
		return nil, err
	case fi.IsDir():
		return nil, errIsDir
	case !fi.Mode().IsRegular():
		return nil, errNotRegular
	case fi.Size() > limit:
		return nil, errTooLarge
	}
	f, err := fsys.Open(real)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, errTooLarge
	}
	return data, nil
}

// readPrefix reads at most limit bytes of the regular file name (for files
// judged by their first bytes, such as a sparse lastlog).
func (in *inspector) readPrefix(name string, limit int64) ([]byte, bool) {
	real, fi, err := stat(in.fsys, name)
	if err != nil || !fi.Mode().IsRegular() {
		return nil, false
	}
	f, err := in.fsys.Open(real)
	if err != nil {
		in.unreadableFinding(name, "it cannot be read")
		return nil, false
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit))
	if err != nil {
		in.unreadableFinding(name, "it cannot be read")
		return nil, false
	}
	return data, true
}

// readDir lists the directory name (following links), at most limit
// entries; more are reported under RuleUnreadable.
func (in *inspector) readDir(name string, limit int) []fs.DirEntry {
	if !fs.ValidPath(name) {
		return nil
	}
	real, fi, err := stat(in.fsys, name)
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

// isDir reports whether name is a directory (following links).
func (in *inspector) isDir(name string) bool {
	if !fs.ValidPath(name) {
		return false
	}
	_, fi, err := stat(in.fsys, name)
	return err == nil && fi.IsDir()
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

// whose formats the accounts a home belongs to ("account \"root\"").
func whose(names []string) string {
	if len(names) == 0 {
		return "no account"
	}
	var q []string
	for i, n := range names {
		if i == maxAccountsList {
			q = append(q, fmt.Sprintf("and %d more", len(names)-i))
			break
		}
		q = append(q, quoteName(n))
	}
	if len(names) == 1 {
		return "account " + q[0]
	}
	return "accounts " + strings.Join(q, ", ")
}
