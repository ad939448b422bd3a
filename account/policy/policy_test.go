package policy

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

const (
	composedE   = "\u00e9"  // é as one code point
	decomposedE = "e\u0301" // e + combining acute accent
)

// check runs Default().Check with a matching confirmation and no current
// password, isolating the rules on the password itself.
func check(p Policy, pw string) []Violation {
	return p.Check(pw, pw, "", "")
}

func TestDefaultConvention(t *testing.T) {
	cases := []struct {
		name string
		pw   string
		want []Violation
	}{
		{"5 characters", "abc12", []Violation{TooShort}},
		{"exactly 6", "abcd12", nil},
		{"no digit", "abcdef", []Violation{NoDigit}},
		{"no lowercase", "ABC123", []Violation{NoLowercase}},
		{"digits only", "123456", []Violation{NoLowercase}},
		{"exactly 20", "abcdefghij0123456789", nil},
		{"21 characters", "abcdefghij01234567890", []Violation{TooLong}},
		{"é is a lowercase letter", "éééé12", nil},
		{"à and ç are lowercase letters", "çà1234", nil},
		{"uppercase accented is not lowercase", "ÉÉÉÉ12", []Violation{NoLowercase}},
		{"uppercase allowed", "AbCdE1", nil},
		{"symbols and spaces allowed", "a1 !?€ ", nil},
		// 20 code points but 40 bytes: counted as 20.
		{"20 accented code points", strings.Repeat("é", 18) + "12", nil},
		{"21 accented code points", strings.Repeat("é", 19) + "12", []Violation{TooLong}},
		// 5 code points but 10 bytes: still too short.
		{"short in code points, long in bytes", "éééé1", []Violation{TooShort}},
		{"decomposed é counts once", strings.Repeat(decomposedE, 18) + "12", nil},
		{"several at once", "ABC", []Violation{TooShort, NoLowercase, NoDigit}},
		{"long and no digit", strings.Repeat("a", 25), []Violation{TooLong, NoDigit}},
		{"empty", "", []Violation{Empty}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := check(Default(), c.pw); !slices.Equal(got, c.want) {
				t.Errorf("Check(%q) = %v, want %v", c.pw, got, c.want)
			}
		})
	}
}

func TestComposedAndDecomposedAreTheSamePassword(t *testing.T) {
	composed := "caf" + composedE + "12"
	decomposed := "caf" + decomposedE + "12"
	if len(composed) == len(decomposed) {
		t.Fatal("test data: the two spellings should differ in bytes")
	}
	if Normalize(composed) != Normalize(decomposed) {
		t.Fatal("Normalize does not unify composed and decomposed é")
	}
	// Typed decomposed, confirmed composed: the same password.
	if got := Default().Check(decomposed, composed, "", ""); got != nil {
		t.Fatalf("Check(decomposed, composed) = %v, want nil", got)
	}
	// Replacing the current password by itself in the other spelling.
	if got := Default().Check(decomposed, decomposed, composed, ""); !slices.Equal(got, []Violation{SameAsCurrent}) {
		t.Fatalf("same password in another spelling = %v, want [same_as_current]", got)
	}
	// Five decomposed é + digit: 11 code points as typed, 6 after NFC.
	if got := check(Default(), strings.Repeat(decomposedE, 5)+"1"); got != nil {
		t.Fatalf("6 decomposed characters = %v, want nil", got)
	}
}

func TestNormalizeNeverTrimsOrTruncates(t *testing.T) {
	long := " " + strings.Repeat("a1", 600) + " "
	if Normalize(long) != long {
		t.Fatal("Normalize changed an already NFC string")
	}
	if got := check(Default(), " abc12"); got != nil {
		t.Fatalf("leading space is a character: Check = %v, want nil", got)
	}
}

func TestConfirmationAndCurrent(t *testing.T) {
	p := Default()
	if got := p.Check("abcd12", "abcd13", "", ""); !slices.Equal(got, []Violation{ConfirmationMismatch}) {
		t.Errorf("mismatch: %v", got)
	}
	if got := p.Check("abcd12", "ABCD12", "", ""); !slices.Equal(got, []Violation{ConfirmationMismatch}) {
		t.Errorf("confirmation differing in case: %v", got)
	}
	if got := p.Check("abcd12", "", "", ""); !slices.Equal(got, []Violation{ConfirmationMismatch}) {
		t.Errorf("empty confirmation: %v", got)
	}
	if got := p.Check("abcd12", "abcd12", "abcd12", ""); !slices.Equal(got, []Violation{SameAsCurrent}) {
		t.Errorf("same as current: %v", got)
	}
	if got := p.Check("abcd12", "abcd12", "ABCD12", ""); got != nil {
		t.Errorf("differs from current by case: %v, want nil", got)
	}
	// Everything reported together, in the documented order.
	got := p.Check("abc", "abd", "abc", "")
	want := []Violation{TooShort, NoDigit, SameAsCurrent, ConfirmationMismatch}
	if !slices.Equal(got, want) {
		t.Errorf("all together = %v, want %v", got, want)
	}
}

