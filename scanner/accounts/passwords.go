package accounts

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// account is one OS account from etc/passwd and/or etc/shadow.
type account struct {
	name  string
	uid   string
	home  string // as written in etc/passwd (absolute), "" if unknown
	shell string

	inPasswd, inShadow bool
	passwdPW, shadowPW string
}

// pwKind classifies a password field.
type pwKind int

const (
	pwNone  pwKind = iota // no usable password: locked, "x", "*", "NP", ...
	pwEmpty               // empty: login without a password
	pwHash                // a hash some password can match
)

// classify tells what a password field of etc/shadow or etc/passwd allows.
// A field starting with '!' or '*' is locked ("!", "!!", "*", "*LK*",
// "!$6$..."); otherwise a field is usable if crypt(3) can produce it: a
// modular crypt hash ("$id$..."), a 13-character DES hash or a 20-character
// BSDi hash. Anything else ("x", "NP", "LOCKED", ...) no password matches.
func classify(f string) pwKind {
	switch {
	case f == "":
		return pwEmpty
	case f[0] == '!' || f[0] == '*':
		return pwNone
	case f[0] == '$':
		if len(f) > 3 {
			return pwHash
		}
		return pwNone
	case len(f) == 13 && allCryptB64(f):
		return pwHash
	case len(f) == 20 && f[0] == '_' && allCryptB64(f[1:]):
		return pwHash
	}
	return pwNone
}

func allCryptB64(s string) bool {
	for i := 0; i < len(s); i++ {
		if atoi64(s[i]) > 63 {
			return false
		}
	}
	return true
}

// account returns the account named name, creating it, or nil once
// maxAccounts accounts exist (reported once under RuleUnreadable).
func (in *inspector) account(file, name string) *account {
	if a := in.byName[name]; a != nil {
		return a
	}
	if len(in.accounts) >= maxAccounts {
		in.unreadableFinding(file, fmt.Sprintf("it lists more than %d accounts; the others were not inspected", maxAccounts))
		return nil
	}
	a := &account{name: name}
	in.byName[name] = a
	in.accounts = append(in.accounts, a)
	return a
}

// loadAccounts reads etc/passwd and etc/shadow. The first entry of a name
// wins, as with getpwnam(3). NIS compat entries (+, -) and comments are
// skipped.
func (in *inspector) loadAccounts() {
	if data, ok := in.read("etc/passwd"); ok {
		for _, l := range lines(data) {
			f := strings.SplitN(l, ":", 8)
			if len(f) < 2 || f[0] == "" || strings.ContainsAny(f[0][:1], "#+-") {
				continue
			}
			a := in.account("etc/passwd", f[0])
			if a == nil || a.inPasswd {
				continue
			}
			a.inPasswd, a.passwdPW = true, f[1]
			if len(f) > 2 {
				a.uid = f[2]
			}
			if len(f) > 5 {
				a.home = f[5]
			}
			if len(f) > 6 {
				a.shell = f[6]
			}
		}
	}
	if data, ok := in.read("etc/shadow"); ok {
		for _, l := range lines(data) {
			f := strings.SplitN(l, ":", 3)
			if len(f) < 2 || f[0] == "" || strings.ContainsAny(f[0][:1], "#+-") {
				continue
			}
			a := in.account("etc/shadow", f[0])
			if a == nil || a.inShadow {
				continue
			}
			a.inShadow, a.shadowPW = true, f[1]
		}
	}
}

// passwords reports empty, preset and weak passwords of the accounts.
//
// A password field in etc/passwd other than "x" is used as is by login,
// pam_unix and sshd, shadow entry or not, so an empty field there means
// login without a password even when etc/shadow has an entry. To stay on
// the safe side, an empty field or a usable hash in either file is
// reported, whichever file login would actually consult.
func (in *inspector) passwords() {
	for _, a := range in.accounts {
		if in.ctx.Err() != nil {
			return
		}
		empty := ""
		if a.inShadow && classify(a.shadowPW) == pwEmpty {
			empty = "etc/shadow"
		}
		if a.inPasswd && classify(a.passwdPW) == pwEmpty {
			empty = "etc/passwd"
		}
		if empty != "" {
			in.add(RuleEmptyPassword, empty, fmt.Sprintf(
				"account %s has an empty password in %s: anyone can log in as it without a password; lock the account or remove it",
				quoteName(a.name), empty))
		}
		type src struct{ file, hash string }
		var hashes []src
		if a.inShadow && classify(a.shadowPW) == pwHash {
			hashes = append(hashes, src{"etc/shadow", a.shadowPW})
		}
		if a.inPasswd && classify(a.passwdPW) == pwHash && (len(hashes) == 0 || hashes[0].hash != a.passwdPW) {
			hashes = append(hashes, src{"etc/passwd", a.passwdPW})
		}
		if len(hashes) == 0 {
			continue
		}
		in.add(RulePresetPassword, hashes[0].file, fmt.Sprintf(
			"account %s has a password set (%s hash in %s): every instance of the image would accept the same password; lock the account (passwd -l) or remove the hash",
			quoteName(a.name), schemeOf(hashes[0].hash), hashes[0].file))
		for _, h := range hashes {
			in.weakCheck(a.name, h.file, h.hash)
		}
	}
	if n := len(in.weakSkipped); n > 0 {
		in.add(RuleWeakPasswordUnchecked, "", fmt.Sprintf(
			"the password hashes of %d more accounts (%s) were not checked against common passwords: at most %d hashes are checked per image",
			n, nameList(in.weakSkipped), maxWeakHashes))
	}
}

