package callbacks

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// ErrRefusedDestination: a callback URL or the address it resolves to is
// outside the egress policy (wrapped with the reason).
var ErrRefusedDestination = errors.New("callback destination refused by the egress policy")

// Resolver resolves host names; *net.Resolver implements it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Egress is where callbacks may be sent. The zero value (and a nil
// *Egress) is the default policy:
//
//   - https only;
//   - host names must resolve, and every address they resolve to must be
//     public: loopback (127/8, ::1), private (10/8, 172.16/12,
//     192.168/16, fc00::/7), link-local (169.254/16 — cloud metadata —,
//     fe80::/10), multicast, unspecified (0.0.0.0, ::), "this network"
//     0/8, shared address space 100.64/10 (CGNAT), 192.0.0/24, the
//     documentation and benchmarking ranges, 240/4 and broadcast, site-local
//     fec0::/10, discard 100::/64, 2001::/23 (Teredo among them) and every
//     IPv6 address outside 2000::/3 are refused; IPv4-mapped (::ffff:a.b.c.d),
//     NAT64 (64:ff9b::/96) and 6to4 (2002::/16) addresses are judged by the
//     IPv4 address they carry;
//   - a host that is not a canonical IP literal but looks like a number
//     (2130706433, 0x7f.1, 0177.0.0.1, 127.1: forms some resolvers turn
//     into addresses) is refused, as are localhost and *.localhost and
//     IPv6 zones;
//   - the check runs when a subscriber registers and again at every
//     delivery, on the address actually connected to (a dialer Control
//     hook), so a name that resolves to a public address at registration
//     and to 127.0.0.1 later (DNS rebinding) is refused at delivery.
//     Environment proxies are not used and redirects are never followed.
//
// Allow and AllowHosts open exceptions for test setups and internal
// receivers.
type Egress struct {
	// AllowHTTP permits http:// receivers.
	AllowHTTP bool
	// Allow lists address ranges permitted although the default refuses
	// them, e.g. 127.0.0.1/32 for a test receiver.
	Allow []netip.Prefix
	// AllowHosts lists host names (exact, case-insensitive) whose
	// addresses are all permitted.
	AllowHosts []string
	// Resolver resolves host names; nil: net.DefaultResolver.
	Resolver Resolver
}

// ParseAllowList parses a comma-separated allow-list of CIDR ranges, IP
// addresses and host names ("127.0.0.0/8, ::1, hooks.internal") into an
// Egress's Allow and AllowHosts.
func ParseAllowList(s string) ([]netip.Prefix, []string, error) {
	var prefixes []netip.Prefix
	var hosts []string
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if p, err := netip.ParsePrefix(item); err == nil {
			prefixes = append(prefixes, p.Masked())
			continue
		}
		if a, err := netip.ParseAddr(item); err == nil && a.Zone() == "" {
			prefixes = append(prefixes, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		h := strings.TrimSuffix(strings.ToLower(item), ".")
		if !validHostName(h) || numericLooking(h) {
			return nil, nil, fmt.Errorf("callback allow-list: %q is not a CIDR range, an IP address or a host name", item)
		}
		hosts = append(hosts, h)
	}
	return prefixes, hosts, nil
}

func (e *Egress) policy() *Egress {
	if e == nil {
		return &Egress{}
	}
	return e
}

func (e *Egress) resolver() Resolver {
	if e.Resolver != nil {
		return e.Resolver
	}
	return net.DefaultResolver
}

func (e *Egress) hostAllowed(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	for _, h := range e.AllowHosts {
		if h == host {
			return true
		}
	}
	return false
}

// CheckAddr returns nil if a callback may connect to a, else an error
// wrapping ErrRefusedDestination that names the range.
func (e *Egress) CheckAddr(a netip.Addr) error {
	e = e.policy()
	for _, p := range e.Allow {
		if p.Contains(a) || p.Contains(a.Unmap()) {
			return nil
		}
	}
	if why := refusedRange(a); why != "" {
		return fmt.Errorf("%w: %s address", ErrRefusedDestination, why)
	}
	return nil
}

// CheckURL checks a receiver URL (already syntax-checked by ValidateURL)
// against the policy: its scheme, its host, and every address the host
// resolves to now. Errors wrap ErrRefusedDestination.
func (e *Egress) CheckURL(ctx context.Context, raw string) error {
	e = e.policy()
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%w: not a URL", ErrRefusedDestination)
	}
	if u.Scheme != "https" && !e.AllowHTTP {
		return fmt.Errorf("%w: only https receivers are allowed", ErrRefusedDestination)
	}
	host := u.Hostname()
	if e.hostAllowed(host) {
		return nil
	}
	addrs, err := e.resolve(ctx, host)
	if err != nil {
		if errors.Is(err, ErrRefusedDestination) {
			return err
		}
		return fmt.Errorf("%w: the host does not resolve", ErrRefusedDestination)
	}
	for _, a := range addrs {
		if err := e.CheckAddr(a); err != nil {
			if _, lit := literal(host); lit {
				return err
			}
			return fmt.Errorf("%w: the host resolves to a non-public address", ErrRefusedDestination)
		}
	}
	return nil
}

