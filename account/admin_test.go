package account_test

import (
	"testing"

	"github.com/caf-extranet/idp/account"
)

// TestValidateTextRefusesControlCharacters: a name or an organisation is
// replayed raw by idp user list, in ID tokens and in mails; only CR, LF
// and NUL were refused, so an escape sequence, a tab, a bell or a
// bidirectional override was stored.
func TestValidateTextRefusesControlCharacters(t *testing.T) {
	for _, v := range []string{"Evil\x1b[2J", "Mairie\tde Lyon", "Bell\a", "Claire\u202eenialC", "Zero\u200bwidth",
		"Ligne\u2028deux", "Claire\nDupont", "Nul\x00", "Invalide\xff"} {
		if _, err := account.ValidateText("name", v, true); err == nil {
			t.Errorf("ValidateText(%q) accepted it", v)
		}
	}
	for _, v := range []string{"Claire Dupont", "Mairie de Saint-Étienne", "  Élodie O'Brien  ", "Zoë", "李小龙"} {
		if _, err := account.ValidateText("name", v, true); err != nil {
			t.Errorf("ValidateText(%q) = %v", v, err)
		}
	}
}

// TestValidateEmailTrimsUnicodeSpaces (review): an address pasted from a
// spreadsheet or a web page often ends with a non-breaking space. It was
// trimmed (NormaliseEmail) and accepted before ValidateEmail started
// checking the address "as given"; now user add and user import refuse it
// as "characters outside ASCII", though the address stored would be the
// same ASCII one.
func TestValidateEmailTrimsUnicodeSpaces(t *testing.T) {
	for _, v := range []string{"agent@mairie.fr\u00a0", "\u00a0agent@mairie.fr", "agent@mairie.fr\u3000", "agent@mairie.fr\u0085"} {
		got, err := account.ValidateEmail(v)
		if err != nil || got != "agent@mairie.fr" {
			t.Errorf("ValidateEmail(%q) = %q, %v; want agent@mairie.fr", v, got, err)
		}
	}
}
