package report

import (
	"fmt"
	"strings"

	"github.com/assetscan/assetscan"
)

// ruleText is what the reports say about one rule id: Title names the
// problem in a few words; Fix says what to do, with placeholders filled
// from the finding ({path}, {file}, {layer}, {package}, {installed},
// {fixed}, {id}, {signature}, {line}). Placeholders the finding cannot
// fill read as a generic phrase ("the file"), which is also how Fix reads
// as a rule's help text in SARIF.
type ruleText struct {
	Title string
	Fix   string
}

// rules is the one table of rule texts, for every format (HTML, SARIF
// help, the CLI table). Keys are rule ids as findings and verdicts carry
// them. Rule ids not listed fall back to prefixes (see lookup).
func rules() map[string]ruleText {
	return map[string]ruleText{
		// format
		"format.name":            {"file name breaks the name rule", "rename the file: only letters, digits, -, _ and ( ) before the extension (.zip, .tar, .tar.gz or .tgz)"},
		"format.size":            {"package larger than allowed", "make the package smaller than the limit: leave out build output, caches, test data and bundled downloads"},
		"format.unsupported":     {"not an accepted container format", "repackage as .zip, .tar or .tar.gz"},
		"format.mismatch":        {"file name and content disagree", "give the file the extension of its real format, or repackage it in the format its name claims"},
		"format.digest_mismatch": {"content differs from the submitted SHA-256", "upload the file again and submit the SHA-256 of exactly the uploaded bytes"},

		// archive
		"archive.traversal":        {"entry name escapes the archive", "repackage without absolute paths, drive letters or \"..\" in entry names ({path})"},
		"archive.link_escape":      {"link points outside the archive", "replace the link {path} with the file it points to, or make it point inside the package"},
		"archive.link":             {"link inside the archive", "no action needed; links are not followed (replace {path} with a regular file to have it scanned)"},
		"archive.special_file":     {"device, fifo or socket in the archive", "remove {path} from the package: packages may hold only regular files, directories and links"},
		"archive.bomb":             {"archive expands beyond the limits", "repackage without highly compressed filler or overlapping entries ({path}); split very large content"},
		"archive.too_many_entries": {"too many files", "reduce the number of files: leave out caches, build output and test data"},
		"archive.too_deep":         {"archives nested too deeply", "flatten the nested archives below {path}: unpack inner archives into the package"},
		"archive.corrupt":          {"corrupt or truncated archive", "rebuild and re-upload {path}: it is truncated or corrupt"},
		"archive.duplicate":        {"duplicate entry", "remove the duplicate entry {path}: every path may appear once"},
		"archive.unsupported":      {"unsupported archive or compression", "repackage {path} as .zip (stored or deflate), .tar or .tar.gz"},
		"archive.bad_name":         {"unusable entry name", "rename {path}: names up to 255 bytes per component, 4096 in all, no control characters"},
		"archive.hidden_data":      {"bytes outside any archive entry", "rebuild {path} with a standard archiver: it holds data no entry accounts for (prefixed, appended or hidden between entries)"},
		"archive.prefix_script":    {"script prepended to an archive", "ship {path} as a plain archive without a prepended script"},
		"archive.sfx_stub":         {"self-extracting archive", "ship {path} as a plain archive, not a self-extracting executable"},

		// vulnerability (judged rule ids; Remediation templates the package)
		"vulnerability.cvss":            {"vulnerability with CVSS score at or above the threshold", "upgrade {package} to {fixed} or later"},
		"vulnerability.severity":        {"high or critical vulnerability without a CVSS score", "upgrade {package} to {fixed} or later"},
		"vulnerability.below_threshold": {"vulnerability below the fail threshold", "upgrade {package} to {fixed} or later when you can"},

		// secret (judged rule ids are secret.<trivy category, lower case>)
		"secret.asymmetricprivatekey": {"private key in the package", "remove the private key {file} from the package, revoke it, and load keys at run time from a secret store"},
		"secret.aws":                  {"AWS credentials in the package", "remove the AWS credential from {file}, deactivate the access key in IAM, and load credentials at run time"},
		"secret.alibaba":              {"Alibaba Cloud credentials in the package", "remove the Alibaba Cloud AccessKey from {file}, disable it in RAM, and load credentials at run time"},
		"secret.google":               {"Google Cloud credentials in the package", "remove the Google credential from {file}, revoke it, and load credentials at run time"},
		"secret.azure":                {"Azure credentials in the package", "remove the Azure credential from {file}, rotate it, and load credentials at run time"},

		// malware
		"malware.detected":    {"malware detected", "remove {path} ({signature}) from the package, check the build machine, and rebuild from clean sources"},
		"malware.unscannable": {"content that cannot be scanned", "ship {path} unencrypted and uncompressed by unusual methods, so it can be scanned"},

		// account
		"account.preset_password":         {"account with a preset password", "lock the password of the account in {path} (passwd -l) and let buyers set credentials at first boot (cloud-init)"},
		"account.empty_password":          {"account with an empty password", "lock the account in {path} (passwd -l): an empty password lets anyone log in"},
		"account.weak_password":           {"weak account password", "lock the password of the account in {path} (passwd -l), or set one of at least 8 characters from 2 character classes"},
		"account.weak_password_unchecked": {"password not checked for strength", "no action needed unless the account should have no password: then lock it (passwd -l)"},
		"account.unsupported_hash":        {"password hash scheme not recognised", "lock the password (passwd -l) or use a standard scheme (yescrypt, SHA-512 crypt)"},
		"account.preset_key":              {"preset SSH authorized_keys", "remove {path} from the image: buyers add their own keys at first boot"},
		"account.login_private_key":       {"private login key in the image", "remove {path} from the image and revoke the key"},
		"account.ssh_host_key":            {"SSH host key baked into the image", "remove {path}: host keys are generated at first boot (ssh-keygen -A / cloud-init)"},
		"account.cloud_init_password":     {"cloud-init sets a password", "remove the password setting from {path}; let buyers pass credentials as user data"},
		"account.declared_password_weak":  {"declared initial password too weak", "declare a password of at least 8 characters from at least 2 classes (lower, upper, digit, special), not the account name"},
		"account.unreadable":              {"account file could not be read", "make {path} a regular, readable file so it can be checked"},
		"account.root_key_disabled":       {"root SSH keys that cannot open a shell", "no action needed; better still, remove {path} and let cloud-init install keys at first boot"},

		// image
		"image.unreadable":            {"image could not be read", "re-export the image ({path}): docker save, or raw/VMDK/QCOW2 with ext4 or XFS file systems"},
		"image.multiple_images":       {"more than one image in the upload", "upload exactly one image per asset"},
		"image.layer_digest_mismatch": {"layer content does not match its digest", "re-export the image with docker save; layer {layer} is corrupt or altered"},
		"image.external_reference":    {"disk image refers to another file", "convert to a standalone image without backing files (qemu-img convert)"},
		"image.too_large":             {"virtual disk larger than allowed", "shrink the virtual disk below the limit"},
		"image.partition_skipped":     {"partition not inspected", "no action needed: {path} holds no Linux file system"},
		"image.windows_credentials":   {"Windows credentials in the image", "remove {path} (answer files with passwords, saved credentials) and change the passwords it held"},
		"vulndb.stale":                {"vulnerability database too old", "no action for the seller: the scan is retried once the vulnerability database is updated"},

		// hygiene (images)
		"hygiene.shell_history":          {"shell history left in the image", "empty {path} and the other history files before capturing the image"},
		"hygiene.ssh_password_auth":      {"SSH password login enabled", "set PasswordAuthentication no in {path} (and sshd_config.d/*.conf)"},
		"hygiene.root_login":             {"root can log in remotely", "set PermitRootLogin no (or prohibit-password) and lock the root password (passwd -l root)"},
		"hygiene.ssh_host_keys":          {"SSH host keys baked into the image", "remove {path}: host keys are generated at first boot (ssh-keygen -A / cloud-init)"},
		"hygiene.eol_os":                 {"operating system past end of life", "rebuild the image on a supported release of the operating system"},
		"hygiene.pending_security_fixes": {"security updates not installed", "install pending updates (apt-get upgrade / dnf upgrade / apk upgrade) before capturing the image"},
		"hygiene.log_files":              {"log files left in the image", "truncate {path} and the other logs before capturing the image"},
		"hygiene.machine_id":             {"machine identity baked into the image", "empty /etc/machine-id and remove persistent network rules before capturing the image"},
		"hygiene.no_cloud_init":          {"no provisioning agent", "install cloud-init (or the cloud's agent) so buyers can provision credentials"},
		"hygiene.temp_credentials":       {"credentials file left in the image", "remove {path} and revoke the credentials it holds"},
		"hygiene.unreadable":             {"file could not be checked", "make {path} a regular, readable file of reasonable size so it can be checked"},
	}
}

