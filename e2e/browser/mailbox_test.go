package browser

import (
	"bufio"
	"context"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// message is one mail as the agent's mail server received it.
type message struct {
	To      string // the envelope recipient
	Subject string // decoded
	Text    string // the decoded text/plain part
}

// mailbox is a real SMTP server (emersion/go-smtp) on a loopback port: the
// provider is configured with IDP_SMTP_ADDR pointing here, so « the mail
// arrives » is observed the way an agent's mail server would see it.
type mailbox struct {
	Addr string

	mu       sync.Mutex
	messages []message
	arrived  chan struct{} // closed and replaced at each arrival
}

func startMailbox(t *testing.T) *mailbox {
	t.Helper()
	mb := &mailbox{arrived: make(chan struct{})}
	s := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return &mailSession{mb: mb}, nil
	}))
	s.Domain = "mx.test"
	s.ReadTimeout = 10 * time.Second
	s.WriteTimeout = 10 * time.Second
	s.ErrorLog = quietLog{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mb.Addr = l.Addr().String()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Serve(l)
	}()
	t.Cleanup(func() {
		s.Close()
		<-done
	})
	return mb
}

func (mb *mailbox) deliver(m message) {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	mb.messages = append(mb.messages, m)
	close(mb.arrived)
	mb.arrived = make(chan struct{})
}

// to lists the messages received so far for an address.
func (mb *mailbox) to(addr string) []message {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	var out []message
	for _, m := range mb.messages {
		if strings.EqualFold(m.To, addr) {
			out = append(out, m)
		}
	}
	return out
}

// waitFor returns the n-th message (from 1) with subject sent to addr,
// waiting for it to arrive: the provider's outbox sends asynchronously.
func (mb *mailbox) waitFor(t *testing.T, addr, subject string, n int) message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		mb.mu.Lock()
		arrived := mb.arrived
		mb.mu.Unlock()
		var found []message
		for _, m := range mb.to(addr) {
			if m.Subject == subject {
				found = append(found, m)
			}
		}
		if len(found) >= n {
			return found[n-1]
		}
		select {
		case <-arrived:
		case <-ctx.Done():
			t.Fatalf("mail %d « %s » to %s did not arrive within 20s (received for it: %d)", n, subject, addr, len(found))
		}
	}
}

// provisionalPassword reads the password out of the mail « Votre mot de
// passe »: it stands alone on the line after the sentence announcing it.
func provisionalPassword(t *testing.T, m message) string {
	t.Helper()
	lines := strings.Split(m.Text, "\n")
	for i, l := range lines {
		if strings.HasSuffix(strings.TrimSpace(l), "Voici votre mot de passe provisoire :") {
			for _, next := range lines[i+1:] {
				if p := strings.TrimSpace(next); p != "" {
					return p
				}
			}
		}
	}
	t.Fatalf("no provisional password in the mail:\n%s", m.Text)
	return ""
}

type mailSession struct {
	mb *mailbox
	to string
}

func (s *mailSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *mailSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = to
	return nil
}
func (s *mailSession) Reset()        { s.to = "" }
func (s *mailSession) Logout() error { return nil }

func (s *mailSession) Data(r io.Reader) error {
	msg, err := mail.ReadMessage(bufio.NewReader(r))
	if err != nil {
		return err
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		return err
	}
	text, err := plainText(msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Body)
	if err != nil {
		return err
	}
	s.mb.deliver(message{To: s.to, Subject: subject, Text: text})
	return nil
}

// plainText finds the text/plain part of a message and decodes it.
func plainText(contentType, encoding string, body io.Reader) (string, error) {
	mediaType, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return "", err
	}
	if strings.HasPrefix(mediaType, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			// RawPart: the transfer encoding is decoded below, as for a
			// single-part message.
			p, err := mr.NextRawPart()
			if err != nil {
				return "", err
			}
			if text, err := plainText(p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p); err != nil || text != "" {
				return text, err
			}
		}
	}
	if mediaType != "text/plain" {
		return "", nil
	}
	if strings.EqualFold(encoding, "quoted-printable") {
		body = quotedprintable.NewReader(body)
	}
	b, err := io.ReadAll(body)
	return strings.ReplaceAll(string(b), "\r\n", "\n"), err
}

type quietLog struct{}

func (quietLog) Printf(string, ...any) {}
func (quietLog) Println(...any)        {}
