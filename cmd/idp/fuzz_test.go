package main

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
)

// FuzzClientIP: the address the throttles and the audit trail are keyed on.
// A peer that is not a trusted proxy is the client whatever it claims; from
// a trusted proxy, the client is the nearest forwarded address that is not
// itself a trusted proxy, every hop after it being one of ours. The result
// is always one plain IP address.
func FuzzClientIP(f *testing.F) {
	f.Add("203.0.113.7", "", "10.0.0.0/8")
	f.Add("10.0.0.2", "198.51.100.9", "10.0.0.0/8")
	f.Add("10.0.0.2", "198.51.100.9, 10.0.0.3", "10.0.0.0/8")
	f.Add("10.0.0.2", "1.2.3.4, 198.51.100.9", "10.0.0.0/8")
	f.Add("10.0.0.2", "garbage, 10.0.0.3", "10.0.0.0/8")
	f.Add("10.0.0.2", "198.51.100.9\r\nX-Injected: 1", "10.0.0.0/8")
	f.Add("::ffff:10.0.0.2", "::ffff:198.51.100.9", "10.0.0.0/8")
	f.Add("2001:db8::1", "2001:db8::2", "2001:db8::/32,127.0.0.1")
	f.Add("10.0.0.2", "fe80::1%<script>", "10.0.0.0/8")
	f.Fuzz(func(t *testing.T, peerText, forwarded, trustedList string) {
		peer, err := netip.ParseAddr(peerText)
		if err != nil {
			return // RemoteAddr comes from the TCP connection: always an address
		}
		proxies, err := parseProxies(strings.Split(trustedList, ","))
		if err != nil {
			return // refused at start-up
		}
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = netip.AddrPortFrom(peer, 40000).String()
		r.Header["X-Forwarded-For"] = []string{forwarded}
		got := proxies.clientIP(r)

		ip, err := netip.ParseAddr(got)
		if err != nil || ip.String() != got || ip.Is4In6() || ip.Zone() != "" {
			t.Fatalf("client address %q is not one plain IP address", got)
		}
		peer = peer.Unmap().WithZone("") // a zone is not part of the address (clientIP drops it)
		if !proxies.trusted(peer) {
			if ip != peer {
				t.Fatalf("untrusted peer %s, X-Forwarded-For %q: client %s", peer, forwarded, ip)
			}
			return
		}
		if ip == peer {
			return // nothing usable forwarded
		}
		if proxies.trusted(ip) {
			t.Fatalf("client %s is one of the trusted proxies %v", ip, trustedList)
		}
		hops := strings.Split(forwarded, ",")
		for i := len(hops) - 1; i >= 0; i-- {
			hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
			if err != nil {
				t.Fatalf("client %s found beyond an unreadable hop %q", ip, hops[i])
			}
			if hop.Unmap() == ip {
				return
			}
			if !proxies.trusted(hop) {
				t.Fatalf("client %s found beyond the untrusted hop %s", ip, hop)
			}
		}
		t.Fatalf("client %s is not among the forwarded addresses %q", ip, forwarded)
	})
}

// FuzzCheckRedirectURI: a redirect URI the administrator may register is an
// absolute https URL (http only on a loopback host), without fragment; the
// check never accepts what a browser would read differently.
func FuzzCheckRedirectURI(f *testing.F) {
	for _, s := range []string{
		"https://rh.example.fr/callback", "http://localhost:3000/cb", "http://127.0.0.1:9/cb", "http://[::1]/cb",
		"https://rh.example.fr/cb#frag", "http://rh.example.fr/cb", "javascript:alert(1)", "//rh.example.fr/cb",
		"https:///cb", "https://rh.example.fr/cb\r\n", "HTTPS://RH.EXAMPLE.FR/cb", "https://user@rh.example.fr/",
		"http://127.attacker.example/cb", "http://loCAlhost/cb",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if checkRedirectURI(raw) != nil {
			return
		}
		u, err := url.Parse(raw)
		if err != nil || !u.IsAbs() || u.Host == "" || u.Hostname() == "" {
			t.Fatalf("accepted %q: not an absolute URL with a host", raw)
		}
		if strings.Contains(raw, "#") {
			t.Fatalf("accepted %q with a fragment", raw)
		}
		if strings.ContainsAny(raw, "\x00\r\n\t") {
			t.Fatalf("accepted %q with a control character", raw)
		}
		switch u.Scheme {
		case "https":
		case "http":
			// Only on loopback: "localhost" (in any case: host names are
			// case-insensitive) or an address that parses as loopback;
			// never a name such as 127.attacker.example.
			h := u.Hostname()
			ip, err := netip.ParseAddr(h)
			if !strings.EqualFold(h, "localhost") && (err != nil || !ip.IsLoopback()) {
				t.Fatalf("accepted http on %q", h)
			}
		default:
			t.Fatalf("accepted the scheme %q", u.Scheme)
		}
	})
}
