package policies

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/assetscan/assetscan"
)

// Sentinel errors of the Store.
var (
	// ErrConflict: the policy changed since the version the caller read.
	ErrConflict = errors.New("policy version conflict")
	// ErrNotFound: no policy with that id.
	ErrNotFound = errors.New("policy not found")
)

// Change is one entry of a policy's history.
type Change struct {
	ID      string    `json:"id"`
	Version int       `json:"version"`
	Digest  string    `json:"digest"`
	Author  string    `json:"author"`
	At      time.Time `json:"at"`
	// Diff is a line diff from the previous version ("-"/"+" lines).
	Diff string `json:"diff"`
	// Source is "api", "file:<name>" or "default".
	Source string `json:"source"`
}

// Store keeps the policies in force, shared by every API and worker
// process, with their history. With WithObjects, object storage holds the
// record of every version and its history and Redis is rebuilt from it
// (see WithObjects); without, Redis is all there is. Layout (Redis):
//
//	<prefix>{policies}:policy:<id>            current document (YAML)
//	<prefix>{policies}:policy:<id>:history    list of Change (JSON), oldest first
//	<prefix>{policies}:policy-kind:<kind>     id of the policy in force for a kind
//
// Every key shares the hash tag {policies}: a change is a WATCH/MULTI
// transaction over a policy's document, its history and its kind's
// mapping, which a Redis Cluster runs only within one slot. Policies are
// few and small; one slot holds them all.
//
// A document in Redis is always one that parsed and validated; a process
// also keeps the last good copy in memory and serves it if Redis answers
// with something it cannot use.
type Store struct {
	rdb    redis.UniversalClient
	prefix string

	mu       sync.Mutex
	lastGood map[string]*Policy

	obj    Objects // nil: Redis only
	bucket string
}

// NewStore returns a store; call WithObjects (production) and Seed before
// use.
func NewStore(rdb redis.UniversalClient, prefix string) *Store {
	return &Store{rdb: rdb, prefix: prefix, lastGood: map[string]*Policy{}}
}

// keyTag is the hash tag every policy key shares (see Store).
const keyTag = "{policies}"

func (s *Store) key(parts ...string) string {
	return s.prefix + keyTag + ":" + strings.Join(parts, ":")
}

// Seed stores each embedded default policy that is not stored yet. With
// object storage, it first reconciles Redis and object storage, and a
// default is stored only for a kind that has no policy in either (see
// seedDurable); an object storage error fails Seed without seeding.
func (s *Store) Seed(ctx context.Context) error {
	if s.obj != nil {
		return s.seedDurable(ctx)
	}
	for _, k := range []assetscan.Kind{assetscan.KindPackage, assetscan.KindContainerImage, assetscan.KindVMImage} {
		p, err := Default(k)
		if err != nil {
			return err
		}
		ok, err := s.rdb.SetNX(ctx, s.key("policy", p.ID), p.raw, 0).Result()
		if err != nil {
			return fmt.Errorf("seed policy: %w", err)
		}
		if ok {
			if err := s.appendHistory(ctx, s.rdb, Change{ID: p.ID, Version: p.Version, Digest: p.digest,
				Author: "assetscan", At: time.Now().UTC(), Diff: diffLines("", string(p.raw)), Source: "default"}); err != nil {
				return err
			}
		}
		if err := s.rdb.SetNX(ctx, s.key("policy-kind", string(k)), p.ID, 0).Err(); err != nil {
			return fmt.Errorf("seed policy: %w", err)
		}
	}
	return nil
}

