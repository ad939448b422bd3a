package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

var testMessage = []byte("From: a@example.fr\r\nTo: b@example.fr\r\nSubject: test\r\n\r\nbody\r\n")

func TestSMTPTransportStartTLSAndPlainAuth(t *testing.T) {
	cert, pool := selfSignedCert(t)
	srv := startSMTPServer(t, smtpServerOptions{
		tls:  &tls.Config{Certificates: []tls.Certificate{cert}},
		user: "mailer", pass: "s3cret",
		// AUTH is offered only once the session is encrypted.
	})
	tr := NewSMTPTransport(SMTPConfig{
		Addr: srv.Addr, Username: "mailer", Password: "s3cret", Helo: "idp.example.fr",
		StartTLS: true, Timeout: 5 * time.Second, TLSConfig: &tls.Config{RootCAs: pool},
	})
	if err := tr.Send(context.Background(), "no-reply@example.fr", "agent@example.fr", testMessage); err != nil {
		t.Fatalf("Send: %v", err)
	}
	got := srv.Messages()
	if len(got) != 1 {
		t.Fatalf("%d messages received", len(got))
	}
	r := got[0]
	if !r.TLS || r.AuthUser != "mailer" || r.Helo != "idp.example.fr" {
		t.Errorf("TLS=%v AuthUser=%q Helo=%q, want an authenticated TLS session from idp.example.fr", r.TLS, r.AuthUser, r.Helo)
	}
	if r.From != "no-reply@example.fr" || r.To != "agent@example.fr" {
		t.Errorf("envelope %q -> %q", r.From, r.To)
	}
	if string(r.Data) != string(testMessage) {
		t.Errorf("data = %q", r.Data)
	}
}

func TestSMTPTransportRefusesUntrustedCertificate(t *testing.T) {
	cert, _ := selfSignedCert(t)
	srv := startSMTPServer(t, smtpServerOptions{tls: &tls.Config{Certificates: []tls.Certificate{cert}}})
	tr := NewSMTPTransport(SMTPConfig{Addr: srv.Addr, StartTLS: true, Timeout: 5 * time.Second})
	err := tr.Send(context.Background(), "no-reply@example.fr", "agent@example.fr", testMessage)
	var verr *tls.CertificateVerificationError
	if !errors.As(err, &verr) {
		t.Fatalf("Send = %v, want a certificate verification error", err)
	}
	if IsPermanent(err) {
		t.Error("a TLS failure is classified permanent")
	}
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("%d messages went through", n)
	}
}

func TestSMTPTransportRequiresOfferedStartTLS(t *testing.T) {
	srv := startSMTPServer(t, smtpServerOptions{})
	tr := NewSMTPTransport(SMTPConfig{Addr: srv.Addr, StartTLS: true, Timeout: 5 * time.Second})
	err := tr.Send(context.Background(), "no-reply@example.fr", "agent@example.fr", testMessage)
	if !errors.Is(err, ErrNoStartTLS) {
		t.Fatalf("Send = %v, want ErrNoStartTLS", err)
	}
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("%d messages went through in clear", n)
	}
}

func TestSMTPConfigRefusesClearTextAuth(t *testing.T) {
	remote := SMTPConfig{Addr: "smtp.example.fr:25", Username: "u", Password: "p"}
	if err := remote.Validate(); !errors.Is(err, ErrInsecureAuth) {
		t.Errorf("Validate = %v, want ErrInsecureAuth", err)
	}
	// Send refuses before dialling anything.
	if err := NewSMTPTransport(remote).Send(context.Background(), "a@example.fr", "b@example.fr", testMessage); !errors.Is(err, ErrInsecureAuth) {
		t.Errorf("Send = %v, want ErrInsecureAuth", err)
	}
	for _, ok := range []SMTPConfig{
		{Addr: "smtp.example.fr:587", Username: "u", Password: "p", StartTLS: true},
		{Addr: "127.0.0.1:25", Username: "u", Password: "p"},
		{Addr: "smtp.example.fr:25"},
	} {
		if err := ok.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v", ok, err)
		}
	}
	if err := (SMTPConfig{Addr: "no-port"}).Validate(); err == nil {
		t.Error("an address without a port validated")
	}
}

