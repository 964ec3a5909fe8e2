package callbacks

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Subscriber is a registered receiver.
type Subscriber struct {
	ID  string `json:"id"`
	URL string `json:"url"`
	// Secret signs the callbacks. Store.Add returns it; Store.List blanks it.
	Secret    string    `json:"secret,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	// CreatedBy is the name of the API key that registered it.
	CreatedBy string `json:"created_by,omitempty"`
}

// Store errors.
var (
	// ErrInvalidURL: the receiver URL is refused (wrapped with the reason).
	ErrInvalidURL = errors.New("invalid callback URL")
	// ErrNotFound: no subscriber with that id.
	ErrNotFound = errors.New("callback subscriber not found")
)

// MaxURLLength is the longest receiver URL accepted.
const MaxURLLength = 2048

// Store keeps subscribers in Redis: the hash <prefix>callbacks:subscribers,
// field = subscriber id, value = Subscriber as JSON, secret included.
type Store struct {
	rdb    redis.UniversalClient
	key    string
	egress *Egress
}

// NewStore returns a store. prefix namespaces the Redis key ("assetscan:"),
// as for storage.NewStore.
func NewStore(rdb redis.UniversalClient, prefix string) *Store {
	return &Store{rdb: rdb, key: prefix + "callbacks:subscribers"}
}

// WithEgress sets the egress policy Add and the Deliverer apply (nil: the
// default policy, see Egress) and returns s.
func (s *Store) WithEgress(e *Egress) *Store {
	s.egress = e
	return s
}

// Egress returns the store's egress policy (nil: the default).
func (s *Store) Egress() *Egress { return s.egress }

// ValidateURL checks a receiver URL: absolute http or https, a host, no
// user:password, at most MaxURLLength bytes. It returns the URL as it will
// be stored, or an error wrapping ErrInvalidURL.
func ValidateURL(raw string) (string, error) {
	bad := func(why string) (string, error) { return "", fmt.Errorf("%w: %s", ErrInvalidURL, why) }
	if raw == "" {
		return bad("required")
	}
	if len(raw) > MaxURLLength {
		return bad(fmt.Sprintf("longer than %d bytes", MaxURLLength))
	}
	u, err := url.Parse(raw)
	if err != nil {
		return bad("not a URL")
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https": // url.Parse lower-cases the scheme
		return bad("scheme must be http or https")
	case u.Opaque != "":
		return bad("want scheme://host/path")
	case u.Host == "" || u.Hostname() == "":
		return bad("host required")
	case u.User != nil:
		return bad("credentials in the URL are not accepted: authenticate the callback by its signature")
	case u.Fragment != "":
		return bad("fragments are not sent to servers")
	}
	return u.String(), nil
}

// Add registers a receiver URL and returns the subscriber with its new
// secret. This is the only time the secret is returned. The URL must pass
// ValidateURL and the egress policy (resolved now; errors wrap both
// ErrInvalidURL and ErrRefusedDestination).
func (s *Store) Add(ctx context.Context, rawURL, createdBy string) (Subscriber, error) {
	u, err := ValidateURL(rawURL)
	if err != nil {
		return Subscriber{}, err
	}
	if err := s.egress.CheckURL(ctx, u); err != nil {
		return Subscriber{}, fmt.Errorf("%w: %w", ErrInvalidURL, err)
	}
	sub := Subscriber{ID: "sub_" + randomHex(12), URL: u, Secret: NewSecret(),
		CreatedAt: time.Now().UTC(), CreatedBy: createdBy}
	data, err := json.Marshal(sub)
	if err != nil {
		return Subscriber{}, fmt.Errorf("add callback subscriber: %w", err)
	}
	ok, err := s.rdb.HSetNX(ctx, s.key, sub.ID, data).Result()
	if err != nil {
		return Subscriber{}, fmt.Errorf("add callback subscriber: %w", err)
	}
	if !ok { // 96 random bits collided: practically impossible
		return Subscriber{}, errors.New("add callback subscriber: id collision, retry")
	}
	return sub, nil
}

// List returns the subscribers, oldest first, secrets blanked.
func (s *Store) List(ctx context.Context) ([]Subscriber, error) {
	all, err := s.rdb.HGetAll(ctx, s.key).Result()
	if err != nil {
		return nil, fmt.Errorf("list callback subscribers: %w", err)
	}
	subs := make([]Subscriber, 0, len(all))
	for id, data := range all {
		var sub Subscriber
		if err := json.Unmarshal([]byte(data), &sub); err != nil {
			return nil, fmt.Errorf("list callback subscribers: subscriber %s: %w", id, err)
		}
		sub.Secret = ""
		subs = append(subs, sub)
	}
	slices.SortFunc(subs, func(a, b Subscriber) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return subs, nil
}

// Remove deletes a subscriber. Deliveries to it that are still queued are
// dropped when they come up. ErrNotFound if there is no such subscriber.
func (s *Store) Remove(ctx context.Context, id string) error {
	n, err := s.rdb.HDel(ctx, s.key, id).Result()
	if err != nil {
		return fmt.Errorf("remove callback subscriber: %w", err)
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// ids returns the subscriber ids.
func (s *Store) ids(ctx context.Context) ([]string, error) {
	ids, err := s.rdb.HKeys(ctx, s.key).Result()
	if err != nil {
		return nil, fmt.Errorf("list callback subscribers: %w", err)
	}
	slices.Sort(ids)
	return ids, nil
}

// get returns a subscriber with its secret.
func (s *Store) get(ctx context.Context, id string) (Subscriber, error) {
	data, err := s.rdb.HGet(ctx, s.key, id).Bytes()
	if errors.Is(err, redis.Nil) {
		return Subscriber{}, ErrNotFound
	}
	if err != nil {
		return Subscriber{}, fmt.Errorf("get callback subscriber: %w", err)
	}
	var sub Subscriber
	if err := json.Unmarshal(data, &sub); err != nil {
		return Subscriber{}, fmt.Errorf("get callback subscriber %s: %w", id, err)
	}
	return sub, nil
}

// NewSecret returns a new signing secret: "whsec_" + base64url (unpadded)
// of 32 bytes from crypto/rand.
func NewSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // never fails (Go >= 1.24)
	return "whsec_" + base64.RawURLEncoding.EncodeToString(b[:])
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
