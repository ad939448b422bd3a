package mail

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/caf-extranet/idp/storage"
)

// ErrInvalidMessage: the mail cannot be turned into a message (bad address,
// a line break in a header...). Retrying cannot help, so IsPermanent is true.
var ErrInvalidMessage = errors.New("mail: invalid message")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidMessage, fmt.Sprintf(format, args...))
}

// parseAddress accepts one address (with or without a display name) and
// refuses anything carrying a line break, which would let a value smuggle in
// its own headers.
func parseAddress(field, value string) (*mail.Address, error) {
	if strings.ContainsAny(value, "\r\n") {
		return nil, invalid("%s contains a line break", field)
	}
	a, err := mail.ParseAddress(value)
	if err != nil {
		return nil, invalid("%s %q: %v", field, value, err)
	}
	return a, nil
}

// Envelope returns the bare SMTP envelope addresses (MAIL FROM, RCPT TO) for
// a From value (e.g. "Portail Extranet <no-reply@example.fr>") and a To.
func Envelope(from, to string) (envFrom, envTo string, err error) {
	f, err := parseAddress("From", from)
	if err != nil {
		return "", "", err
	}
	t, err := parseAddress("To", to)
	if err != nil {
		return "", "", err
	}
	return f.Address, t.Address, nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// foldedLine is the longest header line left whole: RFC 2047 allows 76
// characters to a line that holds encoded words (RFC 5322 recommends 78).
const foldedLine = 76

// foldAddress writes a as the value of header name, folded before the
// address and between the encoded words of its name when the line would be
// longer than foldedLine: an accented mail.from is one line of about a
// hundred characters otherwise.
func foldAddress(name string, a *mail.Address) string {
	v := a.String()
	if len(name)+2+len(v) <= foldedLine {
		return v
	}
	i := strings.LastIndex(v, " <")
	if i < 0 {
		return v
	}
	return foldEncodedWords(v[:i]) + "\r\n " + v[i+1:]
}

// foldEncodedWords puts each of a header value's encoded words (mime's
// encoder splits a long text into several, each within 75 characters) on a
// line of its own.
func foldEncodedWords(v string) string {
	return strings.ReplaceAll(v, "?= =?", "?=\r\n =?")
}

// Build turns an outbox mail into an RFC 5322 message with CRLF line endings:
// multipart/alternative with a text/plain and a text/html part (the text part
// alone when there is no HTML), both UTF-8 quoted-printable so the message is
// 7-bit clean for any relay. messageID is the Message-ID without its angle
// brackets ("id@domain").
func Build(from string, m storage.OutboxMail, messageID string, date time.Time) ([]byte, error) {
	f, err := parseAddress("From", from)
	if err != nil {
		return nil, err
	}
	t, err := parseAddress("To", m.To)
	if err != nil {
		return nil, err
	}
	if strings.ContainsAny(m.Subject, "\r\n") {
		return nil, invalid("Subject contains a line break")
	}
	if messageID == "" || strings.ContainsAny(messageID, "\r\n<> \t") || !strings.Contains(messageID, "@") {
		return nil, invalid("Message-ID %q", messageID)
	}
	subject := m.Subject
	if !isASCII(subject) {
		subject = mime.QEncoding.Encode("utf-8", subject)
	}

	var msg bytes.Buffer
	header := func(name, value string) {
		first, _, _ := strings.Cut(value, "\r\n")
		if strings.HasPrefix(value, "=?") && len(name)+2+len(first) > foldedLine {
			// An encoded word of the full 75 characters: on a line of
			// its own.
			msg.WriteString(name + ":\r\n " + value + "\r\n")
			return
		}
		msg.WriteString(name + ": " + value + "\r\n")
	}
	// Address.String applies RFC 2047 to a non-ASCII display name.
	header("From", foldAddress("From", f))
	header("To", foldAddress("To", t))
	header("Subject", foldEncodedWords(subject))
	header("Date", date.Format(time.RFC1123Z))
	header("Message-ID", "<"+messageID+">")
	header("MIME-Version", "1.0")
	// RFC 3834: out-of-office robots must not answer an automatic mail.
	header("Auto-Submitted", "auto-generated")
	header("Content-Language", "fr")

	if m.HTMLBody == "" {
		header("Content-Type", "text/plain; charset=utf-8")
		header("Content-Transfer-Encoding", "quoted-printable")
		msg.WriteString("\r\n")
		if err := writeQuotedPrintable(&msg, m.TextBody); err != nil {
			return nil, err
		}
		return msg.Bytes(), nil
	}

	mw := multipart.NewWriter(&msg) // random boundary from crypto/rand
	// Folded, since the boundary alone is 60 characters (RFC 5322 lines
	// SHOULD stay within 78); multipart.Writer's boundaries are hex, so
	// they need no quoting.
	header("Content-Type", "multipart/alternative;\r\n boundary="+mw.Boundary())
	msg.WriteString("\r\n")
	// Least preferred first (RFC 2046 §5.1.4): clients show the HTML part.
	for _, part := range []struct{ contentType, body string }{
		{"text/plain; charset=utf-8", m.TextBody},
		{"text/html; charset=utf-8", m.HTMLBody},
	} {
		w, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {part.contentType},
			"Content-Transfer-Encoding": {"quoted-printable"},
		})
		if err != nil {
			return nil, err
		}
		if err := writeQuotedPrintable(w, part.body); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	return msg.Bytes(), nil
}

// writeQuotedPrintable encodes body; the encoder turns each line break into
// CRLF and folds long lines with soft breaks.
func writeQuotedPrintable(w io.Writer, body string) error {
	qp := quotedprintable.NewWriter(w)
	if _, err := qp.Write([]byte(body)); err != nil {
		return err
	}
	return qp.Close()
}