func TestSMTPTransportPlainAuthToLocalhost(t *testing.T) {
	srv := startSMTPServer(t, smtpServerOptions{user: "mailer", pass: "s3cret", insecureAuth: true})
	tr := NewSMTPTransport(SMTPConfig{Addr: srv.Addr, Username: "mailer", Password: "s3cret", Timeout: 5 * time.Second})
	if err := tr.Send(context.Background(), "no-reply@example.fr", "agent@example.fr", testMessage); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if got := srv.Messages(); len(got) != 1 || got[0].AuthUser != "mailer" || got[0].TLS {
		t.Errorf("received %+v", got)
	}

	bad := NewSMTPTransport(SMTPConfig{Addr: srv.Addr, Username: "mailer", Password: "wrong", Timeout: 5 * time.Second})
	err := bad.Send(context.Background(), "no-reply@example.fr", "agent@example.fr", testMessage)
	var re *ReplyError
	if !errors.As(err, &re) || re.Command != "AUTH" || re.Code != 535 {
		t.Fatalf("Send with a wrong password = %v, want a 535 reply to AUTH", err)
	}
	// The relay refuses us, not this mail: the mail waits for the
	// configuration to be fixed.
	if IsPermanent(err) {
		t.Error("an authentication failure is classified permanent")
	}
}

func TestSMTPErrorClassification(t *testing.T) {
	generic := smtp.EnhancedCodeNotSet // the server sends the reply's class, .0.0
	for _, tc := range []struct {
		stage     string
		code      int
		enhanced  smtp.EnhancedCode // RFC 3463
		permanent bool
	}{
		{"session", 421, generic, false},
		{"session", 554, generic, false},
		{"mail", 421, generic, false},
		{"mail", 451, generic, false},
		{"rcpt", 450, generic, false},
		{"rcpt", 550, generic, true},
		{"rcpt", 553, generic, true},
		// The recipient: no retry brings an unknown mailbox back.
		{"rcpt", 550, smtp.EnhancedCode{5, 1, 1}, true},
		{"rcpt", 553, smtp.EnhancedCode{5, 1, 3}, true},
		{"rcpt", 550, smtp.EnhancedCode{5, 2, 1}, true},
		{"rcpt", 554, generic, false}, // "Relay access denied" without a status
		// Refusals of us that Postfix makes at RCPT (its checks of the
		// EHLO name and the sender run there): an operator fixes smtp.helo,
		// mail.from or the DNS, and the mail still goes.
		{"rcpt", 504, smtp.EnhancedCode{5, 5, 2}, false},
		{"rcpt", 550, smtp.EnhancedCode{5, 1, 8}, false},
		{"rcpt", 550, smtp.EnhancedCode{5, 1, 7}, false},
		{"rcpt", 550, smtp.EnhancedCode{5, 4, 4}, false},
		// Postfix's reject_unlisted_sender: 5.1.0 for our sender (found by
		// review), 5.1.1 for the recipient.
		{"rcpt", 550, smtp.EnhancedCode{5, 1, 0}, false},
		// DATA stays final but for the statuses about us: Exchange Online's
		// "5.0.350 Generic error" and undefined subjects too.
		{"data", 550, smtp.EnhancedCode{5, 0, 350}, true},
		{"data", 550, smtp.EnhancedCode{5, 9, 1}, true},
		{"data", 550, smtp.EnhancedCode{5, 5, 2}, false},
		{"data", 451, generic, false},
		{"data", 552, generic, true},
		{"data", 554, generic, true},
		// MAIL carries only our own sender address (mail.from): a 5xx to it
		// refuses every mail alike, a configuration an operator can fix.
		{"mail", 550, generic, false},
		{"mail", 553, smtp.EnhancedCode{5, 1, 8}, false},
		{"mail", 550, smtp.EnhancedCode{5, 7, 1}, false},
		// A policy refusal at RCPT (5.7.x): Postfix's "Sender address
		// rejected" and "Relay access denied" refuse us, not the recipient.
		{"rcpt", 553, smtp.EnhancedCode{5, 7, 1}, false},
		{"rcpt", 554, smtp.EnhancedCode{5, 7, 1}, false},
		{"rcpt", 550, smtp.EnhancedCode{5, 7, 26}, false},
		// And at DATA: a DMARC or SPF refusal of our domain (Gmail's
		// 5.7.26), or a filter's policy refusal of our template, is the
		// same for every mail until an operator fixes the sending setup.
		// A message refused for what it is (5.6.x) stays final.
		{"data", 550, smtp.EnhancedCode{5, 7, 26}, false},
		{"data", 554, smtp.EnhancedCode{5, 7, 1}, false},
		{"data", 554, smtp.EnhancedCode{5, 6, 0}, true},
		// RFC 4954's replies about our authentication or encryption, to
		// MAIL by relays that ask for them only there: the relay's
		// configuration, not this mail.
		{"mail", 530, generic, false},
		{"mail", 534, generic, false},
		{"mail", 535, generic, false},
		{"mail", 538, generic, false},
		{"rcpt", 530, generic, false},
	} {
		name := fmt.Sprintf("%s %d", tc.stage, tc.code)
		if tc.enhanced != generic {
			name += fmt.Sprintf(" %d.%d.%d", tc.enhanced[0], tc.enhanced[1], tc.enhanced[2])
		}
		srv := startSMTPServer(t, smtpServerOptions{})
		srv.setReject(func(stage string, _ int) error {
			if stage == tc.stage {
				return &smtp.SMTPError{Code: tc.code, EnhancedCode: tc.enhanced, Message: "scripted refusal"}
			}
			return nil
		})
		tr := NewSMTPTransport(SMTPConfig{Addr: srv.Addr, Timeout: 5 * time.Second})
		err := tr.Send(context.Background(), "no-reply@example.fr", "agent@example.fr", testMessage)
		var re *ReplyError
		if !errors.As(err, &re) || re.Code != tc.code || !strings.Contains(re.Message, "scripted refusal") {
			t.Errorf("%s: Send = %v, want that reply", name, err)
			continue
		}
		if got := IsPermanent(err); got != tc.permanent {
			t.Errorf("%s: IsPermanent(%v) = %v, want %v", name, err, got, tc.permanent)
		}
		if n := len(srv.Messages()); n != 0 {
			t.Errorf("%s: the message was accepted", name)
		}
	}
}

