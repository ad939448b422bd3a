package loginui

import (
	"bytes"
	"encoding/base64"
	"image/png"
	"strings"
	"testing"
)

func TestCaptchaTextIsRandomFromTheAlphabet(t *testing.T) {
	m, err := newCaptchaMaker(6, "", bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var lower, upper bool
	for i := 0; i < 50; i++ {
		answer, img, err := m.imageChallenge()
		if err != nil {
			t.Fatal(err)
		}
		if len(answer) != 6 || strings.Trim(answer, captchaAlphabet) != "" {
			t.Fatalf("answer %q outside the alphabet or of the wrong length", answer)
		}
		lower = lower || strings.ToUpper(answer) != answer
		upper = upper || strings.ToLower(answer) != answer
		seen[answer] = true
		if i == 0 {
			raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(string(img), "data:image/png;base64,"))
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := png.DecodeConfig(bytes.NewReader(raw))
			if err != nil || cfg.Width != captchaWidth || cfg.Height != captchaHeight {
				t.Fatalf("image %+v %v", cfg, err)
			}
		}
	}
	if len(seen) < 49 || !lower || !upper {
		t.Fatalf("answers not random or not mixed case: %d distinct", len(seen))
	}
	for _, c := range "0Oo1lIi" {
		if strings.ContainsRune(captchaAlphabet, c) {
			t.Errorf("look-alike %q in the alphabet", c)
		}
	}
}

func TestCaptchaComparisonIsExact(t *testing.T) {
	m, err := newCaptchaMaker(5, "", bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	hash := m.answerHash("AbCdE")
	if !m.matches("AbCdE", hash) {
		t.Fatal("right answer refused")
	}
	for _, wrong := range []string{"abcde", "ABCDE", "AbC dE", "AbCdE ", " AbCdE", "", "AbCd"} {
		if m.matches(wrong, hash) {
			t.Errorf("%q accepted", wrong)
		}
	}
	other, _ := newCaptchaMaker(5, "", bytes.Repeat([]byte{8}, 32))
	if other.matches("AbCdE", hash) {
		t.Error("hash does not depend on the key")
	}
	if m.matchesBinding("browser-a", m.bindingHash("browser-b")) || !m.matchesBinding("browser-a", m.bindingHash("browser-a")) {
		t.Error("binding check wrong")
	}
}

func TestCaptchaTestAnswerIsDrawnAndAsked(t *testing.T) {
	m, err := newCaptchaMaker(5, "Zz9", bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	if answer, _, _ := m.imageChallenge(); answer != "Zz9" {
		t.Errorf("image answer %q", answer)
	}
	if _, answer, _ := m.questionChallenge(); answer != "Zz9" {
		t.Errorf("question answer %q", answer)
	}
}

func TestNewRefusesBadSettings(t *testing.T) {
	good := Deps{Accounts: &fakeAccounts{}, AuthRequests: newFakeRequests(), Challenges: nil,
		Config: Config{CaptchaLength: 5, CaptchaTTL: 1}, ChallengeKey: make([]byte, 32)}
	if _, err := New(good); err == nil {
		t.Error("accepted without Challenges")
	}
	for _, n := range []int{0, 4, 9} {
		if _, err := newCaptchaMaker(n, "", make([]byte, 32)); err == nil {
			t.Errorf("CaptchaLength %d accepted", n)
		}
	}
}
