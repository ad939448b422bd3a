package storage

import (
	"strings"

	"golang.org/x/net/idna"
)

// NormaliseEmail is the one form in which e-mail addresses are stored and
// looked up: trimmed and lowercased, the domain in its ASCII form.
//
// Accounts hold the ASCII form (the admin commands refuse any other: mails
// go out 7-bit, without SMTPUTF8), while an agent types the address as
// printed, accents included (agent@société.fr), in a browser that may submit
// it as typed. Such a domain is converted as a resolver would look it up
// (IDNA, UTS #46 ToASCII), so that it finds agent@xn--socit-esab.fr at
// login, « Mot de passe oublié ? » and the change forms alike. A domain that
// does not convert stays as typed, lowercased, and matches no account. The
// local part is only lowercased: it is the receiving server's to interpret.
// The domain goes to the conversion as typed, which maps its case itself as
// a resolver does: lowercased first, ẞ became ß, which the conversion keeps
// (xn--strae-oqa.de) where a resolver maps ẞ to ss (strasse.de).
func NormaliseEmail(email string) string {
	e := strings.TrimSpace(email)
	at := strings.LastIndexByte(e, '@')
	if at < 0 || isASCII(e[at+1:]) {
		return strings.ToLower(e)
	}
	domain, err := idna.Lookup.ToASCII(e[at+1:])
	if err != nil {
		return strings.ToLower(e)
	}
	return strings.ToLower(e[:at+1]) + domain
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
