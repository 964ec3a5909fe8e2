package policies

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/storage"
)

// Objects is the object storage a Store keeps its record of policies in.
// *storage.Objects implements it; Get returns an error wrapping
// storage.ErrNotFound for a missing object.
type Objects interface {
	Put(ctx context.Context, bucket, key string, data []byte, contentType string) error
	Get(ctx context.Context, bucket, key string) ([]byte, error)
}

// Record is a policy as object storage keeps it: the version in force
// and its whole history. Object storage is the record; Redis is rebuilt
// from it.
type Record struct {
	ID       string         `json:"id"`
	Kind     assetscan.Kind `json:"kind"`
	Version  int            `json:"version"`
	Digest   string         `json:"digest"`
	Document string         `json:"document"`
	History  []Change       `json:"history"`
	// SavedAt is when this record was written.
	SavedAt time.Time `json:"saved_at"`
}

// errStoredInvalid: the document in Redis does not parse.
var errStoredInvalid = errors.New("stored policy is invalid")

// index maps each asset kind to the id of its policy.
type index struct {
	Kinds map[assetscan.Kind]string `json:"kinds"`
}

// WithObjects makes the store durable: every policy version and its
// history is written to bucket (the reports bucket: it is never a
// submission's target) before Redis, and Redis is rebuilt from there by
// Seed and whenever Redis has lost a policy. Layout:
//
//	policies/index.json            {"kinds": {"package": "default-package", ...}}
//	policies/<id>/record.json      Record: the version in force and the whole history
//	policies/<id>/v<version>.yaml  the document of each version
//
// It returns s.
func (s *Store) WithObjects(obj Objects, bucket string) *Store {
	s.obj, s.bucket = obj, bucket
	return s
}

func recordKey(id string) string { return "policies/" + id + "/record.json" }

const indexKey = "policies/index.json"

// readRecord returns the stored record of id, or nil if there is none.
func (s *Store) readRecord(ctx context.Context, id string) (*Record, error) {
	data, err := s.obj.Get(ctx, s.bucket, recordKey(id))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read policy record %s: %w", id, err)
	}
	var r Record
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("read policy record %s: %w", id, err)
	}
	if _, err := Parse([]byte(r.Document)); err != nil || r.ID != id {
		return nil, fmt.Errorf("read policy record %s: the stored document is not a valid policy %s: %v", id, id, err)
	}
	return &r, nil
}

// writeRecord writes the version document, then the record.
func (s *Store) writeRecord(ctx context.Context, p *Policy, history []Change) error {
	if err := s.obj.Put(ctx, s.bucket, fmt.Sprintf("policies/%s/v%d.yaml", p.ID, p.Version), p.raw, "application/yaml"); err != nil {
		return fmt.Errorf("write policy %s v%d: %w", p.ID, p.Version, err)
	}
	r := Record{ID: p.ID, Kind: p.Kind, Version: p.Version, Digest: p.digest, Document: string(p.raw),
		History: history, SavedAt: time.Now().UTC()}
	if r.History == nil {
		r.History = []Change{}
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("write policy record %s: %w", p.ID, err)
	}
	if err := s.obj.Put(ctx, s.bucket, recordKey(p.ID), data, "application/json"); err != nil {
		return fmt.Errorf("write policy record %s: %w", p.ID, err)
	}
	return nil
}

func (s *Store) readIndex(ctx context.Context) (index, error) {
	ix := index{Kinds: map[assetscan.Kind]string{}}
	data, err := s.obj.Get(ctx, s.bucket, indexKey)
	if errors.Is(err, storage.ErrNotFound) {
		return ix, nil
	}
	if err != nil {
		return ix, fmt.Errorf("read policy index: %w", err)
	}
	if err := json.Unmarshal(data, &ix); err != nil {
		return ix, fmt.Errorf("read policy index: %w", err)
	}
	if ix.Kinds == nil {
		ix.Kinds = map[assetscan.Kind]string{}
	}
	return ix, nil
}

func (s *Store) writeIndex(ctx context.Context, ix index) error {
	data, _ := json.MarshalIndent(ix, "", "  ")
	if err := s.obj.Put(ctx, s.bucket, indexKey, data, "application/json"); err != nil {
		return fmt.Errorf("write policy index: %w", err)
	}
	return nil
}

// redisState reads a policy's document and history from Redis; raw is
// nil if Redis has no such policy.
func (s *Store) redisState(ctx context.Context, c redis.Cmdable, id string) (*Policy, []Change, error) {
	raw, err := c.Get(ctx, s.key("policy", id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read policy %s: %w", id, err)
	}
	p, err := Parse(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %w", errStoredInvalid, id, err)
	}
	items, err := c.LRange(ctx, s.key("policy", id, "history"), 0, -1).Result()
	if err != nil {
		return nil, nil, fmt.Errorf("policy history %s: %w", id, err)
	}
	hist := make([]Change, 0, len(items))
	for _, it := range items {
		var ch Change
		if json.Unmarshal([]byte(it), &ch) == nil {
			hist = append(hist, ch)
		}
	}
	return p, hist, nil
}

// restoreRedis puts a record back into Redis: document, history and the
// kind's mapping, unless Redis meanwhile holds a version at least as new.
func (s *Store) restoreRedis(ctx context.Context, r *Record) error {
	key := s.key("policy", r.ID)
	txf := func(tx *redis.Tx) error {
		cur, _, err := s.redisState(ctx, tx, r.ID)
		switch {
		case errors.Is(err, errStoredInvalid): // replaced by the record
		case err != nil:
			return err
		case cur != nil && cur.Version >= r.Version:
			return nil
		}
		_, err = tx.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
			pipe.Set(ctx, key, r.Document, 0)
			hk := s.key("policy", r.ID, "history")
			pipe.Del(ctx, hk)
			for _, ch := range r.History {
				data, _ := json.Marshal(ch)
				pipe.RPush(ctx, hk, data)
			}
			pipe.Set(ctx, s.key("policy-kind", string(r.Kind)), r.ID, 0)
			return nil
		})
		return err
	}
	var err error
	for range 5 {
		if err = s.rdb.Watch(ctx, txf, key); !errors.Is(err, redis.TxFailedErr) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("restore policy %s into redis: %w", r.ID, err)
	}
	return nil
}

