package policy

import (
	"testing"
	"unicode/utf8"
)

// FuzzCheck: Check never panics, reports each violation at most once in the
// documented order, and what it accepts is within the length bounds and
// carries the required classes.
func FuzzCheck(f *testing.F) {
	f.Add("abcd12", "abcd12", "", "agent@example.fr")
	f.Add("éééé12", "e\u0301e\u0301e\u0301e\u0301"+"12", "old", "é@x")
	f.Add("\xff\xfe12ab", "\xff\xfe12ab", "", "@")
	order := map[Violation]int{Empty: 0, TooShort: 1, TooLong: 2, NoLowercase: 3, NoUppercase: 4, NoDigit: 5,
		NoSymbol: 6, Forbidden: 7, ContainsEmail: 8, SameAsCurrent: 9, ConfirmationMismatch: 10}
	policies := []Policy{Default(), NIST(), {MinLength: 3, MaxLength: 8, RequireLowercase: true,
		RequireUppercase: true, RequireDigit: true, RequireSymbol: true, ForbidEmailLocalPart: true,
		Forbidden: map[string]struct{}{"abc1!": {}}}}
	f.Fuzz(func(t *testing.T, pw, confirmation, current, email string) {
		for _, p := range policies {
			got := p.Check(pw, confirmation, current, email)
			last := -1
			for _, v := range got {
				rank, known := order[v]
				if !known || rank <= last {
					t.Fatalf("Check(%q) = %v: unknown, repeated or out of order", pw, got)
				}
				last = rank
			}
			if got != nil {
				continue
			}
			n := utf8.RuneCountInString(Normalize(pw))
			if n < p.MinLength || (p.MaxLength > 0 && n > p.MaxLength) {
				t.Fatalf("accepted %q of %d characters outside [%d, %d]", pw, n, p.MinLength, p.MaxLength)
			}
			c := classesOf(Normalize(pw))
			if (p.RequireLowercase && !c.lower) || (p.RequireUppercase && !c.upper) ||
				(p.RequireDigit && !c.digit) || (p.RequireSymbol && !c.symbol) {
				t.Fatalf("accepted %q without a required class", pw)
			}
			if Normalize(confirmation) != Normalize(pw) {
				t.Fatalf("accepted %q with confirmation %q", pw, confirmation)
			}
		}
	})
}