func TestForbiddenAndEmail(t *testing.T) {
	p := Default()
	p.Forbidden = map[string]struct{}{"azerty123": {}, "caf" + composedE + "12": {}}
	p.ForbidEmailLocalPart = true
	cases := []struct {
		pw, email string
		want      []Violation
	}{
		{"azerty123", "", []Violation{Forbidden}},
		{"AZERTY123", "", []Violation{NoLowercase, Forbidden}},
		{"AzErTy123", "", []Violation{Forbidden}},
		{"CAF" + decomposedE + "12", "", []Violation{Forbidden}}, // case and NFC folded
		{"azerty1234", "", nil},
		{"xdupont99", "Dupont@example.fr", []Violation{ContainsEmail}},
		{"xDUPONT99", "dupont@example.fr", []Violation{ContainsEmail}},
		{"xjo12345", "jo@example.fr", nil}, // local part under 3 characters
		{"xjoe1234", "joe@example.fr", []Violation{ContainsEmail}},
		{"xdupont99", "", nil},
		{"xdupont99", "martin@example.fr", nil},
	}
	for _, c := range cases {
		if got := p.Check(c.pw, c.pw, "", c.email); !slices.Equal(got, c.want) {
			t.Errorf("Check(%q, email %q) = %v, want %v", c.pw, c.email, got, c.want)
		}
	}
	// Without the flag, the address is not looked at.
	if got := Default().Check("xdupont99", "xdupont99", "", "dupont@example.fr"); got != nil {
		t.Errorf("ForbidEmailLocalPart off: %v", got)
	}
}

func TestAllClassesPolicy(t *testing.T) {
	p := Policy{MinLength: 8, MaxLength: 0, RequireLowercase: true, RequireUppercase: true, RequireDigit: true, RequireSymbol: true}
	if got := check(p, "abcdefgh"); !slices.Equal(got, []Violation{NoUppercase, NoDigit, NoSymbol}) {
		t.Errorf("lowercase only: %v", got)
	}
	if got := check(p, "Abcdefg1!"); got != nil {
		t.Errorf("all classes: %v", got)
	}
	if got := check(p, "Abcdefg1 "); got != nil {
		t.Errorf("space counts as symbol: %v", got)
	}
	if got := check(p, strings.Repeat("Ab1!", 300)); got != nil {
		t.Errorf("MaxLength 0 means no maximum: %v", got)
	}
}

func TestNIST(t *testing.T) {
	p := NIST()
	if p.MinLength < 15 || p.MaxLength < 64 || p.RequireLowercase || p.RequireUppercase || p.RequireDigit || p.RequireSymbol {
		t.Fatalf("NIST() = %+v", p)
	}
	if got := check(p, "correct horse b"); got != nil { // 15, no composition
		t.Errorf("15-character passphrase: %v", got)
	}
	if got := check(p, "fourteen chars"); !slices.Equal(got, []Violation{TooShort}) {
		t.Errorf("14 characters: %v", got)
	}
	if got := check(p, strings.Repeat("é", 64)); got != nil {
		t.Errorf("64 characters: %v", got)
	}
}

func TestLoadForbidden(t *testing.T) {
	path := filepath.Join(t.TempDir(), "common.txt")
	content := "# common passwords\n\nazerty\nSoleil1\n  motdepasse  \r\ncaf" + decomposedE + "\n#notacomment? no: comment\n"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := LoadForbidden(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"azerty", "soleil1", "motdepasse", "caf" + composedE}
	if len(got) != len(want) {
		t.Fatalf("loaded %v, want %v", got, want)
	}
	for _, w := range want {
		if _, ok := got[w]; !ok {
			t.Errorf("%q missing from %v", w, got)
		}
	}
	if _, err := LoadForbidden(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("missing file: no error")
	}
}

