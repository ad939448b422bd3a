package loginui

import (
	"strings"
	"testing"
)

// BenchmarkCaptchaImage draws one CAPTCHA image (text, PNG, data: URI): the
// floor of the forgot scenario of `idp bench`.
func BenchmarkCaptchaImage(b *testing.B) {
	m, err := newCaptchaMaker(6, "", make([]byte, 32))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		text, err := m.imageText()
		if err != nil {
			b.Fatal(err)
		}
		img, err := m.drawImage(text)
		if err != nil || !strings.HasPrefix(string(img), "data:image/png;base64,") {
			b.Fatalf("image: %v", err)
		}
	}
}
