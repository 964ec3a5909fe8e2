package callbacks

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"
)

// fakeResolver answers from a table; it can be changed between calls
// (DNS rebinding). Unknown names are not found.
type fakeResolver struct {
	mu    sync.Mutex
	names map[string][]netip.Addr
	calls int
}

func (f *fakeResolver) set(name string, addrs ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.names == nil {
		f.names = map[string][]netip.Addr{}
	}
	f.names[name] = nil
	for _, a := range addrs {
		f.names[name] = append(f.names[name], netip.MustParseAddr(a))
	}
}

func (f *fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if a, ok := f.names[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// publicIP is a public address no test connects to (example.com's).
const publicIP = "93.184.215.14"

// newTestStore is a store whose egress policy lets the tests' receivers
// (httptest servers on 127.0.0.1, plain http) and 10/8 through, and
// resolves asset-center.example to a public address.
func newTestStore(rdb redis.UniversalClient) *Store {
	r := &fakeResolver{}
	for _, name := range []string{"asset-center.example", "a.example", "b.example"} {
		r.set(name, publicIP)
	}
	return NewStore(rdb, testPrefix).WithEgress(&Egress{AllowHTTP: true, Resolver: r,
		Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8")}})
}

// TestEgressRefuses: every URL of the issue, and the other ways to name a
// loopback, private, link-local, multicast or unspecified address, is
// refused by the default policy even with http allowed; a public https
// receiver is accepted.
func TestEgressRefuses(t *testing.T) {
	t.Parallel()
	r := &fakeResolver{}
	r.set("hooks.example.com", publicIP, "2606:2800:21f:cb07:6820:80da:af6b:8b2c")
	r.set("internal.example.com", "10.1.2.3")
	r.set("mixed.example.com", publicIP, "127.0.0.1")
	r.set("metadata.example.com", "169.254.169.254")
	r.set("mapped.example.com", "::ffff:127.0.0.1")
	e := &Egress{AllowHTTP: true, Resolver: r}
	refused := []string{
		// the issue's
		"http://127.0.0.1:6379/", "http://localhost:8080/cb", "http://0.0.0.0:80/", "http://[::1]:8080/",
		"http://2130706433/", "http://169.254.169.254/latest/meta-data/",
		// other spellings of loopback
		"http://127.1/", "http://0x7f.0.0.1/", "http://0x7f000001/", "http://0177.0.0.1/", "http://017700000001/",
		"http://127.0.0.1./", "http://LOCALHOST/", "http://app.localhost/", "http://localhost./",
		"http://[::ffff:127.0.0.1]/", "http://[::ffff:7f00:1]/", "http://[0:0:0:0:0:ffff:127.0.0.1]/",
		"http://[64:ff9b::7f00:1]/", "http://[2002:7f00:1::1]/", "http://[::127.0.0.1]/",
		// private, link-local, multicast, unspecified, CGNAT, reserved
		"http://10.0.0.1/", "http://172.16.5.4/", "http://192.168.1.1/", "http://[fc00::1]/", "http://[fd12:3456::1]/",
		"http://[fe80::1]/", "http://[fe80::1%25eth0]/", "http://169.254.0.1/", "http://224.0.0.1/", "http://[ff02::1]/",
		"http://[::]/", "http://0.1.2.3/", "http://100.64.0.1/", "http://100.127.255.254/", "http://255.255.255.255/",
		"http://240.0.0.1/", "http://192.0.2.1/", "http://198.18.0.1/", "http://[2001:db8::1]/", "http://[2001::1]/",
		"http://[fec0::1]/",
		// names resolving to them
		"https://internal.example.com/", "https://mixed.example.com/", "https://metadata.example.com/", "https://mapped.example.com/",
		"https://does-not-resolve.example.com/",
	}
	for _, u := range refused {
		if err := e.CheckURL(t.Context(), u); !errors.Is(err, ErrRefusedDestination) {
			t.Errorf("CheckURL(%s) = %v, want ErrRefusedDestination", u, err)
		}
	}
	for _, u := range []string{"https://hooks.example.com/cb", "https://" + publicIP + "/cb", "https://[2606:4700::1111]/"} {
		if err := e.CheckURL(t.Context(), u); err != nil {
			t.Errorf("CheckURL(%s) = %v, want accepted", u, err)
		}
	}
	// Default policy: https only.
	var def *Egress
	if err := (&Egress{Resolver: r}).CheckURL(t.Context(), "http://hooks.example.com/cb"); !errors.Is(err, ErrRefusedDestination) {
		t.Errorf("http under the default policy: %v", err)
	}
	if err := def.CheckAddr(netip.MustParseAddr("127.0.0.1")); !errors.Is(err, ErrRefusedDestination) {
		t.Errorf("nil policy accepts loopback: %v", err)
	}
}

// TestStoreRefusesInternalReceivers: registration applies the policy.
func TestStoreRefusesInternalReceivers(t *testing.T) {
	eachRedis(t, func(t *testing.T, rdb redis.UniversalClient) {
		s := NewStore(rdb, testPrefix) // the default policy
		for _, u := range []string{"http://127.0.0.1:6379/", "https://127.0.0.1/", "https://localhost/", "https://0.0.0.0/",
			"https://[::1]/", "https://2130706433/", "https://169.254.169.254/"} {
			_, err := s.Add(t.Context(), u, "ac")
			if !errors.Is(err, ErrInvalidURL) || !errors.Is(err, ErrRefusedDestination) {
				t.Errorf("Add(%s) = %v", u, err)
			}
		}
		if n, _ := rdb.HLen(t.Context(), testPrefix+"callbacks:subscribers").Result(); n != 0 {
			t.Fatalf("%d subscribers stored", n)
		}
	})
}

func TestEgressAllowList(t *testing.T) {
	t.Parallel()
	prefixes, hosts, err := ParseAllowList(" 127.0.0.0/8, ::1 ,hooks.Internal., 10.1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	if len(prefixes) != 3 || prefixes[1].String() != "::1/128" || prefixes[2].String() != "10.1.2.3/32" || len(hosts) != 1 || hosts[0] != "hooks.internal" {
		t.Fatalf("ParseAllowList = %v %v", prefixes, hosts)
	}
	for _, bad := range []string{"127.0.0.1/33", "exa mple", "2130706433", "fe80::1%eth0"} {
		if _, _, err := ParseAllowList(bad); err == nil {
			t.Errorf("ParseAllowList(%q) accepted", bad)
		}
	}
	r := &fakeResolver{}
	r.set("hooks.internal", "10.9.9.9")
	e := &Egress{AllowHTTP: true, Allow: prefixes, AllowHosts: hosts, Resolver: r}
	for _, u := range []string{"http://127.0.0.1:8080/", "http://[::1]/", "http://hooks.internal/", "http://[::ffff:127.0.0.1]/"} {
		if err := e.CheckURL(t.Context(), u); err != nil {
			t.Errorf("allowed %s: %v", u, err)
		}
	}
	if err := e.CheckURL(t.Context(), "http://10.1.2.4/"); !errors.Is(err, ErrRefusedDestination) {
		t.Errorf("10.1.2.4 outside the allow-list: %v", err)
	}
}

// TestDeliveryRefusesRebinding: a name that resolved to a public address
// when it was registered and resolves to 127.0.0.1 at delivery (DNS
// rebinding) is refused at delivery; the receiver listening there sees
// nothing, and the error names a class, not the address.
func TestDeliveryRefusesRebinding(t *testing.T) {
	eachRedis(t, func(t *testing.T, rdb redis.UniversalClient) {
		target := newReceiver(t) // on 127.0.0.1
		port := target.Listener.Addr().(*net.TCPAddr).Port
		r := &fakeResolver{}
		r.set("rebind.example.com", publicIP)
		store := NewStore(rdb, testPrefix).WithEgress(&Egress{AllowHTTP: true, Resolver: r})
		sub, err := store.Add(t.Context(), "http://rebind.example.com:"+itoa(port)+"/cb", "ac")
		if err != nil {
			t.Fatal(err)
		}
		r.set("rebind.example.com", "127.0.0.1")
		err = deliverOnce(t, &Deliverer{Store: store}, sub)
		if err == nil || !strings.Contains(err.Error(), "delivery failed (destination refused by the egress policy)") {
			t.Fatalf("rebound delivery: %v", err)
		}
		if strings.Contains(err.Error(), "127.0.0.1") {
			t.Errorf("error carries network detail: %v", err)
		}
		if n := len(target.requests()); n != 0 {
			t.Fatalf("receiver on 127.0.0.1 got %d requests", n)
		}
	})
}

// TestDeliveryErrorsHaveNoNetworkDetail: a closed port and an unknown
// name give "delivery failed (connect)" and "(name resolution)", with no
// address, port or "connection refused" for staff to read.
func TestDeliveryErrorsHaveNoNetworkDetail(t *testing.T) {
	eachRedis(t, func(t *testing.T, rdb redis.UniversalClient) {
		dead := httptest.NewServer(http.NotFoundHandler())
		dead.Close()
		r := &fakeResolver{}
		r.set("gone.example.com", publicIP)
		store := NewStore(rdb, testPrefix).WithEgress(&Egress{AllowHTTP: true, Resolver: r,
			Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
		closed, err := store.Add(t.Context(), dead.URL+"/cb", "ac")
		if err != nil {
			t.Fatal(err)
		}
		gone, err := store.Add(t.Context(), "http://gone.example.com/cb", "ac")
		if err != nil {
			t.Fatal(err)
		}
		r.set("other.example.com") // gone.example.com no longer resolves
		r.mu.Lock()
		delete(r.names, "gone.example.com")
		r.mu.Unlock()
		d := &Deliverer{Store: store}
		for _, tt := range []struct {
			sub   Subscriber
			class string
		}{{closed, "connect"}, {gone, "name resolution"}} {
			err := deliverOnce(t, d, tt.sub)
			if err == nil || !strings.Contains(err.Error(), "delivery failed ("+tt.class+")") {
				t.Errorf("%s: %v, want class %s", tt.sub.URL, err, tt.class)
				continue
			}
			for _, leak := range []string{"connection", "refused", "no such host", "dial", "lookup", "tcp"} {
				if strings.Contains(err.Error(), leak) {
					t.Errorf("%s: error carries %q: %v", tt.sub.URL, leak, err)
				}
			}
		}
	})
}

func TestRefusedRange(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		addr   string
		public bool
	}{
		{"8.8.8.8", true}, {publicIP, true}, {"2606:4700::1111", true}, {"64:ff9b::808:808", true}, {"2002:808:808::1", true},
		{"127.0.0.1", false}, {"::1", false}, {"::ffff:10.0.0.1", false}, {"64:ff9b::a00:1", false}, {"2002:c0a8:101::1", false},
		{"100.64.0.0", false}, {"100.63.255.255", true}, {"100.128.0.0", true}, {"fd00::1", false}, {"::", false}, {"0.0.0.0", false},
		{"169.254.169.254", false}, {"fe80::1", false}, {"ff05::2", false}, {"239.255.255.250", false},
	} {
		got := refusedRange(netip.MustParseAddr(tt.addr)) == ""
		if got != tt.public {
			t.Errorf("%s: public = %v, want %v (%s)", tt.addr, got, tt.public, refusedRange(netip.MustParseAddr(tt.addr)))
		}
	}
}

// FuzzEgressCheckURL: whatever the URL, with every name resolving to
// 127.0.0.1, the default policy only ever accepts an https URL whose host
// is a literal public address, and never panics.
func FuzzEgressCheckURL(f *testing.F) {
	for _, s := range []string{"https://example.com/", "https://8.8.8.8/", "http://2130706433/", "https://[::ffff:127.0.0.1]/",
		"https://0x7f.1/", "https://[64:ff9b::7f00:1]/", "https://a.b.c/", "https://[fe80::1%25eth0]/"} {
		f.Add(s)
	}
	r := &fakeResolver{names: map[string][]netip.Addr{}}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := ValidateURL(raw)
		if err != nil {
			return
		}
		r.set(strings.TrimSuffix(strings.ToLower(mustHost(u)), "."), "127.0.0.1")
		e := &Egress{Resolver: r}
		if err := e.CheckURL(context.Background(), u); err != nil {
			return
		}
		a, err := netip.ParseAddr(mustHost(u))
		if err != nil || refusedRange(a) != "" || !strings.HasPrefix(u, "https://") {
			t.Fatalf("accepted %q (%q)", raw, u)
		}
	})
}

// mustHost is u's host, "" if u does not parse (ValidateURL's output of
// some inputs, e.g. "http://[::%25\x89]", does not parse again).
func mustHost(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return ""
	}
	return p.Hostname()
}

func itoa(n int) string { return strconv.Itoa(n) }