// candidates returns the passwords tried against a hash of account,
// likeliest first, so that a slow hash cut short by MaxHashTime has still
// been tried against the best guesses: the empty password and the account
// name, the head of the weak list, the other name variants, the rest of
// the list.
func (in *inspector) candidates(account string) []string {
	seen := map[string]bool{}
	var out []string
	add := func(cs []string) {
		for _, c := range cs {
			if !seen[c] {
				seen[c] = true
				out = append(out, c)
			}
		}
	}
	variants := nameVariants(account)
	head := min(len(variants), 3)
	listHead := min(len(in.weakList), 12)
	add(variants[:head])
	add(in.weakList[:listHead])
	add(variants[head:])
	add(in.weakList[listHead:])
	return out
}

// nameVariants returns the empty password, the account name and simple
// variants of it, likeliest first.
func nameVariants(name string) []string {
	out := []string{""}
	if name == "" {
		return out
	}
	if len(name) > 64 {
		name = name[:64]
	}
	lower := strings.ToLower(name)
	upper := strings.ToUpper(name)
	title := lower
	if r, n := utf8.DecodeRuneInString(lower); r != utf8.RuneError {
		title = string(unicode.ToUpper(r)) + lower[n:]
	}
	rs := []rune(name)
	for i, j := 0, len(rs)-1; i < j; i, j = i+1, j-1 {
		rs[i], rs[j] = rs[j], rs[i]
	}
	return append(out,
		name, lower, title, upper,
		name+"123", name+"1", name+"12", name+"1234", name+"!", name+"@123", name+"#123", name+"123!", name+"2024", name+"2025",
		title+"123", title+"1", title+"@123", title+"123!", title+"!", title+"#123",
		name+name, string(rs), name+"pass", name+"pw", "password")
}

// weakCheck tries the candidates of account against hash (found in file)
// within opt.MaxHashTime and reports a match, an unsupported scheme, or a
// check cut short.
func (in *inspector) weakCheck(account, file, hash string) {
	key := account + "\x00" + hash
	if in.weakDone[key] {
		return
	}
	in.weakDone[key] = true
	if in.stats.hashesChecked >= maxWeakHashes {
		in.weakSkipped = append(in.weakSkipped, account)
		return
	}
	in.stats.hashesChecked++
	scheme := schemeOf(hash)
	who := "account " + quoteName(account)
	if account == "" {
		who = "the default user"
	}
	deadline := time.Now().Add(in.opt.MaxHashTime)
	stop := func() bool { return in.ctx.Err() != nil || time.Now().After(deadline) }
	v, err := newVerifier(hash, stop)
	switch {
	case errors.Is(err, errTooCostly):
		in.add(RuleWeakPasswordUnchecked, file, fmt.Sprintf(
			"the password of %s (in %s) was not checked against common passwords: %s, so one attempt would take too long",
			who, file, strings.TrimSuffix(err.Error(), ": "+errTooCostly.Error())))
		return
	case err != nil:
		in.add(RuleUnsupportedHash, file, fmt.Sprintf(
			"the password of %s (in %s) uses a hash this scanner cannot verify (%s), so it was not checked against common passwords",
			who, file, strings.TrimSuffix(err.Error(), ": "+errUnsupported.Error())))
		return
	}
	cands := in.candidates(account)
	for i, c := range cands {
		if i > 0 && stop() {
			in.uncheckedFinding(who, file, scheme, i, len(cands))
			return
		}
		ok, err := v.verify([]byte(c))
		switch {
		case errors.Is(err, errYescryptAborted):
			in.uncheckedFinding(who, file, scheme, i, len(cands))
			return
		case err != nil:
			in.add(RuleUnsupportedHash, file, fmt.Sprintf(
				"the password of %s (in %s) has a malformed %s hash this scanner cannot verify, so it was not checked against common passwords",
				who, file, scheme))
			return
		case ok:
			in.add(RuleWeakPassword, file, fmt.Sprintf(
				"the password of %s (%s hash in %s) matches a common or guessable password (the account name, a variant of it, or a widely used password): anyone can log in to every instance of the image",
				who, scheme, file))
			return
		}
	}
}

func (in *inspector) uncheckedFinding(who, file, scheme string, tried, total int) {
	in.add(RuleWeakPasswordUnchecked, file, fmt.Sprintf(
		"the password of %s (%s hash in %s) was checked against only %d of %d common and guessable passwords within the %v limit; it may still be weak",
		who, scheme, file, tried, total, in.opt.MaxHashTime))
}
