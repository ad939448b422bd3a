package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/caf-extranet/idp/e2e/harness"
	"github.com/caf-extranet/idp/storage"
	"github.com/caf-extranet/idp/storage/sqlite"
)

// heldSMTP is an SMTP server that holds every message inside DATA until the
// test releases it: a mail "in flight" for as long as the test wants.
type heldSMTP struct {
	addr    string
	started chan string   // a recipient, when its DATA begins
	release chan struct{} // closed: the held messages are accepted

	mu       sync.Mutex
	accepted []string // recipients whose message was accepted
}

func startHeldSMTP(t *testing.T) *heldSMTP {
	t.Helper()
	h := &heldSMTP{started: make(chan string, 10), release: make(chan struct{})}
	s := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &heldSession{h: h}, nil }))
	s.Domain = "mx.test"
	s.ReadTimeout, s.WriteTimeout = 30*time.Second, 30*time.Second
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.addr = l.Addr().String()
	go func() { _ = s.Serve(l) }()
	t.Cleanup(func() { s.Close() })
	return h
}

func (h *heldSMTP) recipients() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.accepted...)
}

type heldSession struct {
	h  *heldSMTP
	to string
}

func (s *heldSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *heldSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = to
	return nil
}
func (s *heldSession) Data(r io.Reader) error {
	if _, err := io.ReadAll(r); err != nil {
		return err
	}
	s.h.started <- s.to
	<-s.h.release
	s.h.mu.Lock()
	s.h.accepted = append(s.h.accepted, s.to)
	s.h.mu.Unlock()
	return nil
}
func (s *heldSession) Reset()        {}
func (s *heldSession) Logout() error { return nil }

// TestSIGTERMDrains runs the real binary. With a login request whose body
// is still arriving and a provisional-password mail held inside the SMTP
// server's DATA, SIGTERM: the listener closes at once, the login completes
// (303), the held mail is delivered and recorded as sent, any other mail
// stays pending in the outbox untouched, and the process exits with status
// 0.
func TestSIGTERMDrains(t *testing.T) {
	mx := startHeldSMTP(t)
	env := harness.Env(t, "IDP_SMTP_ADDR="+mx.addr, "IDP_CAPTCHA_TEST_ANSWER="+journeyCaptcha,
		"IDP_RECOVERY_POLL_INTERVAL=100ms", "IDP_MAIL_POLL_INTERVAL=100ms")
	srv := harness.Start(t, env)
	const second = "second@partenaire.fr"
	harness.Admin(t, env, "user", "add", "--email", agentEmail, "--name", "Claire Dupont", "--password", agentPass)
	harness.Admin(t, env, "user", "add", "--email", second, "--name", "Second Agent", "--password", agentPass)

	// Two recovery requests; the first mail to reach DATA is held there.
	for _, who := range []string{agentEmail, second} {
		b := newBrowser(t, srv.URL)
		requestRecovery(t, b, b.get("/login"), who, journeyCaptcha).mustContain("Si cette adresse correspond à un compte")
	}
	var held string
	select {
	case held = <-mx.started:
	case <-time.After(15 * time.Second):
		t.Fatalf("no mail reached the SMTP server:\n%s", srv.Logs())
	}

	// A login POST whose headers and half of whose body have arrived.
	b := newBrowser(t, srv.URL)
	f := b.get("/login").form("Valider").set("Adresse e-mail", agentEmail).set("Mot de passe", agentPass)
	body := f.values.Encode()
	u, _ := url.Parse(srv.URL + "/login")
	var cookies []string
	for _, c := range b.client.Jar.Cookies(u) {
		cookies = append(cookies, c.Name+"="+c.Value)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /login HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded\r\n"+
		"Content-Length: %d\r\nCookie: %s\r\n\r\n%s", u.Host, len(body), strings.Join(cookies, "; "), body[:len(body)/2])
	time.Sleep(300 * time.Millisecond) // the server has read the headers: the request is in flight

	stopped := make(chan error, 1)
	go func() { stopped <- srv.Stop() }() // SIGTERM, then wait for the exit
	// New connections are refused at once...
	refused := false
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && !refused; time.Sleep(20 * time.Millisecond) {
		c, err := net.DialTimeout("tcp", u.Host, 200*time.Millisecond)
		if err != nil {
			refused = true
		} else {
			c.Close()
		}
	}
	if !refused {
		t.Fatal("the listener still accepts connections after SIGTERM")
	}
	select {
	case err := <-stopped:
		t.Fatalf("the process exited (%v) with a request in flight:\n%s", err, srv.Logs())
	default:
	}
	// ...while the request in flight completes.
	if _, err := io.WriteString(conn, body[len(body)/2:]); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("the in-flight login got no answer: %v\n%s", err, srv.Logs())
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("the in-flight login answered %d, want 303", resp.StatusCode)
	}

	// The mail in flight finishes; then the process exits cleanly.
	time.Sleep(200 * time.Millisecond)
	select {
	case err := <-stopped:
		t.Fatalf("the process exited (%v) with a mail in flight:\n%s", err, srv.Logs())
	default:
	}
	close(mx.release)
	if err := <-stopped; err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, srv.Logs())
	}
	if !strings.Contains(srv.Logs(), `"msg":"idp stopped"`) {
		t.Errorf("no clean-stop line in the logs:\n%s", srv.Logs())
	}

	// Nothing lost, nothing half-marked: the held mail is sent, and every
	// other mail either went out and is marked sent, or is pending and
	// untried.
	got := mx.recipients()
	if len(got) == 0 || got[0] != held {
		t.Fatalf("accepted by the SMTP server: %v, want %s first", got, held)
	}
	dbPath := ""
	for _, kv := range srv.Env {
		if v, ok := strings.CutPrefix(kv, "IDP_DATABASE_URL=sqlite:"); ok {
			dbPath = v
		}
	}
	store, err := sqlite.Open(context.Background(), dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	mails, err := store.ListMails(context.Background(), "", 100)
	if err != nil {
		t.Fatal(err)
	}
	delivered := map[string]bool{}
	for _, r := range got {
		delivered[r] = true
	}
	for _, m := range mails {
		switch {
		case m.Status == storage.MailSent && delivered[m.To]:
		case m.Status == storage.MailPending && !delivered[m.To] && m.Attempts == 0:
		default:
			t.Errorf("mail to %s: status %s after %d attempts, delivered %v", m.To, m.Status, m.Attempts, delivered[m.To])
		}
	}
	if len(mails) == 0 {
		t.Fatal("the outbox is empty")
	}
}
