package storage

import (
	"testing"

	"golang.org/x/net/idna"
)

// TestNormaliseEmail: an address is trimmed and lowercased, and a domain
// typed with its accents takes the ASCII form the account holds; one that
// does not convert stays as typed; the result normalises to itself (the
// engines normalise what the account rules already did).
func TestNormaliseEmail(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{" Claire.Dupont@Mairie.FR ", "claire.dupont@mairie.fr"},
		{"agent@société.fr", "agent@xn--socit-esab.fr"},
		{"Agent@SOCIÉTÉ.FR", "agent@xn--socit-esab.fr"},
		{"agent@socie\u0301te\u0301.fr", "agent@xn--socit-esab.fr"}, // é decomposed
		{"agent@xn--socit-esab.fr", "agent@xn--socit-esab.fr"},
		{"hélène@mairie.fr", "hélène@mairie.fr"},           // the local part is the server's
		{"agent@-société.fr", "agent@-société.fr"},         // no IDNA form: as typed
		{"agent@soc_iété.fr", "agent@soc_iété.fr"},         // idem
		{"a@b@société.fr", "a@b@xn--socit-esab.fr"},        // the domain follows the last @
		{"société.fr", "société.fr"},                       // no @: nothing to convert
		{"mairie_lyon@mairie.fr", "mairie_lyon@mairie.fr"}, // ASCII: untouched
	} {
		got := NormaliseEmail(c.in)
		if got != c.want {
			t.Errorf("NormaliseEmail(%q) = %q, want %q", c.in, got, c.want)
		}
		if again := NormaliseEmail(got); again != got {
			t.Errorf("NormaliseEmail(%q) = %q, not its own normal form", got, again)
		}
	}
}

// TestNormaliseEmailMapsTheDomainAsAResolver (review): NormaliseEmail says
// it converts the domain "as a resolver would look it up (IDNA, UTS #46
// ToASCII)", but it lowercases the whole address with strings.ToLower
// first. Go's simple lowercase of ẞ (U+1E9E) is ß, which non-transitional
// UTS #46 keeps (xn--strae-oqa.de), while UTS #46 maps ẞ itself to "ss"
// (strasse.de): an agent typing AGENT@STRAẞE.DE is looked up, throttled and
// audited as the holder of agent@xn--strae-oqa.de, another domain than the
// one its mail would go to.
func TestNormaliseEmailMapsTheDomainAsAResolver(t *testing.T) {
	for _, domain := range []string{"STRA\u1E9EE.de", "\u1E9E.de"} {
		want, err := idna.Lookup.ToASCII(domain)
		if err != nil {
			t.Fatal(err)
		}
		if got := NormaliseEmail("agent@" + domain); got != "agent@"+want {
			t.Errorf("NormaliseEmail(%q) = %q, want agent@%s (the domain a resolver looks up)", "agent@"+domain, got, want)
		}
	}
}
