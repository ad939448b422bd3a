package mail

import (
	"bytes"
	"errors"
	"mime"
	"net/mail"
	"strings"
	"testing"
	"time"
)

func TestBuildMessage(t *testing.T) {
	now := time.Date(2026, 11, 26, 13, 5, 0, 0, time.UTC)
	m := ProvisionalPassword(testPortal, "Agent <agent@example.fr>", "Élodie Müller", "Kp7=vQ2m-Xz9r", now.Add(time.Hour), now)
	// A long line, to see the encoder fold it.
	m.TextBody += strings.Repeat("é", 200) + "\n"
	raw, err := Build("Portail Extranet <no-reply@example.fr>", m, "abc123@example.fr", now)
	if err != nil {
		t.Fatal(err)
	}

	// 7-bit, CRLF only, no line over the RFC 5322 limit of 78 characters.
	for i, b := range raw {
		if b >= 0x80 {
			t.Fatalf("byte %d is not 7-bit", i)
		}
		if b == '\n' && (i == 0 || raw[i-1] != '\r') {
			t.Fatalf("bare LF at byte %d", i)
		}
		if b == '\r' && (i+1 >= len(raw) || raw[i+1] != '\n') {
			t.Fatalf("bare CR at byte %d", i)
		}
	}
	for _, l := range bytes.Split(raw, []byte("\r\n")) {
		if len(l) > 78 {
			t.Errorf("line of %d characters: %q", len(l), l)
		}
	}

	p := parseMessage(t, raw)
	if p.From.Address != "no-reply@example.fr" || p.From.Name != "Portail Extranet" {
		t.Errorf("From = %v", p.From)
	}
	if p.To.Address != "agent@example.fr" {
		t.Errorf("To = %v", p.To)
	}
	if p.Subject != "Votre mot de passe" {
		t.Errorf("Subject = %q", p.Subject)
	}
	if got := p.Header.Get("Message-ID"); got != "<abc123@example.fr>" {
		t.Errorf("Message-ID = %q", got)
	}
	if d, err := p.Header.Date(); err != nil || !d.Equal(now) {
		t.Errorf("Date = %v, %v", d, err)
	}
	if p.Header.Get("MIME-Version") != "1.0" {
		t.Errorf("MIME-Version = %q", p.Header.Get("MIME-Version"))
	}
	if p.PartCount != 2 || p.TextType != "text/plain; charset=utf-8" || p.HTMLType != "text/html; charset=utf-8" {
		t.Errorf("parts: %d, %q, %q", p.PartCount, p.TextType, p.HTMLType)
	}
	// Quoted-printable turned the line breaks into CRLF; the decoded parts
	// are the bodies with CRLF line ends.
	if got := strings.ReplaceAll(p.Text, "\r\n", "\n"); got != m.TextBody {
		t.Errorf("text part round trip:\n got %q\nwant %q", got, m.TextBody)
	}
	if got := strings.ReplaceAll(p.HTML, "\r\n", "\n"); got != m.HTMLBody {
		t.Errorf("HTML part round trip differs")
	}
	if !hasLine(strings.ReplaceAll(p.Text, "\r\n", "\n"), "Kp7=vQ2m-Xz9r") {
		t.Error("the password is not on a line of its own after decoding")
	}
	if !strings.Contains(p.Text, "Bonjour Élodie Müller,") {
		t.Error("the display name did not survive the encoding")
	}
}

