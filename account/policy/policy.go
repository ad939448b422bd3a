// Package policy is the password policy: which new passwords an agent may
// choose, and the provisional passwords mailed by « Mot de passe oublié ? ».
// It does no I/O apart from LoadForbidden.
//
// Lengths count Unicode code points after NFC normalisation, never bytes, so
// that "é" is one character whether it was typed composed or decomposed.
package policy

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Policy is a set of rules for new passwords.
type Policy struct {
	MinLength int
	// MaxLength: 0 means no maximum.
	MaxLength        int
	RequireLowercase bool
	RequireUppercase bool
	RequireDigit     bool
	// RequireSymbol: at least one character that is neither a letter nor a
	// digit (punctuation, symbol, space...).
	RequireSymbol bool
	// Forbidden holds refused passwords, lowercased and NFC (see
	// LoadForbidden); the comparison ignores case.
	Forbidden map[string]struct{}
	// ForbidEmailLocalPart refuses a password containing the local part of
	// the agent's address (when it is at least 3 characters long).
	ForbidEmailLocalPart bool
}

// Default is the agency's convention: 6 to 20 characters, with at least one
// lowercase letter and at least one digit.
func Default() Policy {
	return Policy{MinLength: 6, MaxLength: 20, RequireLowercase: true, RequireDigit: true}
}

// NIST is the profile for deployments following NIST SP 800-63B.
//
// Minimum 15: the 2024 revision (SP 800-63B-4) requires at least 15
// characters when the password is the only authentication factor (8 only
// when it is part of multi-factor authentication), and this provider
// authenticates with the password alone. Maximum 64, the length the
// guideline says verifiers should accept at least. No composition rules:
// the guideline forbids them. It also requires checking new passwords against
// a list of commonly used or compromised values: Forbidden is left empty here
// and the deployment must fill it (LoadForbidden,
// password.policy.forbidden_passwords_file). Context-specific words such as
// the user name are to be refused too, hence ForbidEmailLocalPart.
func NIST() Policy {
	return Policy{MinLength: 15, MaxLength: 64, ForbidEmailLocalPart: true}
}

// Violation names one broken rule; the login pages map it to a message.
type Violation string

// Violations, in the order Check reports them.
const (
	Empty                Violation = "empty"
	TooShort             Violation = "too_short"
	TooLong              Violation = "too_long"
	NoLowercase          Violation = "no_lowercase"
	NoUppercase          Violation = "no_uppercase"
	NoDigit              Violation = "no_digit"
	NoSymbol             Violation = "no_symbol"
	Forbidden            Violation = "forbidden"
	ContainsEmail        Violation = "contains_email"
	SameAsCurrent        Violation = "same_as_current"
	ConfirmationMismatch Violation = "confirmation_mismatch"
)

// minEmailLocalPart: shorter local parts ("jo@...") would refuse too many
// innocent passwords.
const minEmailLocalPart = 3

// Normalize returns the form of s that is checked and hashed: NFC, so that
// an accented letter typed composed or decomposed is the same password.
// Nothing is trimmed or truncated.
func Normalize(s string) string {
	return norm.NFC.String(s)
}

// Check returns every rule newPassword breaks, in the order of the Violation
// constants, or nil when it is acceptable. An empty newPassword gets only
// Empty: listing every class it lacks would not help the agent.
//
// confirmation must equal newPassword (both normalised); current is the
// password being replaced (empty when unknown, as with a provisional one) and
// must differ; email is the agent's address, for ForbidEmailLocalPart.
func (p Policy) Check(newPassword, confirmation, current, email string) []Violation {
	pw := Normalize(newPassword)
	if pw == "" {
		return []Violation{Empty}
	}
	var out []Violation
	n := utf8.RuneCountInString(pw)
	if n < p.MinLength {
		out = append(out, TooShort)
	}
	if p.MaxLength > 0 && n > p.MaxLength {
		out = append(out, TooLong)
	}
	c := classesOf(pw)
	if p.RequireLowercase && !c.lower {
		out = append(out, NoLowercase)
	}
	if p.RequireUppercase && !c.upper {
		out = append(out, NoUppercase)
	}
	if p.RequireDigit && !c.digit {
		out = append(out, NoDigit)
	}
	if p.RequireSymbol && !c.symbol {
		out = append(out, NoSymbol)
	}
	folded := foldForCompare(pw)
	if _, found := p.Forbidden[folded]; found {
		out = append(out, Forbidden)
	}
	if p.ForbidEmailLocalPart {
		local := email
		if at := strings.LastIndexByte(email, '@'); at >= 0 {
			local = email[:at]
		}
		local = foldForCompare(strings.TrimSpace(local))
		if utf8.RuneCountInString(local) >= minEmailLocalPart && strings.Contains(folded, local) {
			out = append(out, ContainsEmail)
		}
	}
	if current != "" && Normalize(current) == pw {
		out = append(out, SameAsCurrent)
	}
	if Normalize(confirmation) != pw {
		out = append(out, ConfirmationMismatch)
	}
	return out
}

// foldForCompare is the case-insensitive form used for the forbidden list and
// the e-mail check.
func foldForCompare(s string) string {
	return norm.NFC.String(strings.ToLower(norm.NFC.String(s)))
}

type classes struct{ lower, upper, digit, symbol bool }

func classesOf(s string) classes {
	var c classes
	for _, r := range s {
		switch {
		case unicode.IsLower(r):
			c.lower = true
		case unicode.IsUpper(r):
			c.upper = true
		case unicode.IsDigit(r):
			c.digit = true
		case !unicode.IsLetter(r):
			// Neither letter nor digit. Letters without case (e.g. CJK)
			// count as nothing.
			c.symbol = true
		}
	}
	return c
}