// prefixes are the fallbacks for rule ids the table does not name, by
// check prefix (new rules are added by checks before this table learns
// them).
func prefixes() map[string]ruleText {
	return map[string]ruleText{
		"format.":        {"format or name problem", "repackage as .zip, .tar or .tar.gz with a file name of letters, digits, -, _ and ( )"},
		"archive.":       {"archive problem", "rebuild {path} with a standard archiver, without links out of the package, special files or hidden data"},
		"vulnerability.": {"known vulnerability", "upgrade {package} to {fixed} or later"},
		"secret.":        {"secret in the package", "remove the secret from {file}, revoke or rotate it, and load it at run time from a secret store"},
		"malware.":       {"malware check problem", "remove or replace {path} so the malware check can scan it clean"},
		"account.":       {"preset account or credential", "remove preset credentials from {path}: lock passwords, remove keys; buyers provision their own"},
		"image.":         {"image problem", "re-export the image as one standalone image"},
		"hygiene.":       {"image hygiene", "clean {path} before capturing the image"},
		"vulndb.":        {"vulnerability database problem", "no action for the seller: the scan is retried when the vulnerability database is current"},
	}
}

// lookup finds the text of rule id: the exact id, else its check prefix,
// else a generic text.
func lookup(rule string) ruleText {
	if t, ok := rules()[rule]; ok {
		return t
	}
	if i := strings.IndexByte(rule, '.'); i > 0 {
		if t, ok := prefixes()[rule[:i+1]]; ok {
			return t
		}
	}
	return ruleText{Title: rule, Fix: "see the finding's message; fix it and submit again"}
}