// syncRecord writes the record from what Redis holds now (after a failed
// or raced update, or when Redis is ahead of object storage).
func (s *Store) syncRecord(ctx context.Context, id string) error {
	p, hist, err := s.redisState(ctx, s.rdb, id)
	if err != nil || p == nil {
		return err
	}
	return s.writeRecord(ctx, p, hist)
}

// seedDurable is Seed for a store with object storage: for each kind,
// object storage and Redis are reconciled (the newer version wins; a
// store that has the policy only in Redis writes it to object storage,
// one that has it only in object storage rebuilds Redis), and the shipped
// default is stored only where both are empty. If object storage cannot
// be read, nothing is seeded and the error is returned: a default must
// never replace a policy that is merely out of reach.
func (s *Store) seedDurable(ctx context.Context) error {
	ix, err := s.readIndex(ctx)
	if err != nil {
		return fmt.Errorf("seed policies: %w", err)
	}
	ixChanged := false
	for _, k := range []assetscan.Kind{assetscan.KindPackage, assetscan.KindContainerImage, assetscan.KindVMImage} {
		def, err := Default(k)
		if err != nil {
			return err
		}
		id, err := s.rdb.Get(ctx, s.key("policy-kind", string(k))).Result()
		if errors.Is(err, redis.Nil) {
			id, err = ix.Kinds[k], nil
		}
		if err != nil {
			return fmt.Errorf("seed policies: %w", err)
		}
		if id == "" {
			id = def.ID
		}
		rec, err := s.readRecord(ctx, id)
		if err != nil {
			return fmt.Errorf("seed policies: %w", err)
		}
		cur, hist, err := s.redisState(ctx, s.rdb, id)
		if errors.Is(err, errStoredInvalid) {
			cur, err = nil, nil // replaced by the record (or the default)
		}
		if err != nil {
			return fmt.Errorf("seed policies: %w", err)
		}
		switch {
		case cur == nil && rec == nil: // a new store: the shipped default
			ch := Change{ID: def.ID, Version: def.Version, Digest: def.digest, Author: "assetscan", At: time.Now().UTC(),
				Diff: diffLines("", string(def.raw)), Source: "default"}
			if err := s.writeRecord(ctx, def, []Change{ch}); err != nil {
				return fmt.Errorf("seed policies: %w", err)
			}
			if err := s.restoreRedis(ctx, &Record{ID: def.ID, Kind: def.Kind, Version: def.Version,
				Document: string(def.raw), History: []Change{ch}}); err != nil {
				return fmt.Errorf("seed policies: %w", err)
			}
		case rec != nil && (cur == nil || rec.Version > cur.Version): // Redis lost it or went back in time
			if err := s.restoreRedis(ctx, rec); err != nil {
				return fmt.Errorf("seed policies: %w", err)
			}
		case cur != nil && (rec == nil || cur.Version > rec.Version): // object storage behind: catch up
			if err := s.writeRecord(ctx, cur, hist); err != nil {
				return fmt.Errorf("seed policies: %w", err)
			}
		}
		if err := s.rdb.SetNX(ctx, s.key("policy-kind", string(k)), id, 0).Err(); err != nil {
			return fmt.Errorf("seed policies: %w", err)
		}
		if ix.Kinds[k] != id {
			ix.Kinds[k], ixChanged = id, true
		}
	}
	if ixChanged {
		if err := s.writeIndex(ctx, ix); err != nil {
			return fmt.Errorf("seed policies: %w", err)
		}
	}
	return nil
}

// recoverID rebuilds policy id in Redis from object storage after Redis
// lost it while this process runs. It returns ErrNotFound if object
// storage has no record either (or the store has no object storage).
func (s *Store) recoverID(ctx context.Context, id string) error {
	if s.obj == nil {
		return ErrNotFound
	}
	rec, err := s.readRecord(ctx, id)
	if err != nil {
		return err
	}
	if rec == nil {
		return ErrNotFound
	}
	return s.restoreRedis(ctx, rec)
}

// recoverKind finds the policy of kind k in object storage's index and
// rebuilds it in Redis; it returns its id.
func (s *Store) recoverKind(ctx context.Context, k assetscan.Kind) (string, error) {
	if s.obj == nil {
		return "", ErrNotFound
	}
	ix, err := s.readIndex(ctx)
	if err != nil {
		return "", err
	}
	id := ix.Kinds[k]
	if id == "" {
		return "", ErrNotFound
	}
	if err := s.recoverID(ctx, id); err != nil {
		return "", err
	}
	return id, nil
}