func TestBuildEncodesNonASCIISubjectAndNames(t *testing.T) {
	m := PasswordChanged(testPortal, "Élodie <e@example.fr>", "", time.Now(), time.Now())
	raw, err := Build("Portail Extranet Sécurité <no-reply@example.fr>", m, "x@example.fr", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	rawSubject := msg.Header.Get("Subject")
	if !strings.HasPrefix(rawSubject, "=?utf-8?q?") {
		t.Errorf("Subject not RFC 2047-encoded: %q", rawSubject)
	}
	var dec mime.WordDecoder
	if s, _ := dec.DecodeHeader(rawSubject); s != "Votre mot de passe a été modifié" {
		t.Errorf("decoded Subject = %q", s)
	}
	from, err := mail.ParseAddress(msg.Header.Get("From"))
	if err != nil || from.Name != "Portail Extranet Sécurité" {
		t.Errorf("From = %v, %v", from, err)
	}
	to, err := mail.ParseAddress(msg.Header.Get("To"))
	if err != nil || to.Name != "Élodie" || to.Address != "e@example.fr" {
		t.Errorf("To = %v, %v", to, err)
	}
}

func TestBuildASCIISubjectStaysPlain(t *testing.T) {
	m := PasswordChanged(testPortal, "a@example.fr", "", time.Now(), time.Now())
	m.Subject = "Plain subject"
	raw, err := Build("no-reply@example.fr", m, "x@example.fr", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, []byte("\r\nSubject: Plain subject\r\n")) {
		t.Errorf("ASCII subject altered:\n%s", raw)
	}
}

func TestBuildTextOnly(t *testing.T) {
	m := PasswordChanged(testPortal, "a@example.fr", "", time.Now(), time.Now())
	m.HTMLBody = ""
	raw, err := Build("no-reply@example.fr", m, "x@example.fr", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if ct := msg.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
		t.Errorf("Content-Type = %q", ct)
	}
	var body bytes.Buffer
	if _, err := body.ReadFrom(msg.Body); err != nil {
		t.Fatal(err)
	}
	if got := strings.ReplaceAll(decodeQP(t, body.String()), "\r\n", "\n"); got != m.TextBody {
		t.Errorf("body round trip: %q", got)
	}
}

func TestBuildRejectsHeaderInjection(t *testing.T) {
	base := PasswordChanged(testPortal, "a@example.fr", "", time.Now(), time.Now())
	for _, tc := range []struct {
		name, from, to, subject, messageID string
	}{
		{"CRLF in To", "no-reply@example.fr", "a@example.fr\r\nBcc: victim@example.org", "", ""},
		{"LF in To", "no-reply@example.fr", "a@example.fr\nBcc: victim@example.org", "", ""},
		{"CR in To", "no-reply@example.fr", "a@example.fr\rBcc: victim@example.org", "", ""},
		{"LF in To display name", "no-reply@example.fr", "\"x\nBcc: v@example.org\" <a@example.fr>", "", ""},
		{"CRLF in From", "no-reply@example.fr\r\nBcc: victim@example.org", "a@example.fr", "", ""},
		{"not an address", "no-reply@example.fr", "not an address", "", ""},
		{"two addresses", "no-reply@example.fr", "a@example.fr, b@example.fr", "", ""},
		{"empty To", "no-reply@example.fr", "", "", ""},
		{"LF in Subject", "no-reply@example.fr", "a@example.fr", "Hi\nBcc: victim@example.org", ""},
		{"LF in Message-ID", "no-reply@example.fr", "a@example.fr", "", "x@y\nBcc: v@example.org"},
		{"Message-ID without domain", "no-reply@example.fr", "a@example.fr", "", "x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := base
			m.To = tc.to
			if tc.subject != "" {
				m.Subject = tc.subject
			}
			id := "x@example.fr"
			if tc.messageID != "" {
				id = tc.messageID
			}
			raw, err := Build(tc.from, m, id, time.Now())
			if err == nil {
				t.Fatalf("built:\n%s", raw)
			}
			if !errors.Is(err, ErrInvalidMessage) || !IsPermanent(err) {
				t.Errorf("error %v: want ErrInvalidMessage, permanent", err)
			}
		})
	}
}

// TestBuildFoldsAnAccentedFrom: an accented mail.from made a From line of
// about a hundred characters (found by review); RFC 2047 allows 76 to a line
// with encoded words. Folded, it still reads back as the same name and
// address, and so does a long accented subject.
func TestBuildFoldsAnAccentedFrom(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	for _, from := range []string{
		"Portail Extranet des partenaires – Caf <ne-pas-repondre@services.caf.fr>",
		"Caf de l'Hérault – Portail Extranet <ne-pas-repondre@services.caf.fr>",
		"Portail Extranet <no-reply@example.fr>",
	} {
		m := ProvisionalPassword(testPortal, "claire.dupont@mairie.fr", "Claire Dupont", "Kp7vQ2mXz9", now.Add(time.Hour), now)
		m.Subject = "Votre mot de passe provisoire pour le portail des partenaires de la Caf de l'Hérault"
		raw, err := Build(from, m, "abc123@services.caf.fr", now)
		if err != nil {
			t.Fatal(err)
		}
		header, _, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
		for _, l := range bytes.Split(header, []byte("\r\n")) {
			if bytes.Contains(l, []byte("=?")) && len(l) > 76 {
				t.Errorf("mail.from %q: a header line of %d characters with encoded words:\n%s", from, len(l), l)
			}
		}
		msg, err := mail.ReadMessage(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		want, _ := mail.ParseAddress(from)
		got, err := msg.Header.AddressList("From")
		if err != nil || len(got) != 1 || got[0].Name != want.Name || got[0].Address != want.Address {
			t.Errorf("From reads back as %v (%v), want %v", got, err, want)
		}
		subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
		if err != nil || subject != m.Subject {
			t.Errorf("Subject reads back as %q (%v)", subject, err)
		}
	}
}
