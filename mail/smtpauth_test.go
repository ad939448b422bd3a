package mail

import (
	"context"
	"crypto/tls"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// A relay that offers AUTH LOGIN only, as Exchange and Office 365 do beside
// their own mechanisms: PLAIN was always sent, answered 504 5.7.4 (found by
// review), and every mail waited a day before failing.
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
	srv := startSMTPServer(t, smtpServerOptions{
		tls:  &tls.Config{Certificates: []tls.Certificate{cert}},
		user: "mailer", pass: "s3cret", loginOnly: true,
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
