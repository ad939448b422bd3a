package policy

import (
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
)

// Alphabets of generated passwords. They leave out characters an agent can
// misread in a mail or type wrong: 0 O o Q D (round shapes), 1 l I i j (strokes),
// the uppercase letters B S Z G that look like 8 5 2 6, and r v V, which
// pair into look-alikes in a proportional font (rn reads m, vv reads w).
// Symbols are ones
// found on every keyboard layout without dead keys and that survive a copy
// from a mail (no quotes, no dots or commas that blend with punctuation).
const (
	genLower  = "abcdefghkmnpqstuwxyz"
	genUpper  = "ACEFHJKLMNPRTUWXY"
	genDigit  = "23456789"
	genSymbol = "#%+=?!@*"
)

// ErrCannotGenerate: the policy cannot be satisfied by a generated password
// (maximum below minimum, or fewer characters allowed than required classes).
var ErrCannotGenerate = errors.New("policy: cannot generate a password for this policy")

// Generate returns a random provisional password of n characters (n clamped
// into [MinLength, MaxLength]) that satisfies p: one character of each
// required class is placed, the rest is drawn from lowercase, uppercase and
// digits (and symbols when required), and the whole is shuffled, all with
// crypto/rand. Symbols are used only when required, as they are the hardest
// to type on a phone.
func (p Policy) Generate(n int) (string, error) {
	n = max(n, p.MinLength, 1)
	if p.MaxLength > 0 && n > p.MaxLength {
		n = p.MaxLength
	}
	if p.MaxLength > 0 && p.MaxLength < p.MinLength {
		return "", fmt.Errorf("%w: maximum length %d below minimum %d", ErrCannotGenerate, p.MaxLength, p.MinLength)
	}
	var required []string
	fill := genLower + genUpper + genDigit
	for _, class := range []struct {
		want     bool
		alphabet string
	}{
		{p.RequireLowercase, genLower},
		{p.RequireUppercase, genUpper},
		{p.RequireDigit, genDigit},
		{p.RequireSymbol, genSymbol},
	} {
		if class.want {
			required = append(required, class.alphabet)
		}
	}
	if p.RequireSymbol {
		fill += genSymbol
	}
	if len(required) > n {
		return "", fmt.Errorf("%w: %d required classes in %d characters", ErrCannotGenerate, len(required), n)
	}
	// A draw can, with negligible probability, be a listed password; a few
	// redraws settle it without any risk of looping forever.
	for range 10 {
		pw, err := draw(n, required, fill)
		if err != nil {
			return "", err
		}
		if _, found := p.Forbidden[foldForCompare(pw)]; !found {
			return pw, nil
		}
	}
	return "", fmt.Errorf("%w: every draw was a forbidden password", ErrCannotGenerate)
}

func draw(n int, required []string, fill string) (string, error) {
	out := make([]byte, 0, n)
	for _, alphabet := range required {
		c, err := pick(alphabet)
		if err != nil {
			return "", err
		}
		out = append(out, c)
	}
	for len(out) < n {
		c, err := pick(fill)
		if err != nil {
			return "", err
		}
		out = append(out, c)
	}
	// Fisher–Yates, so the required characters end up anywhere.
	for i := len(out) - 1; i > 0; i-- {
		j, err := randIndex(i + 1)
		if err != nil {
			return "", err
		}
		out[i], out[j] = out[j], out[i]
	}
	return string(out), nil
}

// pick returns a uniformly chosen byte of an ASCII alphabet.
func pick(alphabet string) (byte, error) {
	i, err := randIndex(len(alphabet))
	if err != nil {
		return 0, err
	}
	return alphabet[i], nil
}

// randIndex is uniform in [0, n) (rand.Int rejects biased draws).
func randIndex(n int) (int, error) {
	v, err := rand.Int(rand.Reader, big.NewInt(int64(n)))
	if err != nil {
		return 0, fmt.Errorf("policy: random: %w", err)
	}
	return int(v.Int64()), nil
}
