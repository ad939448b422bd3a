package loginui

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"image/png"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang/freetype/truetype"
	"github.com/mojocn/base64Captcha"
	"golang.org/x/image/font"

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

// TestCaptchaGlyphsFitTheImage: every character of the alphabet is drawn
// whole, in both fonts, at every size and baseline the library picks, first
// and last of a text of either length: the answer is exact and
// case-sensitive, and a character partly cut (the tail of a y, the hook of a
// J, the last leg of a final m) reads as another. The positions are those of
// base64Captcha v1.3.8's drawText (item_char.go): character i of n at
// x = (width/n)*i + (width/n)/size, its baseline at height/2 + size/2 -
// rand(height/16*3), size = height*(7..13)/16 points at 72 dpi. A pixel of
// anti-aliasing may touch an edge.
func TestCaptchaGlyphsFitTheImage(t *testing.T) {
	var cut []string
	for _, length := range []int{5, 6} {
		m, err := newCaptchaMaker(length, "", bytes.Repeat([]byte{7}, 32))
		if err != nil {
			t.Fatal(err)
		}
		slot := captchaWidth / length
		for _, name := range m.driver.Fonts {
			f := base64Captcha.DefaultEmbeddedFonts.LoadFontByName("fonts/" + name)
			for k := 7; k <= 13; k++ {
				size := captchaHeight * k / 16
				face := truetype.NewFace(f, &truetype.Options{Size: float64(size), DPI: 72, Hinting: font.HintingFull})
				lowest := captchaHeight/2 + size/2
				highest := lowest - (captchaHeight/16*3 - 1)
				first := slot / size
				last := slot*(length-1) + slot/size
				for _, c := range captchaAlphabet {
					b, _ := font.BoundString(face, string(c))
					for edge, over := range map[string]int{
						"bottom":               lowest + b.Max.Y.Ceil() - captchaHeight,
						"top":                  -(highest + b.Min.Y.Floor()),
						"left, in 1st place":   -(first + b.Min.X.Floor()),
						"right, in last place": last + b.Max.X.Ceil() - captchaWidth,
					} {
						if over > 1 {
							cut = append(cut, fmt.Sprintf("%q (%s, %dpx, length %d): %s edge cuts %dpx", c, name, size, length, edge, over))
						}
					}
				}
			}
		}
	}
	if len(cut) > 0 {
		slices.Sort(cut)
		t.Fatalf("characters of the CAPTCHA alphabet drawn partly outside the image:\n%s", strings.Join(cut, "\n"))
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
func (noChallenges) HitCounter(context.Context, string, time.Duration, time.Time) (int64, error) {
	return 0, errBoom
}
func (noChallenges) TakeChallenge(context.Context, string, string, time.Time) (*storage.Challenge, storage.Throttle, error) {
	return nil, storage.Throttle{}, errBoom
}
func (noChallenges) ChallengeReceipt(context.Context, string, time.Time) (bool, error) {
	return false, errBoom
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
		"length 7":      func(d *Deps) { d.Config.CaptchaLength = 7 },
	} {
		d := valid()
		mutate(&d)
		if _, err := New(d); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