// literal returns host's address if it is a canonical IP literal.
func literal(host string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(host)
	return a, err == nil
}

// resolve returns host's addresses: an IP literal as is (zones refused),
// a host name through the resolver (its error is returned as is).
// Number-like names and localhost are refused before any lookup.
func (e *Egress) resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	if a, ok := literal(host); ok {
		if a.Zone() != "" {
			return nil, fmt.Errorf("%w: IPv6 zones are not allowed", ErrRefusedDestination)
		}
		return []netip.Addr{a}, nil
	}
	h := strings.TrimSuffix(strings.ToLower(host), ".")
	switch {
	case !validHostName(h):
		return nil, fmt.Errorf("%w: not a valid host name", ErrRefusedDestination)
	case numericLooking(h):
		return nil, fmt.Errorf("%w: the host looks like a number but is not a canonical IP address", ErrRefusedDestination)
	case h == "localhost" || strings.HasSuffix(h, ".localhost"):
		return nil, fmt.Errorf("%w: loopback host name", ErrRefusedDestination)
	}
	addrs, err := e.resolver().LookupNetIP(ctx, "ip", h)
	if err != nil {
		return nil, fmt.Errorf("resolve: %w", err)
	}
	if len(addrs) == 0 {
		return nil, &net.DNSError{Err: "no address", Name: h, IsNotFound: true}
	}
	return addrs, nil
}

