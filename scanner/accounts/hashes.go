package accounts

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/GehirnInc/crypt"
	"github.com/GehirnInc/crypt/md5_crypt"
	"github.com/GehirnInc/crypt/sha256_crypt"
	"github.com/GehirnInc/crypt/sha512_crypt"
	"golang.org/x/crypto/bcrypt"
)

// Cost ceilings for the schemes whose verification cannot be interrupted.
// A hash above them is reported as unchecked instead of being tried: one
// verification would already take about a second or more.
const (
	maxBcryptCost = 14        // about 1 s per candidate
	maxShaRounds  = 2_000_000 // about 1 s per candidate (sha512crypt)
)

// errUnsupported is returned (wrapped) for hash schemes that cannot be
// verified; the message names the scheme.
var errUnsupported = errors.New("unsupported hash scheme")

// errTooCostly is returned (wrapped) for hashes whose cost parameters are
// above what the scanner is willing to spend on one candidate.
var errTooCostly = errors.New("hash cost parameters too high")

// verifier checks candidate passwords against one hash.
type verifier interface {
	// verify reports whether password matches. It returns
	// errYescryptAborted when asked to stop mid-way.
	verify(password []byte) (bool, error)
}

type cryptVerifier struct {
	c    crypt.Crypter
	hash string
}

func (v cryptVerifier) verify(pw []byte) (ok bool, err error) {
	defer func() {
		// The library has no reason to panic, but the hash is hostile.
		if recover() != nil {
			ok, err = false, errors.New("verification failed")
		}
	}()
	err = v.c.Verify(v.hash, pw)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, crypt.ErrKeyMismatch) {
		return false, nil
	}
	return false, err
}

type bcryptVerifier struct{ hash []byte }

func (v bcryptVerifier) verify(pw []byte) (bool, error) {
	if len(pw) > 72 { // bcrypt only uses the first 72 bytes
		pw = pw[:72]
	}
	err := bcrypt.CompareHashAndPassword(v.hash, pw)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
		return false, nil
	}
	return false, err
}

type yescryptVerifier struct{ st *yescryptState }

func (v yescryptVerifier) verify(pw []byte) (ok bool, err error) {
	defer func() {
		// Defensive, as for cryptVerifier: a panic must not end the scan.
		if recover() != nil {
			ok, err = false, errors.New("verification failed")
		}
	}()
	return v.st.verify(pw)
}

// schemeOf names the hashing scheme of a usable password field, for
// messages. It never returns any part of the hash but the scheme id.
func schemeOf(h string) string {
	switch {
	case strings.HasPrefix(h, "$y$"):
		return "yescrypt"
	case strings.HasPrefix(h, "$gy$"):
		return "gost-yescrypt"
	case strings.HasPrefix(h, "$7$"):
		return "scrypt"
	case strings.HasPrefix(h, "$6$"):
		return "sha512crypt"
	case strings.HasPrefix(h, "$5$"):
		return "sha256crypt"
	case strings.HasPrefix(h, "$1$"):
		return "md5crypt"
	case strings.HasPrefix(h, "$2a$"), strings.HasPrefix(h, "$2b$"), strings.HasPrefix(h, "$2y$"):
		return "bcrypt"
	case strings.HasPrefix(h, "$2x$"):
		return "bcrypt ($2x$)"
	case strings.HasPrefix(h, "$sha1$"):
		return "sha1crypt"
	case strings.HasPrefix(h, "$md5"):
		return "sunmd5"
	case strings.HasPrefix(h, "$3$"):
		return "nthash"
	case strings.HasPrefix(h, "_"):
		return "bsdicrypt (extended DES)"
	case !strings.HasPrefix(h, "$"):
		return "descrypt (DES)"
	}
	id := h[1:]
	if i := strings.IndexByte(id, '$'); i >= 0 {
		id = id[:i]
	}
	if len(id) > 8 || strings.IndexFunc(id, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
	}) >= 0 {
		return "unknown scheme"
	}
	return "unknown scheme $" + id + "$"
}

// newVerifier returns a verifier for hash h. stop is polled by verifiers
// that can give up mid-way (yescrypt, scrypt). The error wraps
// errUnsupported or errTooCostly when h cannot be checked.
func newVerifier(h string, stop func() bool) (verifier, error) {
	scheme := schemeOf(h)
	switch scheme {
	case "yescrypt", "scrypt":
		yh, err := parseYescrypt(h)
		switch {
		case errors.Is(err, errYescryptCost):
			return nil, fmt.Errorf("%s with parameters needing more than %d MiB of memory: %w", scheme, maxYescryptMem>>20, errTooCostly)
		case errors.Is(err, errYescryptParams):
			return nil, fmt.Errorf("%s with parameters this scanner does not implement: %w", scheme, errUnsupported)
		case err != nil:
			return nil, fmt.Errorf("malformed %s hash: %w", scheme, errUnsupported)
		}
		return yescryptVerifier{newYescryptState(yh, stop)}, nil
	case "sha512crypt", "sha256crypt":
		if r, ok := shaRounds(h); ok && r > maxShaRounds {
			return nil, fmt.Errorf("%s with %d rounds: %w", scheme, r, errTooCostly)
		}
		if strings.Count(h, "$") < 3 {
			return nil, fmt.Errorf("malformed %s hash: %w", scheme, errUnsupported)
		}
		if scheme == "sha512crypt" {
			return cryptVerifier{sha512_crypt.New(), h}, nil
		}
		return cryptVerifier{sha256_crypt.New(), h}, nil
	case "md5crypt":
		if strings.Count(h, "$") < 3 {
			return nil, fmt.Errorf("malformed %s hash: %w", scheme, errUnsupported)
		}
		return cryptVerifier{md5_crypt.New(), h}, nil
	case "bcrypt":
		cost, err := bcrypt.Cost([]byte(h))
		if err != nil {
			return nil, fmt.Errorf("malformed %s hash: %w", scheme, errUnsupported)
		}
		if cost > maxBcryptCost {
			return nil, fmt.Errorf("%s with cost %d: %w", scheme, cost, errTooCostly)
		}
		return bcryptVerifier{[]byte(h)}, nil
	}
	return nil, fmt.Errorf("%s: %w", scheme, errUnsupported)
}

// shaRounds returns the rounds= parameter of a sha-crypt hash.
func shaRounds(h string) (int, bool) {
	rest := h[3:]
	if !strings.HasPrefix(rest, "rounds=") {
		return 0, false
	}
	rest = rest[len("rounds="):]
	if i := strings.IndexByte(rest, '$'); i >= 0 {
		rest = rest[:i]
	}
	if len(rest) > 12 {
		return 1 << 40, true
	}
	n, err := strconv.Atoi(rest)
	if err != nil {
		return 0, false
	}
	return n, true
}
