package mail

import (
	"context"
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// A relay that offers AUTH LOGIN only, as Exchange and Office 365 do beside
// their own mechanisms: PLAIN was always sent, answered 504 5.7.4 (found by
// review), and every mail waited a day before failing.
func startLoginOnlySMTPServer(t *testing.T, opts smtpServerOptions) *smtpServer {
	t.Helper()
	srv := &smtpServer{user: opts.user, pass: opts.pass, conns: map[*smtp.Conn]int{}}
	s := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		srv.mu.Lock()
		srv.sessions++
		n := srv.sessions
		srv.mu.Unlock()
		_, isTLS := c.TLSConnectionState()
		return &loginOnlySession{&smtpSession{srv: srv, n: n, tls: isTLS, helo: c.Hostname()}}, nil
	}))
	s.Domain = "mx.test"
	s.TLSConfig = opts.tls
	s.ErrorLog = discardLogger{}
	s.ReadTimeout, s.WriteTimeout = 5*time.Second, 5*time.Second
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.Addr = l.Addr().String()
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Serve(l) }()
	t.Cleanup(func() { s.Close(); l.Close(); <-done })
	return srv
}

type loginOnlySession struct{ *smtpSession }

func (s *loginOnlySession) AuthMechanisms() []string { return []string{"LOGIN"} }

func (s *loginOnlySession) Auth(mech string) (sasl.Server, error) {
	if mech != "LOGIN" {
		return nil, smtp.ErrAuthUnknownMechanism // 504 5.7.4, as Exchange answers
	}
	return &loginServer{check: func(user, pass string) error {
		if user != s.srv.user || pass != s.srv.pass {
			return smtp.ErrAuthFailed
		}
		s.authUser = user
		return nil
	}}, nil
}

type loginServer struct {
	step  int
	user  string
	check func(user, pass string) error
}

func (l *loginServer) Next(resp []byte) ([]byte, bool, error) {
	switch l.step {
	case 0:
		l.step = 1
		if len(resp) > 0 {
			l.user, l.step = string(resp), 2
			return []byte("Password:"), false, nil
		}
		return []byte("Username:"), false, nil
	case 1:
		l.user, l.step = string(resp), 2
		return []byte("Password:"), false, nil
	default:
		return nil, true, l.check(l.user, string(resp))
	}
}

func TestSMTPAuthLoginOnlyRelay(t *testing.T) {
	cert, pool := selfSignedCert(t)
	srv := startLoginOnlySMTPServer(t, smtpServerOptions{
		tls:  &tls.Config{Certificates: []tls.Certificate{cert}},
		user: "mailer", pass: "s3cret",
	})
	tr := NewSMTPTransport(SMTPConfig{
		Addr: srv.Addr, Username: "mailer", Password: "s3cret", Helo: "idp.example.fr",
		StartTLS: true, Timeout: 5 * time.Second, TLSConfig: &tls.Config{RootCAs: pool},
	})
	if err := tr.Send(context.Background(), "no-reply@example.fr", "agent@example.fr", testMessage); err != nil {
		t.Fatalf("Send through a relay offering AUTH LOGIN only: %v (IsPermanent=%v)", err, IsPermanent(err))
	}
	if got := srv.Messages(); len(got) != 1 || got[0].AuthUser != "mailer" {
		t.Fatalf("received %+v", got)
	}
}
