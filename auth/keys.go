package auth

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// TokenPrefix starts every token NewKey makes, so a leaked token is easy to
// recognise (and to grep for).
const TokenPrefix = "ask_"

// NewKey returns a new random API key and the hex SHA-256 to put in the
// keys file as key_sha256. The token is TokenPrefix followed by the
// unpadded base64url encoding of 32 bytes from crypto/rand (47 characters
// in all). Give the token to the caller once; do not store it.
func NewKey() (token, hash string) {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go >= 1.24)
	token = TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return token, HashKey(token)
}

// HashKey returns the lower-case hex SHA-256 of token, the form the keys
// file stores. Shell equivalent: printf %s "$TOKEN" | sha256sum
func HashKey(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// KeyEntry is one entry of the keys file.
type KeyEntry struct {
	// Name identifies the key in logs and created_by fields. Unique.
	Name string `yaml:"name" json:"name"`
	Role Role   `yaml:"role" json:"role"`
	// SellerID is required for role seller and forbidden otherwise.
	SellerID string `yaml:"seller_id,omitempty" json:"seller_id,omitempty"`
	// KeySHA256 is the hex SHA-256 of the token (HashKey).
	KeySHA256 string `yaml:"key_sha256" json:"key_sha256"`

	// Key catches a plaintext token put in the file by mistake: it is
	// rejected, never used.
	Key string `yaml:"key,omitempty" json:"-"`
}

// KeysFile is the keys file's top level.
type KeysFile struct {
	Keys []KeyEntry `yaml:"keys" json:"keys"`
}

// Keyring holds the configured keys, by hash.
type Keyring struct {
	byHash map[string]Principal
}

var (
	nameRe     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$`)
	sellerIDRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`) // the API's seller_id rule
	hashRe     = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)
)

// LoadKeys reads and validates a keys file (see ParseKeys).
func LoadKeys(path string) (*Keyring, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("keys file: %w", err)
	}
	k, err := ParseKeys(data)
	if err != nil {
		return nil, fmt.Errorf("keys file %s: %w", path, err)
	}
	return k, nil
}

// ParseKeys parses and validates a keys file. The format is YAML (JSON,
// being YAML, works too):
//
//	keys:
//	  - name: asset-center
//	    role: asset-center
//	    key_sha256: 07ef25e50c4e8e67488cafb06a0cb18eea875c09834b987d4de2bea91fc6e52a
//	  - name: seller-acme
//	    role: seller
//	    seller_id: acme
//	    key_sha256: 131424c82d1d9dc97a2f9e2237a2dea0f8965855734b429707680f4859e50e6a
//	  - name: alice
//	    role: security-staff
//	    key_sha256: bae3005cf0e1840cc8f1fbb63e21408ae797cb9af7c8083c8c591ee94821a8ca
//
// Rules, each reported as keys[i].field with the entry's index (from 0):
// the role is one of asset-center, seller, security-staff; seller_id is
// required for sellers (same syntax as the API's seller_id) and forbidden
// for other roles; key_sha256 is 64 hex digits; names (1-128 characters of
// A-Z a-z 0-9 . _ : @ -) and hashes are unique; plaintext "key" fields and
// unknown fields are refused; the file holds at least one key. All
// problems are reported at once.
func ParseKeys(data []byte) (*Keyring, error) {
	var f KeysFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty keys file: want a top-level \"keys:\" list")
		}
		return nil, fmt.Errorf("parse: %w", err)
	}
	if len(f.Keys) == 0 {
		return nil, errors.New("no keys: want a non-empty top-level \"keys:\" list")
	}
	var errs []error
	bad := func(i int, field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("keys[%d].%s: %s", i, field, fmt.Sprintf(format, args...)))
	}
	k := &Keyring{byHash: make(map[string]Principal, len(f.Keys))}
	names := map[string]int{}
	hashes := map[string]int{}
	for i, e := range f.Keys {
		switch {
		case e.Name == "":
			bad(i, "name", "required")
		case !nameRe.MatchString(e.Name):
			bad(i, "name", "%q: want 1-128 characters of A-Z a-z 0-9 . _ : @ -", e.Name)
		default:
			if j, dup := names[e.Name]; dup {
				bad(i, "name", "%q is also the name of keys[%d]; names must be unique", e.Name, j)
			}
			names[e.Name] = i
		}
		switch {
		case e.Role == "":
			bad(i, "role", "required: asset-center, seller or security-staff")
		case !e.Role.Valid():
			bad(i, "role", "unknown role %q: want asset-center, seller or security-staff", e.Role)
		}
		switch {
		case e.Role == RoleSeller && e.SellerID == "":
			bad(i, "seller_id", "required for role seller")
		case e.Role == RoleSeller && !sellerIDRe.MatchString(e.SellerID):
			bad(i, "seller_id", "%q: want 1-128 characters of A-Z a-z 0-9 . _ : -", e.SellerID)
		case e.Role != RoleSeller && e.SellerID != "":
			bad(i, "seller_id", "only sellers have a seller_id, not role %q", e.Role)
		}
		if e.Key != "" {
			bad(i, "key", "plaintext keys are not accepted: store key_sha256 (the hex SHA-256 of the token) and remove the token from this file")
		}
		h := strings.ToLower(e.KeySHA256)
		switch {
		case h == "":
			bad(i, "key_sha256", "required: the hex SHA-256 of the token")
		case !hashRe.MatchString(h):
			bad(i, "key_sha256", "want 64 hex digits (the SHA-256 of the token), got %d characters", len(h))
		default:
			if j, dup := hashes[h]; dup {
				bad(i, "key_sha256", "same key as keys[%d]; every principal needs its own key", j)
			}
			hashes[h] = i
		}
		k.byHash[h] = Principal{Name: e.Name, Role: e.Role, SellerID: e.SellerID}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return k, nil
}

// Len returns the number of keys.
func (k *Keyring) Len() int { return len(k.byHash) }

// Authenticate returns the principal whose key is token. The token is
// hashed and the hash looked up in a map: the time taken depends on the
// hash, which an attacker neither knows nor controls bit by bit, not on how
// much of a valid token the guess matches, so no byte-by-byte timing attack
// on tokens is possible (this is why no subtle.ConstantTimeCompare is
// needed). Empty tokens never authenticate.
func (k *Keyring) Authenticate(token string) (Principal, bool) {
	if k == nil || token == "" {
		return Principal{}, false
	}
	p, ok := k.byHash[HashKey(token)]
	return p, ok
}
