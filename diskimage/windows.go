package diskimage

import (
	"io"
	"path"
	"regexp"
	"strings"

	"github.com/assetscan/assetscan"
)

// Windows credential findings, reported for NTFS file systems only (Linux
// roots have the account check and trivy's secret scanner).
const (
	// RuleWindowsAnswerPassword (check assetscan.CheckAccount): a Windows
	// setup answer file (unattend.xml, autounattend.xml, sysprep.inf) holds
	// a password value: the administrator's or a local account's password
	// ships with the image. The account check's preset-password rule.
	RuleWindowsAnswerPassword = "account.preset_password"
	// RuleWindowsKeyFile (check assetscan.CheckSecret): a private key or
	// certificate store file (*.pfx, *.p12, *.key, *.ppk, *.pem holding a
	// private key) ships with the image. It is a secret finding of
	// category AsymmetricPrivateKey (SecretRuleWindowsKeyFile), as trivy
	// reports a private key in a file.
	RuleWindowsKeyFile       = "secret"
	SecretRuleWindowsKeyFile = "windows-key-store"
)

const (
	maxWinCandidates = 1000
	maxAnswerFile    = 1 << 20
)

var (
	answerPassword = regexp.MustCompile(`(?is)<(AdministratorPassword|Password)>\s*<Value>\s*([^<\s][^<]*)</Value>`)
	infPassword    = regexp.MustCompile(`(?im)^\s*AdminPassword\s*=\s*"?([^"\r\n]*)`)
)

type winCandidate struct {
	fs   int
	path string
	size int64
}

// windowsCandidate reports whether a file of an NTFS file system is one the
// Windows credential check reads or reports.
func windowsCandidate(p string) bool {
	base := strings.ToLower(path.Base(p))
	switch base {
	case "unattend.xml", "autounattend.xml", "sysprep.inf":
		return true
	}
	switch path.Ext(base) {
	case ".pfx", ".p12", ".key", ".ppk", ".pem":
		return true
	}
	return false
}

// windowsCredentials inspects the candidates Open's walk collected.
func (d *Disk) windowsCredentials(cands []winCandidate) []assetscan.Finding {
	var out []assetscan.Finding
	for _, c := range cands {
		s := d.mnts[c.fs]
		p := d.prefix(c.fs) + c.path
		base := strings.ToLower(path.Base(c.path))
		switch base {
		case "unattend.xml", "autounattend.xml", "sysprep.inf":
			b, err := readSmall(s, c.path, maxAnswerFile)
			if err != nil {
				continue // reported by Open if corrupt
			}
			if answerPassword.Match(b) || passwordInINF(b) {
				out = append(out, assetscan.Finding{Check: assetscan.CheckAccount, Rule: RuleWindowsAnswerPassword, Path: p,
					Message: "Windows setup answer file /" + printable(c.path, 200) + " holds a password (administrator or local account): the image ships a preset password; remove the file or its password before publishing"})
			}
		default:
			if path.Ext(base) == ".pem" {
				b, err := readSmall(s, c.path, maxAnswerFile)
				if err != nil || !strings.Contains(string(b), "PRIVATE KEY-----") {
					continue
				}
			}
			out = append(out, assetscan.Finding{Check: assetscan.CheckSecret, Rule: RuleWindowsKeyFile, Path: p,
				Message: "private key or certificate store /" + printable(c.path, 200) + " ships with the image",
				Secret: &assetscan.Secret{RuleID: SecretRuleWindowsKeyFile, Category: "AsymmetricPrivateKey",
					Title: "Private key or certificate store file", Severity: "HIGH"}})
		}
	}
	return out
}

func passwordInINF(b []byte) bool {
	for _, m := range infPassword.FindAllSubmatch(b, -1) {
		v := strings.TrimSpace(string(m[1]))
		if v != "" && v != "*" {
			return true
		}
	}
	return false
}

func readSmall(s *safeFS, p string, max int64) ([]byte, error) {
	f, err := s.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, max))
}

// windowsInstalled reports whether an NTFS file system holds a Windows
// installation: Windows/System32/config/SYSTEM or SOFTWARE (names compared
// case-insensitively, as Windows does).
func windowsInstalled(s *safeFS) bool {
	dir := s.top
	for _, c := range []string{"windows", "system32", "config"} {
		list, err := s.list(dir)
		if err != nil {
			return false
		}
		var next *entry
		for _, e := range list {
			if e.IsDir() && strings.EqualFold(e.name, c) {
				next = e
				break
			}
		}
		if next == nil {
			return false
		}
		dir = next
	}
	list, err := s.list(dir)
	if err != nil {
		return false
	}
	for _, e := range list {
		if e.mode.IsRegular() && (strings.EqualFold(e.name, "SYSTEM") || strings.EqualFold(e.name, "SOFTWARE")) {
			return true
		}
	}
	return false
}
