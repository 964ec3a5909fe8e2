package hygiene

import (
	"bytes"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strings"

	"github.com/assetscan/assetscan"
)

// loginRecords are the binary login record files under var/log; they count
// when they hold a non-zero byte (lastlog is sparse and all zeros when
// nobody logged in; only its first MaxFileSize bytes, uid 0 to ~14000, are
// read).
var loginRecords = map[string]bool{"var/log/wtmp": true, "var/log/btmp": true, "var/log/lastlog": true, "var/log/faillog": true}

// plainLogNames are log files without a .log suffix (syslog, RHEL family).
var plainLogNames = map[string]bool{
	"syslog": true, "messages": true, "secure": true, "maillog": true, "cron": true,
	"auth": true, "kern": true, "daemon": true, "debug": true, "user": true, "mail": true,
	"cloud-init-output": true,
}

// rotatedRE matches rotated logs: name.1, name.2.gz, name.gz, name-20240101,
// name-20240101.gz, name.old.
var rotatedRE = regexp.MustCompile(`(\.\d+|-\d{8}|\.old|\.gz|\.xz|\.bz2|\.zst|\.lz4)$`)

// isLogName reports whether a file under var/log is a log by its name.
func isLogName(p string) bool {
	if strings.HasPrefix(p, "var/log/journal/") {
		return true
	}
	base := path.Base(p)
	if rotatedRE.MatchString(base) {
		return true
	}
	if strings.HasSuffix(base, ".log") || strings.HasSuffix(base, "_log") {
		return true
	}
	return plainLogNames[base]
}

// logFiles reports non-empty logs under var/log: *.log and the syslog
// files, rotated logs, journal files, and login records with entries. The
// first maxLogFindings are named one by one, the rest counted in one more
// finding. Directories are walked without following links, bounded in
// entries and depth.
func (in *inspector) logFiles() {
	const root = "var/log"
	if !in.isDir(root) {
		return
	}
	var found []string
	visited := 0
	walkRoot := root
	if r, _, err := stat(in.fsys, root); err == nil {
		walkRoot = r // var/log may be a link (to var/run/log, ...)
	}
	_ = fs.WalkDir(in.fsys, walkRoot, func(p string, d fs.DirEntry, err error) error {
		if in.ctx.Err() != nil {
			return fs.SkipAll
		}
		if err != nil {
			return nil
		}
		visited++
		if visited > maxLogEntries {
			in.unreadableFinding(root, fmt.Sprintf("it holds more than %d entries; the others were not inspected for logs", maxLogEntries))
			return fs.SkipAll
		}
		name := root + strings.TrimPrefix(p, walkRoot)
		if d.IsDir() {
			if strings.Count(name, "/")-1 > maxLogDepth {
				return fs.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		in.stats.logFiles++
		fi, err := d.Info()
		if err != nil || fi.Size() == 0 {
			return nil
		}
		switch {
		case loginRecords[name]:
			if data, ok := in.readPrefix(p, MaxFileSize); ok && len(bytes.Trim(data, "\x00")) > 0 {
				found = append(found, name)
			}
		case isLogName(name):
			found = append(found, name)
		}
		return nil
	})
	for i, p := range found {
		if i == maxLogFindings {
			in.add(RuleLogFiles, root, fmt.Sprintf("%s holds %d more non-empty log files: clear logs before publishing the image", root, len(found)-i))
			break
		}
		what := "a non-empty log file"
		switch {
		case loginRecords[p]:
			what = "a login record file with entries"
		case strings.HasPrefix(p, "var/log/journal/"):
			what = "a systemd journal file"
		case rotatedRE.MatchString(path.Base(p)):
			what = "a rotated log file"
		}
		in.add(RuleLogFiles, p, fmt.Sprintf("%s is %s left from building the image: clear logs before publishing the image", p, what))
	}
}

// machineID reports a machine identity that clones would share:
// etc/machine-id (and var/lib/dbus/machine-id) set to an id, and persistent
// network rules naming MAC addresses.
func (in *inspector) machineID() {
	for _, p := range []string{"etc/machine-id", "var/lib/dbus/machine-id"} {
		data, ok := in.read(p)
		if !ok {
			continue
		}
		v := strings.TrimSpace(string(data))
		if v == "" || v == "uninitialized" {
			continue
		}
		in.add(RuleMachineID, p, fmt.Sprintf(
			"%s holds a machine id: every instance would share it; empty the file (truncate, do not delete) so that each instance gets its own at first boot", p))
	}
	const rules = "etc/udev/rules.d/70-persistent-net.rules"
	if data, ok := in.read(rules); ok && hasContentLine(data) {
		in.add(RuleMachineID, rules, fmt.Sprintf(
			"%s pins network interface names to the MAC addresses of the build machine: delete it", rules))
	}
}

// agentPaths are files any one of which shows a provisioning agent:
// cloud-init, the Azure Linux agent, Ignition (Fedora CoreOS, Flatcar),
// cloudbase-init (Windows).
var agentPaths = []string{
	"usr/bin/cloud-init", "usr/local/bin/cloud-init", "etc/cloud/cloud.cfg",
	"usr/sbin/waagent", "usr/bin/waagent", "etc/waagent.conf",
	"usr/lib/dracut/modules.d/30ignition", "usr/lib/dracut/modules.d/35ignition", "usr/bin/ignition", "usr/lib/ignition",
	"Program Files/Cloudbase Solutions/Cloudbase-Init",
}

// provisioningAgent reports a VM image without a provisioning agent.
func (in *inspector) provisioningAgent() {
	if in.kind != assetscan.KindVMImage {
		return
	}
	for _, p := range agentPaths {
		if in.exists(p) {
			return
		}
	}
	in.add(RuleNoCloudInit, "etc/cloud/cloud.cfg", "the image has no provisioning agent (no cloud-init: usr/bin/cloud-init, etc/cloud/cloud.cfg; no waagent, Ignition or cloudbase-init): buyers' SSH keys, host names and passwords cannot be set up at first boot")
}

// EOLFinding returns the RuleEOLOS finding for an image whose OS os is past
// its vendor's end of life (eosl, trivy's report Metadata.OS.Eosl), or nil
// when os is nil or not end of life. The finding's Path is empty (it is
// about the whole image). Once assetscan.OSInfo carries EOSL, call it as
// EOLFinding(res.OS, res.OS != nil && res.OS.EOSL).
func EOLFinding(os *assetscan.OSInfo, eosl bool) *assetscan.Finding {
	if os == nil || !eosl {
		return nil
	}
	name := strings.TrimSpace(clip(os.Family, 32) + " " + clip(os.Name, 32))
	return &assetscan.Finding{
		Check:   CheckName,
		Rule:    RuleEOLOS,
		Message: fmt.Sprintf("the operating system %s is past its vendor's end of life: it gets no security fixes; rebuild the image on a supported release", name),
	}
}