// RuleTitle names the problem a rule id reports, in a few words
// ("file name breaks the name rule"). Unknown ids get their check's
// generic title, or the id itself.
func RuleTitle(rule string) string { return lookup(rule).Title }

// RuleHelp is the rule's remediation without a finding: the Fix text with
// generic words for the placeholders ("upgrade the package to the fixed
// version or later"). SARIF uses it as the rule's help.text.
func RuleHelp(rule string) string {
	return fill(lookup(rule).Fix, assetscan.Finding{})
}

// Remediation is the short, actionable text telling the seller how to fix
// one finding, e.g. "upgrade lodash to 4.17.12 or later" or "remove
// root/.ssh/authorized_keys from the image". It accepts raw findings
// (rule "vulnerability", "secret") as well as judged ones
// (JudgedFinding.Finding with "vulnerability.cvss", "secret.aws"). Never
// empty.
func Remediation(f assetscan.Finding) string {
	rule := f.Rule
	switch {
	case f.Vulnerability != nil && !strings.HasPrefix(rule, "vulnerability."):
		rule = "vulnerability.cvss"
	case f.Secret != nil && !strings.HasPrefix(rule, "secret."):
		rule = "secret." + strings.ToLower(f.Secret.Category)
	}
	if v := f.Vulnerability; v != nil && v.FixedVersion == "" {
		return fmt.Sprintf("no fixed version of %s is known yet: replace %s with another package, or remove it if it is not needed", orDefault(v.Package, "the package"), orDefault(v.Package, "it"))
	}
	return fill(lookup(rule).Fix, f)
}

// fill replaces the placeholders of a Fix text with the finding's fields.
func fill(tmpl string, f assetscan.Finding) string {
	pkg, installed, fixed, id := "the package", "", "the fixed version", ""
	if v := f.Vulnerability; v != nil {
		pkg = orDefault(v.Package, pkg)
		installed, id = v.InstalledVersion, v.ID
		// trivy lists several fixed versions ("4.17.12, 5.0.1"); the
		// first is the lowest upgrade on the installed line.
		if first, _, _ := strings.Cut(v.FixedVersion, ","); strings.TrimSpace(first) != "" {
			fixed = strings.TrimSpace(first)
		}
	}
	file := orDefault(f.Path, "the file")
	if s := f.Secret; s != nil && s.Line > 0 && f.Path != "" {
		file = fmt.Sprintf("%s (line %d)", f.Path, s.Line)
	}
	signature := "the detection"
	if m := f.Malware; m != nil && m.Signature != "" {
		signature = m.Signature
	}
	line := ""
	if f.Secret != nil && f.Secret.Line > 0 {
		line = fmt.Sprint(f.Secret.Line)
	}
	return strings.NewReplacer(
		"{path}", orDefault(f.Path, "the file"),
		"{file}", file,
		"{layer}", orDefault(f.Layer, "the layer"),
		"{package}", pkg,
		"{installed}", installed,
		"{fixed}", fixed,
		"{id}", id,
		"{signature}", signature,
		"{line}", line,
	).Replace(tmpl)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
