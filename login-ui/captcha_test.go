package loginui

import (
	"bytes"
	"context"
	"encoding/base64"
	"image/png"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/caf-extranet/idp/storage"
)

func TestCaptchaTextIsRandomFromTheAlphabet(t *testing.T) {
	m, err := newCaptchaMaker(6, "", bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var lower, upper bool
	for i := 0; i < 50; i++ {
		answer, err := m.imageText()
		if err != nil {
			t.Fatal(err)
		}
		img, err := m.drawImage(answer)
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
	if answer, _ := m.imageText(); answer != "Zz9" {
		t.Errorf("image answer %q", answer)
	}
	if _, answer, _ := m.questionChallenge(); answer != "Zz9" {
		t.Errorf("question answer %q", answer)
	}
}

type noChallenges struct{}

func (noChallenges) CreateCountedChallenge(context.Context, string, time.Duration, int64, storage.Challenge, time.Time) (int64, error) {
	return 0, errBoom
}
func (noChallenges) ConsumeChallenge(context.Context, string, time.Time) (storage.Challenge, error) {
	return storage.Challenge{}, errBoom
}
func (noChallenges) AddDecayingFailure(context.Context, string, time.Duration, time.Time) (storage.Throttle, error) {
	return storage.Throttle{}, errBoom
}
func (noChallenges) TakeChallenge(context.Context, string, string, time.Time) (*storage.Challenge, storage.Throttle, error) {
	return nil, storage.Throttle{}, errBoom
}

func TestNewRefusesBadSettings(t *testing.T) {
	valid := func() Deps {
		return Deps{Accounts: &fakeAccounts{}, AuthRequests: newFakeRequests(), Challenges: noChallenges{},
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			Config: Config{CaptchaLength: 5, CaptchaTTL: time.Minute}, ChallengeKey: make([]byte, 32)}
	}
	if _, err := New(valid()); err != nil {
		t.Fatalf("valid deps refused: %v", err)
	}
	for name, mutate := range map[string]func(*Deps){
		"no accounts":   func(d *Deps) { d.Accounts = nil },
		"no requests":   func(d *Deps) { d.AuthRequests = nil },
		"no challenges": func(d *Deps) { d.Challenges = nil },
		"no logger":     func(d *Deps) { d.Logger = nil },
		"short key":     func(d *Deps) { d.ChallengeKey = make([]byte, 16) },
		"no TTL":        func(d *Deps) { d.Config.CaptchaTTL = 0 },
		"length 4":      func(d *Deps) { d.Config.CaptchaLength = 4 },
		"length 9":      func(d *Deps) { d.Config.CaptchaLength = 9 },
	} {
		d := valid()
		mutate(&d)
		if _, err := New(d); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
