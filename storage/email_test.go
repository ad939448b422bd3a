package storage

import "testing"

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
