package mail

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/caf-extranet/idp/storage"
	"github.com/caf-extranet/idp/storage/sqlite"
)

// fakeClock is the injected clock: tests move time by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{t: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// openStore opens a migrated SQLite store on path (a fresh temp file when
// path is "").
func openStore(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "idp.db")
	}
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return s
}

// mailByID reads one outbox row back.
func mailByID(t *testing.T, s *sqlite.Store, id string) storage.OutboxMail {
	t.Helper()
	all, err := s.ListMails(context.Background(), "", 0)
	if err != nil {
		t.Fatalf("ListMails: %v", err)
	}
	for _, m := range all {
		if m.ID == id {
			return m
		}
	}
	t.Fatalf("mail %s not in the outbox", id)
	return storage.OutboxMail{}
}

// received is one message as the test SMTP server got it.
type received struct {
	From, To string
	Data     []byte
	TLS      bool
	AuthUser string
	Helo     string
}

// smtpServer is a real SMTP server (emersion/go-smtp) on 127.0.0.1:0 whose
// replies a test can script.
type smtpServer struct {
	Addr string

	mu       sync.Mutex
	conns    map[*smtp.Conn]int // connection -> its number, from 1
	sessions int                // connections that said EHLO/HELO: one per delivery attempt
	messages []received
	// reject, when set, is asked at each stage ("session", "mail", "rcpt",
	// "data") of the n-th session and may return a reply error.
	reject func(stage string, session int) error
	// onData, when set, runs inside DATA before the message is accepted.
	onData func(session int)
	// user/pass: when set, PLAIN auth is offered and required.
	user, pass string
}

type smtpServerOptions struct {
	tls        *tls.Config
	user, pass string
	// insecureAuth allows AUTH without TLS (the client may then only
	// authenticate because the server is on localhost).
	insecureAuth bool
	// loginOnly offers AUTH LOGIN only, as Exchange and Office 365 do
	// beside their own mechanisms.
	loginOnly bool
}

func startSMTPServer(t *testing.T, opts smtpServerOptions) *smtpServer {
	t.Helper()
	srv := &smtpServer{user: opts.user, pass: opts.pass, conns: map[*smtp.Conn]int{}}
	s := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		// A refused EHLO makes the client try HELO on the same connection:
		// count connections, not greetings.
		srv.mu.Lock()
		n, seen := srv.conns[c]
		if !seen {
			srv.sessions++
			n = srv.sessions
			srv.conns[c] = n
		}
		srv.mu.Unlock()
		if err := srv.rejectAt("session", n); err != nil {
			return nil, err
		}
		_, isTLS := c.TLSConnectionState()
		session := &smtpSession{srv: srv, n: n, tls: isTLS, helo: c.Hostname()}
		if opts.loginOnly {
			return &loginOnlySession{session}, nil
		}
		return session, nil
	}))
	s.Domain = "mx.test"
	s.TLSConfig = opts.tls
	s.AllowInsecureAuth = opts.insecureAuth
	s.ErrorLog = discardLogger{}
	s.ReadTimeout = 5 * time.Second
	s.WriteTimeout = 5 * time.Second
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.Addr = l.Addr().String()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Serve(l)
	}()
	t.Cleanup(func() {
		s.Close()
		// Server.Close only closes the listeners Serve has registered: if
		// the Serve goroutine has not run yet, closing l ourselves is what
		// makes it return instead of accepting forever.
		l.Close()
		<-done
	})
	return srv
}

func (s *smtpServer) rejectAt(stage string, n int) error {
	s.mu.Lock()
	reject := s.reject
	s.mu.Unlock()
	if reject == nil {
		return nil
	}
	return reject(stage, n)
}

func (s *smtpServer) setReject(f func(stage string, session int) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reject = f
}

func (s *smtpServer) setOnData(f func(session int)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onData = f
}

func (s *smtpServer) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions
}

func (s *smtpServer) Messages() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.messages...)
}

type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}
func (discardLogger) Println(...any)        {}

