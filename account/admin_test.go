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
