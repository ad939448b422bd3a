package loginui

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"image/color"
	"math/big"
	"strconv"

	"github.com/mojocn/base64Captcha"
)

// The CAPTCHA of « Mot de passe oublié ? ».
//
// Only the drawing comes from github.com/mojocn/base64Captcha. Its Verify and
// its memory store are never used: Verify compares case-insensitively and
// trims spaces, whereas the procedure asks for the text typed « en respectant
// la casse » and without spaces; Captcha.Verify accepts an empty answer for an
// unknown id (CVE-2023-45292); and a memory store would break with several
// instances. The text is drawn here with crypto/rand, its HMAC is stored in
// the database with an expiry and the browser's binding, and the challenge is
// consumed (single use) before the answer is compared.
//
// The non-visual alternative (RGAA criterion 1.5) is a short addition asked in
// French words, « Combien font sept plus cinq ? Répondez en chiffres. »,
// answered in the same field. The library's audio CAPTCHA speaks digits only
// in English, Japanese, Russian or Chinese, which the agency's French-speaking
// agents cannot be expected to follow; a question written in the page's
// language is read by their own screen reader. It is as single-use, expiring,
// bound and throttled as the image. It is easier for a program that reads
// French, which the per-address throttles keep in bounds.

// captchaAlphabet keeps at most one character of each look-alike group in
// the drawn fonts (0 O o Q: none; 1 l I i: none; 2 Z z: 2; 5 S s: 5; 6 G b:
// G b; 8 B: B; 9 g q: none), and drops the letters whose capital and small
// forms differ only by size (c k p u v w x), since the library draws each
// character at a random size and the answer is case-sensitive.
//
// It also drops the characters the library cannot draw whole in the image,
// since a cut one cannot be typed right: at its largest size (65 px) it may
// put the baseline 8 pixels above the bottom edge, which cuts the tail of y
// (16 px deep), the hook of J and the tail of Q (y then reads as v, J as I);
// in first place, it starts the hook of J left of the image at any size; and
// it gives the last character a 240/length-pixel slot (40 or 48) out of
// which the legs of m (52 px wide), M and N stick (m reads as n). Changing
// the canvas height would not help, the sizes and the baseline scaling with
// it; a canvas wide enough for m would be a third wider, and as much
// costlier to draw. TestCaptchaGlyphsFitTheImage checks every character of
// both fonts at every size, baseline and length against every edge.
const captchaAlphabet = "abdefhnrt" + "ABDEFGHLRTY" + "234579"

// The image: 240×80 fits a 375px-wide phone with the page's margins.
const (
	captchaWidth  = 240
	captchaHeight = 80
)

// Operands of the question alternative: 1 to 20, in words.
const questionMaxOperand = 20

// captchaMaker draws challenges and hashes answers.
type captchaMaker struct {
	length     int
	testAnswer string
	key        []byte
	driver     *base64Captcha.DriverString
}

func newCaptchaMaker(length int, testAnswer string, key []byte) (*captchaMaker, error) {
	// Longer texts get slots too narrow for the alphabet's widest
	// characters (TestCaptchaGlyphsFitTheImage).
	if length < 5 || length > 6 {
		return nil, fmt.Errorf("loginui: CaptchaLength must be 5 or 6, not %d", length)
	}
	background := color.RGBA{R: 255, G: 255, B: 255, A: 255}
	// The plainest of the library's fonts: some others (actionj) have no
	// lowercase at all, which a case-sensitive answer cannot afford.
	fonts := []string{"wqy-microhei.ttc", "RitaSmith.ttf"}
	driver := base64Captcha.NewDriverString(captchaHeight, captchaWidth, 0,
		base64Captcha.OptionShowSlimeLine, length, captchaAlphabet, &background, nil, fonts)
	return &captchaMaker{length: length, testAnswer: testAnswer, key: key, driver: driver}, nil
}

// imageText returns a new text for an image challenge. It is drawn apart
// (drawImage), once the throttle has let the challenge be stored: the
// drawing is most of a challenge's cost.
func (m *captchaMaker) imageText() (string, error) {
	if m.testAnswer != "" {
		return m.testAnswer, nil
	}
	return randomText(m.length, captchaAlphabet)
}

// drawImage draws text as a data: URI.
func (m *captchaMaker) drawImage(text string) (template.URL, error) {
	item, err := m.driver.DrawCaptcha(text)
	if err != nil {
		return "", fmt.Errorf("drawing captcha: %w", err)
	}
	// The URI is ours (a base64 PNG), hence safe in src.
	return template.URL(item.EncodeB64string()), nil
}

// questionChallenge returns a new question (a message of the catalog) and
// its answer.
func (m *captchaMaker) questionChallenge() (question message, answer string, err error) {
	a, err := randomInt(questionMaxOperand)
	if err != nil {
		return message{}, "", err
	}
	b, err := randomInt(questionMaxOperand)
	if err != nil {
		return message{}, "", err
	}
	a, b = a+1, b+1
	answer = strconv.Itoa(a + b)
	if m.testAnswer != "" {
		answer = m.testAnswer
	}
	word := func(n int) message { return msg("number." + strconv.Itoa(n)) }
	return msg("captcha.question", word(a), word(b)), answer, nil
}

// answerHash is what the store keeps of an answer: HMAC-SHA256 with the
// challenge key, hex.
func (m *captchaMaker) answerHash(answer string) string {
	return m.mac(answer)
}

// bindingHash ties a challenge to the browser's random CSRF cookie, so that
// a challenge solved in one browser cannot be spent from another.
func (m *captchaMaker) bindingHash(browserToken string) string {
	return m.mac("binding\x00" + browserToken)
}

func (m *captchaMaker) mac(s string) string {
	h := hmac.New(sha256.New, m.key)
	h.Write([]byte(s))
	return hex.EncodeToString(h.Sum(nil))
}

// matches compares an answer to a stored hash exactly: case-sensitive,
// nothing trimmed, in constant time.
func (m *captchaMaker) matches(answer, answerHash string) bool {
	return hmac.Equal([]byte(m.answerHash(answer)), []byte(answerHash))
}

// matchesBinding checks that the challenge was drawn for this browser.
func (m *captchaMaker) matchesBinding(browserToken, bindingHash string) bool {
	return hmac.Equal([]byte(m.bindingHash(browserToken)), []byte(bindingHash))
}

// randomText draws n characters of alphabet with crypto/rand.
func randomText(n int, alphabet string) (string, error) {
	out := make([]byte, n)
	for i := range out {
		k, err := randomInt(len(alphabet))
		if err != nil {
			return "", err
		}
		out[i] = alphabet[k]
	}
	return string(out), nil
}

// randomInt is uniform in [0, n) from crypto/rand.
func randomInt(n int) (int, error) {
	if n <= 0 {
		return 0, errors.New("randomInt: n must be positive")
	}
	k, err := rand.Int(rand.Reader, big.NewInt(int64(n)))
	if err != nil {
		return 0, fmt.Errorf("reading random: %w", err)
	}
	return int(k.Int64()), nil
}