// Get returns the current policy with that id.
func (s *Store) Get(ctx context.Context, id string) (*Policy, error) {
	raw, err := s.rdb.Get(ctx, s.key("policy", id)).Bytes()
	if errors.Is(err, redis.Nil) {
		// Redis lost it: rebuild from object storage.
		if rerr := s.recoverID(ctx, id); rerr != nil {
			if errors.Is(rerr, ErrNotFound) {
				return nil, ErrNotFound
			}
			if p := s.good(id); p != nil {
				return p, nil
			}
			return nil, fmt.Errorf("get policy %s: %w", id, rerr)
		}
		raw, err = s.rdb.Get(ctx, s.key("policy", id)).Bytes()
		if errors.Is(err, redis.Nil) {
			return nil, ErrNotFound
		}
	}
	if err != nil {
		if p := s.good(id); p != nil {
			return p, nil
		}
		return nil, fmt.Errorf("get policy %s: %w", id, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.lastGood[id]; ok && string(p.raw) == string(raw) {
		return p, nil
	}
	p, err := Parse(raw)
	if err != nil {
		if p := s.lastGood[id]; p != nil {
			return p, nil
		}
		return nil, fmt.Errorf("get policy %s: %w", id, err)
	}
	s.lastGood[id] = p
	return p, nil
}

func (s *Store) good(id string) *Policy {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastGood[id]
}

// ForKind returns the policy in force for a kind.
func (s *Store) ForKind(ctx context.Context, k assetscan.Kind) (*Policy, error) {
	id, err := s.rdb.Get(ctx, s.key("policy-kind", string(k))).Result()
	if errors.Is(err, redis.Nil) {
		id, err = s.recoverKind(ctx, k) // Redis lost it: rebuild from object storage
		if errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("no policy for kind %q: %w", k, ErrNotFound)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("policy for kind %q: %w", k, err)
	}
	return s.Get(ctx, id)
}

// List returns the current policies.
func (s *Store) List(ctx context.Context) ([]*Policy, error) {
	var out []*Policy
	for _, k := range []assetscan.Kind{assetscan.KindPackage, assetscan.KindContainerImage, assetscan.KindVMImage} {
		p, err := s.ForKind(ctx, k)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// Put replaces policy id with raw, which must parse, keep the id and kind,
// and carry version = the current version + 1 (optimistic concurrency:
// ifVersion is the version the author read). It records the change.
func (s *Store) Put(ctx context.Context, id string, raw []byte, ifVersion int, author, source string) (*Policy, error) {
	p, err := Parse(raw)
	if err != nil {
		return nil, err
	}
	if p.ID != id {
		return nil, fmt.Errorf("%w: id: the document's id %q does not match %q", ErrInvalid, p.ID, id)
	}
	key := s.key("policy", id)
	if s.obj != nil { // Redis lost it: rebuild from object storage first
		if n, err := s.rdb.Exists(ctx, key).Result(); err == nil && n == 0 {
			if err := s.recoverID(ctx, id); err != nil && !errors.Is(err, ErrNotFound) {
				return nil, err
			}
		}
	}
	var out *Policy
	wroteRecord := false
	txf := func(tx *redis.Tx) error {
		curRaw, err := tx.Get(ctx, key).Bytes()
		if errors.Is(err, redis.Nil) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		cur, err := Parse(curRaw)
		if err != nil {
			return fmt.Errorf("stored policy %s is invalid: %w", id, err)
		}
		if ifVersion != cur.Version {
			return fmt.Errorf("%w: %s is at version %d, not %d", ErrConflict, id, cur.Version, ifVersion)
		}
		if p.Version != cur.Version+1 {
			return fmt.Errorf("%w: version: must be %d (the current version %d + 1), got %d", ErrInvalid, cur.Version+1, cur.Version, p.Version)
		}
		if p.Kind != cur.Kind {
			return fmt.Errorf("%w: kind: a policy keeps its kind (%s)", ErrInvalid, cur.Kind)
		}
		ch := Change{ID: id, Version: p.Version, Digest: p.digest, Author: author, At: time.Now().UTC(),
			Diff: diffLines(string(curRaw), string(raw)), Source: source}
		if s.obj != nil { // the record first: what Redis holds, object storage has
			_, hist, err := s.redisState(ctx, tx, id)
			if err != nil {
				return err
			}
			wroteRecord = true
			if err := s.writeRecord(ctx, p, append(hist, ch)); err != nil {
				return err
			}
		}
		_, err = tx.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
			pipe.Set(ctx, key, raw, 0)
			return s.appendHistory(ctx, pipe, ch)
		})
		out = p
		return err
	}
	for range 5 {
		err = s.rdb.Watch(ctx, txf, key)
		if !errors.Is(err, redis.TxFailedErr) {
			break
		}
	}
	if err != nil {
		if wroteRecord {
			// A record may have been written for a version that did not
			// make it into Redis (a concurrent update won, or Redis
			// failed): write back what is in force.
			_ = s.syncRecord(context.WithoutCancel(ctx), id)
		}
		if errors.Is(err, redis.TxFailedErr) {
			return nil, fmt.Errorf("%w: concurrent update of %s", ErrConflict, id)
		}
		return nil, err
	}
	s.mu.Lock()
	s.lastGood[id] = out
	s.mu.Unlock()
	return out, nil
}

func (s *Store) appendHistory(ctx context.Context, c redis.Cmdable, ch Change) error {
	data, _ := json.Marshal(ch)
	if err := c.RPush(ctx, s.key("policy", ch.ID, "history"), data).Err(); err != nil {
		return fmt.Errorf("policy history: %w", err)
	}
	return nil
}

// History lists a policy's changes, oldest first.
func (s *Store) History(ctx context.Context, id string) ([]Change, error) {
	items, err := s.rdb.LRange(ctx, s.key("policy", id, "history"), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("policy history: %w", err)
	}
	if len(items) == 0 && s.obj != nil {
		if n, err := s.rdb.Exists(ctx, s.key("policy", id)).Result(); err == nil && n == 0 {
			if err := s.recoverID(ctx, id); err == nil {
				items, _ = s.rdb.LRange(ctx, s.key("policy", id, "history"), 0, -1).Result()
			}
		}
	}
	out := make([]Change, 0, len(items))
	for _, it := range items {
		var c Change
		if err := json.Unmarshal([]byte(it), &c); err == nil {
			out = append(out, c)
		}
	}
	return out, nil
}

// LoadDir applies the *.yaml policy files of dir: each file whose version
// is newer than the stored one replaces it (author "file:<name>"). A file
// that does not parse, or is not newer, changes nothing; all problems are
// returned together while the valid files are applied.
func (s *Store) LoadDir(ctx context.Context, dir string) ([]*Policy, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	var applied []*Policy
	var errs []error
	for _, path := range paths {
		raw, err := os.ReadFile(path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		p, err := Parse(raw)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", filepath.Base(path), err))
			continue
		}
		cur, err := s.Get(ctx, p.ID)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", filepath.Base(path), err))
			continue
		}
		if p.Version <= cur.Version {
			continue
		}
		np, err := s.Put(ctx, p.ID, raw, cur.Version, "file:"+filepath.Base(path), "file:"+filepath.Base(path))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", filepath.Base(path), err))
			continue
		}
		applied = append(applied, np)
	}
	return applied, errors.Join(errs...)
}

// diffLines is a small line diff (longest common subsequence), enough for
// a person to read what changed in a policy.
func diffLines(a, b string) string {
	x, y := strings.Split(a, "\n"), strings.Split(b, "\n")
	if a == "" {
		x = nil
	}
	n, m := len(x), len(y)
	if n*m > 4_000_000 { // policies are small; don't blow up on huge ones
		return "- (previous version)\n+ (new version)\n"
	}
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var sb strings.Builder
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && x[i] == y[j]:
			i, j = i+1, j+1
		case j < m && (i == n || lcs[i][j+1] >= lcs[i+1][j]):
			sb.WriteString("+ " + y[j] + "\n")
			j++
		default:
			sb.WriteString("- " + x[i] + "\n")
			i++
		}
	}
	return sb.String()
}