func TestGenerateAlwaysSatisfies(t *testing.T) {
	alphabet := genLower + genUpper + genDigit + genSymbol
	policies := map[string]Policy{
		"default": Default(),
		"nist":    NIST(),
		"all classes": {MinLength: 4, MaxLength: 4, RequireLowercase: true, RequireUppercase: true,
			RequireDigit: true, RequireSymbol: true},
		"all classes long": {MinLength: 10, MaxLength: 30, RequireLowercase: true, RequireUppercase: true,
			RequireDigit: true, RequireSymbol: true},
	}
	for name, p := range policies {
		for _, n := range []int{12} {
			seen := map[string]bool{}
			for range 1000 {
				pw, err := p.Generate(n)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if v := check(p, pw); v != nil {
					t.Fatalf("%s: generated %q breaks %v", name, pw, v)
				}
				want := min(max(n, p.MinLength), p.MaxLength)
				if utf8.RuneCountInString(pw) != want {
					t.Fatalf("%s: %q has %d characters, want %d", name, pw, len(pw), want)
				}
				for _, r := range pw {
					if !strings.ContainsRune(alphabet, r) {
						t.Fatalf("%s: %q contains %q, outside the alphabet", name, pw, r)
					}
				}
				if !p.RequireSymbol && strings.ContainsAny(pw, genSymbol) {
					t.Fatalf("%s: %q contains a symbol though none is required", name, pw)
				}
				seen[pw] = true
			}
			if len(seen) < 990 {
				t.Errorf("%s: only %d distinct passwords out of 1000", name, len(seen))
			}
		}
	}
}

func TestGenerateAlphabetHasNoLookAlikes(t *testing.T) {
	for _, c := range "0Oo1lIQDBSZG" {
		if strings.ContainsRune(genLower+genUpper+genDigit+genSymbol, c) {
			t.Errorf("alphabet contains the ambiguous %q", c)
		}
	}
}

// Every class must be able to land anywhere: the required characters are
// shuffled, not left at the front.
func TestGenerateShuffles(t *testing.T) {
	p := Policy{MinLength: 12, MaxLength: 12, RequireUppercase: true}
	positions := map[int]bool{}
	for range 500 {
		pw, err := p.Generate(12)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range pw {
			if strings.ContainsRune(genUpper, r) {
				positions[i] = true
			}
		}
	}
	if len(positions) != 12 {
		t.Fatalf("uppercase letters appeared only at positions %v", positions)
	}
}

func TestGenerateClampsAndRefuses(t *testing.T) {
	p := Default()
	for n, want := range map[int]int{0: 6, -5: 6, 3: 6, 12: 12, 20: 20, 500: 20} {
		pw, err := p.Generate(n)
		if err != nil || len(pw) != want {
			t.Errorf("Generate(%d) = %q, %v; want %d characters", n, pw, err, want)
		}
	}
	impossible := map[string]Policy{
		"max below min":         {MinLength: 10, MaxLength: 5},
		"more classes than max": {MinLength: 1, MaxLength: 3, RequireLowercase: true, RequireUppercase: true, RequireDigit: true, RequireSymbol: true},
	}
	for name, p := range impossible {
		if _, err := p.Generate(12); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestGenerateAvoidsForbidden(t *testing.T) {
	// A 1-character digit-only space so small that a forbidden
	// entry is drawn most of the time: Generate must never return one.
	p := Policy{MinLength: 1, MaxLength: 1, RequireDigit: true}
	p.Forbidden = map[string]struct{}{"2": {}, "3": {}, "4": {}, "5": {}, "6": {}, "7": {}, "8": {}}
	succeeded := 0
	for range 200 {
		pw, err := p.Generate(1)
		if err == nil && pw != "9" {
			t.Fatalf("Generate returned forbidden %q", pw)
		}
		if err == nil {
			succeeded++
		}
	}
	if succeeded == 0 {
		t.Fatal("Generate never found the one allowed password")
	}
	p.Forbidden["9"] = struct{}{}
	if _, err := p.Generate(1); err == nil {
		t.Fatal("every candidate forbidden: no error")
	}
}

// TestGeneratedPasswordsHaveNoLookAlikePairs: rn reads m and vv reads w in
// a proportional font (Outlook's plain text): 450 of 20,000 provisional
// passwords held one (found by review).
func TestGeneratedPasswordsHaveNoLookAlikePairs(t *testing.T) {
	p := Default()
	for range 20000 {
		pw, err := p.Generate(12)
		if err != nil {
			t.Fatal(err)
		}
		for _, pair := range []string{"rn", "vv", "VV", "vV", "Vv"} {
			if strings.Contains(pw, pair) {
				t.Fatalf("generated %q holds the look-alike pair %q", pw, pair)
			}
		}
	}
}