// The enhanced status code is read where servers put it: at the start of
// every line (RFC 2034), or of the last line only.
func TestSMTPPolicyStatusOfMultilineReplies(t *testing.T) {
	for _, tc := range []struct {
		message   string
		permanent bool
	}{
		{"5.7.1 <claire@mairie.fr>: Relay access denied", false},
		{"5.7.1 Relay access denied\n5.7.1 see https://relay.example.fr/policy", false},
		{"Relay access denied\n5.7.1 see https://relay.example.fr/policy", false},
		{"5.1.1 <claire@mairie.fr>: Recipient address rejected: User unknown", true},
		{"5.1.1 User unknown\n5.1.1 see https://relay.example.fr/bounces", true},
		// Without an enhanced code, RCPT's 550, 551 and 553 name the
		// recipient; 554 ("Relay access denied") is the relay refusing us.
		{"5.7 relay denied", false},    // not an enhanced code: no detail
		{"5.7.1x relay denied", false}, // nor this
		{"Relay access denied", false},
	} {
		err := &ReplyError{Command: "RCPT", Code: 554, Message: tc.message}
		if got := IsPermanent(err); got != tc.permanent {
			t.Errorf("IsPermanent(%v) = %v, want %v", err, got, tc.permanent)
		}
	}
}

func TestSMTPTransportConnectionRefusedIsTemporary(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	err = NewSMTPTransport(SMTPConfig{Addr: addr, Timeout: time.Second}).Send(context.Background(), "a@example.fr", "b@example.fr", testMessage)
	if err == nil || IsPermanent(err) {
		t.Fatalf("Send = %v, want a temporary error", err)
	}
}

// silentServer accepts connections and never says a word.
func silentServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

func TestSMTPTransportTimesOut(t *testing.T) {
	addr := silentServer(t)
	start := time.Now()
	err := NewSMTPTransport(SMTPConfig{Addr: addr, Timeout: 200 * time.Millisecond}).Send(context.Background(), "a@example.fr", "b@example.fr", testMessage)
	if err == nil || IsPermanent(err) {
		t.Fatalf("Send = %v, want a temporary error", err)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("Send = %v, want a timeout", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %v with a 200ms timeout", d)
	}
}

func TestSMTPTransportStopsOnCancel(t *testing.T) {
	addr := silentServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	err := NewSMTPTransport(SMTPConfig{Addr: addr, Timeout: 30 * time.Second}).Send(ctx, "a@example.fr", "b@example.fr", testMessage)
	if err == nil {
		t.Fatal("Send succeeded against a silent server")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %v after cancel", d)
	}
}