type smtpSession struct {
	srv      *smtpServer
	n        int
	tls      bool
	helo     string
	authUser string
	from, to string
}

func (s *smtpSession) AuthMechanisms() []string {
	if s.srv.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *smtpSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		if user != s.srv.user || pass != s.srv.pass {
			return smtp.ErrAuthFailed
		}
		s.authUser = user
		return nil
	}), nil
}

func (s *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if s.srv.user != "" && s.authUser == "" {
		return smtp.ErrAuthRequired
	}
	if err := s.srv.rejectAt("mail", s.n); err != nil {
		return err
	}
	s.from = from
	return nil
}

func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if err := s.srv.rejectAt("rcpt", s.n); err != nil {
		return err
	}
	s.to = to
	return nil
}

func (s *smtpSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.srv.mu.Lock()
	onData := s.srv.onData
	s.srv.mu.Unlock()
	if onData != nil {
		onData(s.n)
	}
	if err := s.srv.rejectAt("data", s.n); err != nil {
		return err
	}
	s.srv.mu.Lock()
	defer s.srv.mu.Unlock()
	s.srv.messages = append(s.srv.messages, received{From: s.from, To: s.to, Data: data, TLS: s.tls, AuthUser: s.authUser, Helo: s.helo})
	return nil
}

func (s *smtpSession) Reset()        {}
func (s *smtpSession) Logout() error { return nil }

func smtpReply(code int, msg string) error {
	return &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode{code / 100, 0, 0}, Message: msg}
}

// selfSignedCert returns a server certificate for 127.0.0.1 and a pool that
// trusts it.
func selfSignedCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "mx.test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}, pool
}

// parsedMail is a received message taken apart the way a mail client would.
type parsedMail struct {
	Header    mail.Header
	From, To  *mail.Address
	Subject   string
	Text      string
	HTML      string
	TextType  string
	HTMLType  string
	PartCount int
}

func parseMessage(t *testing.T, raw []byte) parsedMail {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("ReadMessage: %v", err)
	}
	var p parsedMail
	p.Header = m.Header
	if p.From, err = mail.ParseAddress(m.Header.Get("From")); err != nil {
		t.Fatalf("From: %v", err)
	}
	if p.To, err = mail.ParseAddress(m.Header.Get("To")); err != nil {
		t.Fatalf("To: %v", err)
	}
	var dec mime.WordDecoder
	if p.Subject, err = dec.DecodeHeader(m.Header.Get("Subject")); err != nil {
		t.Fatalf("Subject: %v", err)
	}
	mediaType, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil {
		t.Fatalf("Content-Type: %v", err)
	}
	if mediaType != "multipart/alternative" {
		t.Fatalf("Content-Type = %q, want multipart/alternative", mediaType)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		// NextRawPart: NextPart would decode quoted-printable itself and
		// hide the header this test wants to check.
		part, err := mr.NextRawPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("NextRawPart: %v", err)
		}
		p.PartCount++
		if cte := part.Header.Get("Content-Transfer-Encoding"); cte != "quoted-printable" {
			t.Fatalf("part Content-Transfer-Encoding = %q", cte)
		}
		raw, err := io.ReadAll(part)
		if err != nil {
			t.Fatalf("reading part: %v", err)
		}
		body := decodeQP(t, string(raw))
		ct := part.Header.Get("Content-Type")
		switch {
		case strings.HasPrefix(ct, "text/plain"):
			p.Text, p.TextType = string(body), ct
		case strings.HasPrefix(ct, "text/html"):
			p.HTML, p.HTMLType = string(body), ct
		default:
			t.Fatalf("unexpected part %q", ct)
		}
	}
	return p
}

// decodeQP decodes a quoted-printable body, failing on bad encoding.
func decodeQP(t *testing.T, s string) string {
	t.Helper()
	b, err := io.ReadAll(quotedprintable.NewReader(strings.NewReader(s)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// logBuffer collects a logger's output for tests that check what is logged.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func newTestLogger() (*slog.Logger, *logBuffer) {
	b := &logBuffer{}
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}