// validHostName: LDH labels separated by dots, 1-253 bytes (underscores
// tolerated, as some resolvers do).
func validHostName(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// numericLooking: the last label is all digits or 0x-hex. No top-level
// domain is numeric, so such a name can only be an IPv4 address in one of
// the inet_aton forms (2130706433, 127.1, 0177.0.0.1, 0x7f.0.0.1).
func numericLooking(h string) bool {
	last := h[strings.LastIndexByte(h, '.')+1:]
	if strings.HasPrefix(last, "0x") {
		return true
	}
	for i := 0; i < len(last); i++ {
		if last[i] < '0' || last[i] > '9' {
			return false
		}
	}
	return true
}

// refused ranges beyond what netip's predicates cover.
var (
	refused4 = []struct {
		p   netip.Prefix
		why string
	}{
		{netip.MustParsePrefix("0.0.0.0/8"), "this-network"},
		{netip.MustParsePrefix("100.64.0.0/10"), "shared (CGNAT)"},
		{netip.MustParsePrefix("192.0.0.0/24"), "reserved (IETF protocol assignments)"},
		{netip.MustParsePrefix("192.0.2.0/24"), "documentation"},
		{netip.MustParsePrefix("198.51.100.0/24"), "documentation"},
		{netip.MustParsePrefix("203.0.113.0/24"), "documentation"},
		{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},
		{netip.MustParsePrefix("240.0.0.0/4"), "reserved"},
	}
	global6   = netip.MustParsePrefix("2000::/3")
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
	refused6  = []struct {
		p   netip.Prefix
		why string
	}{
		{netip.MustParsePrefix("2001::/23"), "reserved (IETF protocol assignments, Teredo)"},
		{netip.MustParsePrefix("2001:db8::/32"), "documentation"},
		{netip.MustParsePrefix("3fff::/20"), "documentation"},
	}
)

// refusedRange names the refused range a belongs to, or "" if a is public.
func refusedRange(a netip.Addr) string {
	a = a.WithZone("")
	if a.Is4In6() {
		a = a.Unmap()
	}
	switch {
	case !a.IsValid():
		return "invalid"
	case a.IsUnspecified():
		return "unspecified"
	case a.IsLoopback():
		return "loopback"
	case a.IsPrivate():
		return "private"
	case a.IsLinkLocalUnicast():
		return "link-local"
	case a.IsMulticast():
		return "multicast"
	}
	if a.Is4() {
		for _, r := range refused4 {
			if r.p.Contains(a) {
				return r.why
			}
		}
		return ""
	}
	b := a.As16()
	switch {
	case nat64.Contains(a):
		return refusedRange(netip.AddrFrom4([4]byte(b[12:16])))
	case sixToFour.Contains(a):
		return refusedRange(netip.AddrFrom4([4]byte(b[2:6])))
	case !global6.Contains(a):
		return "non-global IPv6"
	}
	for _, r := range refused6 {
		if r.p.Contains(a) {
			return r.why
		}
	}
	return ""
}

// DialContext connects to addr (host:port) the way callbacks must: the
// host resolved through the policy's resolver, every address checked,
// and the address actually connected to checked again by a dialer
// Control hook.
func (e *Egress) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	e = e.policy()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRefusedDestination, err)
	}
	allowHost := e.hostAllowed(host)
	var addrs []netip.Addr
	if a, ok := literal(host); ok && allowHost {
		addrs = []netip.Addr{a}
	} else if allowHost { // an allowed name, even "localhost"
		addrs, err = e.resolver().LookupNetIP(ctx, "ip", host)
	} else {
		addrs, err = e.resolve(ctx, host)
	}
	if err != nil {
		return nil, err
	}
	if !allowHost {
		for _, a := range addrs {
			if err := e.CheckAddr(a); err != nil {
				return nil, err
			}
		}
	}
	d := &net.Dialer{Timeout: Timeout, KeepAlive: 30 * time.Second,
		Control: func(_, address string, _ syscall.RawConn) error {
			if allowHost {
				return nil
			}
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("%w: unparsable address", ErrRefusedDestination)
			}
			return e.CheckAddr(ap.Addr())
		}}
	var errs []error
	for _, a := range addrs {
		c, err := d.DialContext(ctx, network, net.JoinHostPort(a.WithZone("").String(), port))
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

// Transport returns an HTTP transport that dials only through the
// policy, ignores environment proxies and bounds handshakes.
func (e *Egress) Transport() *http.Transport {
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           e.policy().DialContext,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   Timeout,
		ResponseHeaderTimeout: Timeout,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       90 * time.Second,
	}
}

// failureClass says why a delivery failed without network detail (no
// address, port or resolver message), so the error a staff member sees in
// the queue UI cannot be used to map the network.
func failureClass(err error) string {
	var dnsErr *net.DNSError
	var certErr *tls.CertificateVerificationError
	var hostErr x509.HostnameError
	var authErr x509.UnknownAuthorityError
	var recErr tls.RecordHeaderError
	var netErr net.Error
	var opErr *net.OpError
	switch {
	case errors.Is(err, ErrRefusedDestination):
		return "destination refused by the egress policy"
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &netErr) && netErr.Timeout():
		return "timeout"
	case errors.As(err, &dnsErr):
		return "name resolution"
	case errors.As(err, &certErr) || errors.As(err, &hostErr) || errors.As(err, &authErr) || errors.As(err, &recErr):
		return "tls"
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return "connect"
	}
	return "transport"
}
