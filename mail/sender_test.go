package mail

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/caf-extranet/idp/storage"
	"github.com/caf-extranet/idp/storage/sqlite"
)

const testFrom = "Portail Extranet <no-reply@example.fr>"

var t0 = time.Date(2026, 11, 26, 13, 0, 0, 0, time.UTC)

// senderFixture is a real SQLite outbox, a real SMTP server and a sender
// between them, on an injected clock.
type senderFixture struct {
	store  *sqlite.Store
	server *smtpServer
	clock  *fakeClock
	sender *Sender
	logs   *logBuffer
}

func newSenderFixture(t *testing.T, cfg SenderConfig) *senderFixture {
	t.Helper()
	f := &senderFixture{
		store:  openStore(t, ""),
		server: startSMTPServer(t, smtpServerOptions{}),
		clock:  newFakeClock(t0),
	}
	logger, logs := newTestLogger()
	f.logs = logs
	cfg.From = testFrom
	cfg.Now = f.clock.Now
	cfg.Logger = logger
	f.sender = NewSender(f.store, NewSMTPTransport(SMTPConfig{Addr: f.server.Addr, Timeout: 5 * time.Second}), cfg)
	return f
}

func (f *senderFixture) enqueue(t *testing.T, m storage.OutboxMail) storage.OutboxMail {
	t.Helper()
	if err := f.store.EnqueueMail(context.Background(), m); err != nil {
		t.Fatalf("EnqueueMail: %v", err)
	}
	return m
}

func (f *senderFixture) runOnce(t *testing.T) int {
	t.Helper()
	n, err := f.sender.RunOnce(context.Background())
	if err != nil {
		t.Fatalf("RunOnce: %v", err)
	}
	return n
}

func TestSenderDeliversProvisionalPasswordMail(t *testing.T) {
	f := newSenderFixture(t, SenderConfig{})
	const password = "Kp7-vQ2m-Xz9r"
	m := f.enqueue(t, ProvisionalPassword(testPortal, "agent@example.fr", "Marie Dupont", password, t0.Add(time.Hour), t0))
	f.clock.Advance(2 * time.Second)

	if n := f.runOnce(t); n != 1 {
		t.Fatalf("RunOnce sent %d", n)
	}
	got := f.server.Messages()
	if len(got) != 1 {
		t.Fatalf("%d messages received", len(got))
	}
	if got[0].From != "no-reply@example.fr" || got[0].To != "agent@example.fr" {
		t.Errorf("envelope %q -> %q", got[0].From, got[0].To)
	}
	p := parseMessage(t, got[0].Data)
	if p.From.Address != "no-reply@example.fr" || p.From.Name != "Portail Extranet" || p.To.Address != "agent@example.fr" {
		t.Errorf("From %v, To %v", p.From, p.To)
	}
	if p.Subject != "Votre mot de passe" {
		t.Errorf("Subject = %q", p.Subject)
	}
	if p.PartCount != 2 || p.Text == "" || p.HTML == "" {
		t.Fatalf("parts: %d", p.PartCount)
	}
	text := strings.ReplaceAll(p.Text, "\r\n", "\n")
	if !hasLine(text, password) {
		t.Errorf("the password is not on a line of its own:\n%s", text)
	}
	for _, body := range []string{text, p.HTML} {
		if !strings.Contains(body, "https://extranet.example.fr/") || !strings.Contains(body, password) {
			t.Errorf("a part lacks the portal address or the password:\n%s", body)
		}
	}
	if id := p.Header.Get("Message-ID"); id != "<"+m.ID+"@example.fr>" {
		t.Errorf("Message-ID = %q", id)
	}
	if d, err := p.Header.Date(); err != nil || !d.Equal(t0.Add(2*time.Second)) {
		t.Errorf("Date = %v, %v (want the injected clock)", d, err)
	}

	row := mailByID(t, f.store, m.ID)
	if row.Status != storage.MailSent || row.SentAt == nil || !row.SentAt.Equal(t0.Add(2*time.Second)) {
		t.Errorf("row = %+v, want sent at the clock's time", row)
	}
	if row.TextBody != "" || row.HTMLBody != "" {
		t.Error("the bodies stayed in the outbox")
	}
	if n := f.runOnce(t); n != 0 || len(f.server.Messages()) != 1 {
		t.Errorf("a second pass sent it again")
	}
	logs := f.logs.String()
	if !strings.Contains(logs, "mail sent") {
		t.Errorf("no log of the delivery:\n%s", logs)
	}
	if strings.Contains(logs, password) {
		t.Errorf("the password was logged:\n%s", logs)
	}
}

func TestSenderRetriesTemporaryFailures(t *testing.T) {
	f := newSenderFixture(t, SenderConfig{})
	f.server.setReject(func(stage string, session int) error {
		switch {
		case session == 1 && stage == "mail":
			return smtpReply(421, "try again later")
		case session == 2 && stage == "data":
			return smtpReply(451, "greylisted")
		}
		return nil
	})
	m := f.enqueue(t, PasswordChanged(testPortal, "agent@example.fr", "", t0, t0))

	if n := f.runOnce(t); n != 0 {
		t.Fatalf("sent %d on a 421", n)
	}
	row := mailByID(t, f.store, m.ID)
	if row.Status != storage.MailPending || row.Attempts != 1 || !row.NextAttemptAt.Equal(t0.Add(30*time.Second)) || !strings.Contains(row.LastError, "421") {
		t.Fatalf("after a 421: %+v, want pending, 1 attempt, next in 30s", row)
	}

	// Not due yet: the server hears nothing.
	f.clock.Advance(29 * time.Second)
	if n := f.runOnce(t); n != 0 || f.server.Sessions() != 1 {
		t.Fatalf("retried before its time (sessions %d)", f.server.Sessions())
	}

	f.clock.Advance(time.Second)
	if n := f.runOnce(t); n != 0 {
		t.Fatalf("sent %d on a 451", n)
	}
	row = mailByID(t, f.store, m.ID)
	if row.Attempts != 2 || !row.NextAttemptAt.Equal(t0.Add(90*time.Second)) || !strings.Contains(row.LastError, "451") {
		t.Fatalf("after a 451: %+v, want 2 attempts, next a minute later", row)
	}

	f.clock.Advance(time.Minute)
	if n := f.runOnce(t); n != 1 {
		t.Fatalf("third attempt sent %d", n)
	}
	row = mailByID(t, f.store, m.ID)
	if row.Status != storage.MailSent || row.Attempts != 2 || !row.SentAt.Equal(t0.Add(90*time.Second)) {
		t.Errorf("after delivery: %+v", row)
	}
	if f.server.Sessions() != 3 || len(f.server.Messages()) != 1 {
		t.Errorf("sessions %d, messages %d; want 3 attempts, 1 message", f.server.Sessions(), len(f.server.Messages()))
	}
}

func TestSenderPermanentFailureIsNotRetried(t *testing.T) {
	f := newSenderFixture(t, SenderConfig{})
	f.server.setReject(func(stage string, _ int) error {
		if stage == "rcpt" {
			return smtpReply(550, "no such user")
		}
		return nil
	})
	m := f.enqueue(t, PasswordChanged(testPortal, "ghost@example.fr", "", t0, t0))
	f.runOnce(t)
	row := mailByID(t, f.store, m.ID)
	if row.Status != storage.MailFailed || row.Attempts != 1 || !strings.Contains(row.LastError, "550") {
		t.Fatalf("after a 550: %+v, want failed after 1 attempt", row)
	}
	f.clock.Advance(time.Hour)
	f.runOnce(t)
	if s := f.server.Sessions(); s != 1 {
		t.Errorf("%d sessions: a refused mail was retried", s)
	}
}

func TestSenderGivesUp(t *testing.T) {
	f := newSenderFixture(t, SenderConfig{GiveUpAfter: 5 * time.Minute})
	f.server.setReject(func(stage string, _ int) error {
		if stage == "rcpt" {
			return smtpReply(451, "mailbox busy")
		}
		return nil
	})
	m := f.enqueue(t, PasswordChanged(testPortal, "agent@example.fr", "", t0, t0))
	// Attempts at 0, 30 s, 1 min 30, 3 min 30 (all before the 5 minutes are
	// up) and 7 min 30, after which the sender gives up.
	for range 40 {
		f.runOnce(t)
		if mailByID(t, f.store, m.ID).Status != storage.MailPending {
			break
		}
		f.clock.Advance(30 * time.Second)
	}
	row := mailByID(t, f.store, m.ID)
	if row.Status != storage.MailFailed || row.Attempts != 5 || !strings.HasPrefix(row.LastError, "gave up") || !strings.Contains(row.LastError, "451") {
		t.Fatalf("row = %+v, want failed after 5 attempts", row)
	}
	if !f.clock.Now().Equal(t0.Add(7*time.Minute + 30*time.Second)) {
		t.Errorf("gave up at %v", f.clock.Now().Sub(t0))
	}
	f.clock.Advance(time.Hour)
	f.runOnce(t)
	if s := f.server.Sessions(); s != 5 {
		t.Errorf("%d sessions, want 5", s)
	}
}

func TestSenderFailsAnUndeliverableAddressWithoutTheServer(t *testing.T) {
	f := newSenderFixture(t, SenderConfig{})
	m := f.enqueue(t, PasswordChanged(testPortal, "agent@example.fr\r\nBcc: victim@example.org", "", t0, t0))
	f.runOnce(t)
	row := mailByID(t, f.store, m.ID)
	if row.Status != storage.MailFailed || row.Attempts != 1 {
		t.Errorf("row = %+v, want failed", row)
	}
	if s := f.server.Sessions(); s != 0 {
		t.Errorf("the server was contacted %d times", s)
	}
}

func TestSenderWithBadFromLeavesTheOutboxAlone(t *testing.T) {
	store := openStore(t, "")
	srv := startSMTPServer(t, smtpServerOptions{})
	clock := newFakeClock(t0)
	s := NewSender(store, NewSMTPTransport(SMTPConfig{Addr: srv.Addr}), SenderConfig{From: "not an address", Now: clock.Now})
	m := PasswordChanged(testPortal, "agent@example.fr", "", t0, t0)
	if err := store.EnqueueMail(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RunOnce(context.Background()); err == nil {
		t.Fatal("RunOnce with an invalid From succeeded")
	}
	row := mailByID(t, store, m.ID)
	if row.Status != storage.MailPending || row.Attempts != 0 || !row.NextAttemptAt.Equal(t0) {
		t.Errorf("row = %+v: the mail paid for a configuration error", row)
	}
}

func TestSenderStopsBatchBeforeLeaseEnds(t *testing.T) {
	f := newSenderFixture(t, SenderConfig{Lease: 2 * time.Minute})
	// Each delivery takes (on the clock) a little over half the lease.
	f.server.setOnData(func(int) { f.clock.Advance(61 * time.Second) })
	for range 3 {
		f.enqueue(t, PasswordChanged(testPortal, "agent@example.fr", "", t0, t0))
	}
	if n := f.runOnce(t); n != 1 {
		t.Fatalf("sent %d, want the batch cut after the first mail", n)
	}
	pending, err := f.store.ListMails(context.Background(), storage.MailPending, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 2 {
		t.Fatalf("%d pending", len(pending))
	}
	for _, m := range pending {
		if m.Attempts != 0 {
			t.Errorf("an unsent mail was counted an attempt: %+v", m)
		}
	}
	// Still leased: nothing to do until the lease ends.
	if n := f.runOnce(t); n != 0 {
		t.Fatalf("sent %d during the lease", n)
	}
	f.clock.Advance(time.Minute)
	if n := f.runOnce(t); n != 1 {
		t.Fatalf("sent %d after the lease", n)
	}
}

func TestTwoSendersDeliverEachMailExactlyOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shared.db")
	storeA := openStore(t, path)
	storeB := openStore(t, path) // a second instance on the same file
	srv := startSMTPServer(t, smtpServerOptions{})
	clock := newFakeClock(t0)

	want := map[string]bool{}
	for i := range 50 {
		m := PasswordChanged(testPortal, fmt.Sprintf("agent%d@example.fr", i), "", t0, t0)
		if err := storeA.EnqueueMail(context.Background(), m); err != nil {
			t.Fatal(err)
		}
		want[m.ID] = true
	}

	var sentTotal atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, st := range []*sqlite.Store{storeA, storeB} {
		s := NewSender(st, NewSMTPTransport(SMTPConfig{Addr: srv.Addr, Timeout: 5 * time.Second}),
			SenderConfig{From: testFrom, Now: clock.Now, BatchSize: 5})
		wg.Add(1)
		go func() {
			defer wg.Done()
			deadline := time.Now().Add(30 * time.Second)
			for sentTotal.Load() < 50 && time.Now().Before(deadline) {
				n, err := s.RunOnce(context.Background())
				if err != nil {
					errs <- err
					return
				}
				sentTotal.Add(int64(n))
				if n == 0 {
					time.Sleep(time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("RunOnce: %v", err)
	}

	got := srv.Messages()
	if len(got) != 50 || sentTotal.Load() != 50 {
		t.Fatalf("%d messages received, %d reported sent; want 50", len(got), sentTotal.Load())
	}
	idPattern := regexp.MustCompile(`^<([0-9a-f]{32})@example\.fr>$`)
	seen := map[string]bool{}
	for _, r := range got {
		p := parseMessage(t, r.Data)
		sub := idPattern.FindStringSubmatch(p.Header.Get("Message-ID"))
		if sub == nil || !want[sub[1]] {
			t.Fatalf("unexpected Message-ID %q", p.Header.Get("Message-ID"))
		}
		if seen[sub[1]] {
			t.Fatalf("mail %s delivered twice", sub[1])
		}
		seen[sub[1]] = true
	}
	sent, err := storeB.ListMails(context.Background(), storage.MailSent, 0)
	if err != nil || len(sent) != 50 {
		t.Fatalf("%d mails recorded sent (%v)", len(sent), err)
	}
}

// claimCounter observes the real store's claims.
type claimCounter struct {
	*sqlite.Store
	claims atomic.Int64
}

func (c *claimCounter) ClaimMails(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]storage.OutboxMail, error) {
	defer c.claims.Add(1)
	return c.Store.ClaimMails(ctx, now, lease, limit)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestRunFinishesInFlightMessageOnCancel(t *testing.T) {
	f := newSenderFixture(t, SenderConfig{PollInterval: time.Hour})
	entered := make(chan struct{}, 10)
	release := make(chan struct{})
	var releaseOnce sync.Once
	releaseAll := func() { releaseOnce.Do(func() { close(release) }) }
	// Registered after the server's cleanup, so it runs first: a failing
	// test never leaves a handler blocked.
	t.Cleanup(releaseAll)
	f.server.setOnData(func(int) {
		entered <- struct{}{}
		<-release
	})
	var ids []string
	for range 3 {
		ids = append(ids, f.enqueue(t, PasswordChanged(testPortal, "agent@example.fr", "", t0, t0)).ID)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.sender.Run(ctx) }()

	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery started")
	}
	cancel()
	select {
	case <-done:
		t.Fatal("Run returned with a message in flight")
	case <-time.After(50 * time.Millisecond):
	}
	releaseAll()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}

	if n := len(f.server.Messages()); n != 1 {
		t.Fatalf("%d messages delivered, want only the one in flight", n)
	}
	sent := 0
	for _, id := range ids {
		row := mailByID(t, f.store, id)
		switch row.Status {
		case storage.MailSent:
			sent++
		case storage.MailPending:
			if row.Attempts != 0 {
				t.Errorf("mail %s never tried but counted an attempt", id)
			}
		default:
			t.Errorf("mail %s is %s", id, row.Status)
		}
	}
	if sent != 1 {
		t.Errorf("%d mails recorded sent, want the in-flight one", sent)
	}
}

func TestWakeTriggersAPass(t *testing.T) {
	store := openStore(t, "")
	observed := &claimCounter{Store: store}
	srv := startSMTPServer(t, smtpServerOptions{})
	clock := newFakeClock(t0)
	s := NewSender(observed, NewSMTPTransport(SMTPConfig{Addr: srv.Addr, Timeout: 5 * time.Second}),
		SenderConfig{From: testFrom, Now: clock.Now, PollInterval: time.Hour})

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()

	// Run's first pass found nothing; the next is an hour away.
	waitFor(t, "the first pass", func() bool { return observed.claims.Load() >= 1 })
	if err := store.EnqueueMail(context.Background(), PasswordChanged(testPortal, "agent@example.fr", "", t0, t0)); err != nil {
		t.Fatal(err)
	}
	s.Wake()
	s.Wake() // never blocks, even when a wake is already pending
	waitFor(t, "the woken delivery", func() bool { return len(srv.Messages()) == 1 })
}

func TestRunDrainsFullBatchesWithoutWaiting(t *testing.T) {
	f := newSenderFixture(t, SenderConfig{PollInterval: time.Hour, BatchSize: 2})
	for range 5 {
		f.enqueue(t, PasswordChanged(testPortal, "agent@example.fr", "", t0, t0))
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.sender.Run(ctx) }()
	waitFor(t, "all five mails", func() bool { return len(f.server.Messages()) == 5 })
	cancel()
	<-done
}

func TestFileTransport(t *testing.T) {
	store := openStore(t, "")
	clock := newFakeClock(t0)
	dir := filepath.Join(t.TempDir(), "outbox")
	logger, logs := newTestLogger()
	s := NewSender(store, NewFileTransport(dir, logger), SenderConfig{From: testFrom, Now: clock.Now, Logger: logger})
	const password = "Kp7-vQ2m-Xz9r"
	m := ProvisionalPassword(testPortal, "agent@example.fr", "Marie", password, t0.Add(time.Hour), t0)
	if err := store.EnqueueMail(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if n, err := s.RunOnce(context.Background()); n != 1 || err != nil {
		t.Fatalf("RunOnce = %d, %v", n, err)
	}

	dirInfo, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := dirInfo.Mode().Perm(); perm != 0o700 {
		t.Errorf("folder mode %o, want 700", perm)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Fatalf("%d files in the folder", len(entries))
	}
	name := entries[0].Name()
	if want := "20261126T130000Z-" + m.ID + ".eml"; name != want {
		t.Errorf("file name %q, want %q", name, want)
	}
	path := filepath.Join(dir, name)
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("file mode %o, want 600", perm)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p := parseMessage(t, raw)
	if p.Subject != "Votre mot de passe" || p.To.Address != "agent@example.fr" {
		t.Errorf("Subject %q, To %v", p.Subject, p.To)
	}
	if !hasLine(strings.ReplaceAll(p.Text, "\r\n", "\n"), password) {
		t.Error("the password is not on a line of its own in the file")
	}

	out := logs.String()
	for _, want := range []string{`msg="mail written"`, "to=agent@example.fr", `subject="Votre mot de passe"`, "path=" + path} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, password) {
		t.Errorf("the password was logged:\n%s", out)
	}
	if row := mailByID(t, store, m.ID); row.Status != storage.MailSent {
		t.Errorf("row status %s", row.Status)
	}
}

func TestFileTransportNamesForeignMessagesSafely(t *testing.T) {
	dir := t.TempDir()
	logger, _ := newTestLogger()
	msg := []byte("Message-ID: <../../etc/passwd@x>\r\nSubject: hi\r\n\r\nbody\r\n")
	if err := NewFileTransport(dir, logger).Send(context.Background(), "a@example.fr", "b@example.fr", msg); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 {
		t.Fatalf("entries %v, %v", entries, err)
	}
	if name := entries[0].Name(); name != "undated-etcpasswd.eml" {
		t.Errorf("file name %q", name)
	}
}

func TestRetryDelay(t *testing.T) {
	for n, want := range map[int]time.Duration{
		1: 30 * time.Second, 2: time.Minute, 3: 2 * time.Minute, 4: 4 * time.Minute,
		5: 8 * time.Minute, 6: 15 * time.Minute, 7: 15 * time.Minute, 1000: 15 * time.Minute,
	} {
		if got := RetryDelay(n); got != want {
			t.Errorf("RetryDelay(%d) = %v, want %v", n, got, want)
		}
	}
}

// TestSenderRetriesRefusalsOfUsAtRCPT: Postfix checks our EHLO name and our
// sender at RCPT; those refusals are about us, the same for every mail, and
// once an operator fixes smtp.helo, mail.from or the DNS the mail goes. They
// failed the « Votre mot de passe » mail for good (found by review).
func TestSenderRetriesRefusalsOfUsAtRCPT(t *testing.T) {
	for _, tc := range []struct {
		name     string
		code     int
		enhanced smtp.EnhancedCode
		text     string
	}{
		{"reject_non_fqdn_helo_hostname", 504, smtp.EnhancedCode{5, 5, 2}, "<localhost>: Helo command rejected: need fully-qualified hostname"},
		{"reject_non_fqdn_sender", 504, smtp.EnhancedCode{5, 5, 2}, "<no-reply@localhost>: Sender address rejected: need fully-qualified address"},
		{"reject_unknown_sender_domain", 550, smtp.EnhancedCode{5, 1, 8}, "<no-reply@extranet.caf.fr>: Sender address rejected: Domain not found"},
		{"reject_unverified_sender", 550, smtp.EnhancedCode{5, 1, 7}, "<no-reply@extranet.caf.fr>: Sender address rejected: undeliverable address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newSenderFixture(t, SenderConfig{})
			f.server.setReject(func(stage string, _ int) error {
				if stage == "rcpt" {
					return &smtp.SMTPError{Code: tc.code, EnhancedCode: tc.enhanced, Message: tc.text}
				}
				return nil
			})
			m := f.enqueue(t, ProvisionalPassword(testPortal, "agent@example.fr", "Marie Dupont", "Kp7vQ2mXz9r", t0.Add(24*time.Hour), t0))
			f.runOnce(t)
			row := mailByID(t, f.store, m.ID)
			if row.Status != storage.MailPending {
				t.Errorf("after %d %d.%d.%d %q to RCPT: mail %s (last error %q), want it pending for a retry",
					tc.code, tc.enhanced[0], tc.enhanced[1], tc.enhanced[2], tc.text, row.Status, row.LastError)
			}
			// The operator fixes smtp.helo / mail.from / DNS: the mail
			// should now go.
			f.server.setReject(nil)
			f.clock.Advance(time.Hour)
			f.runOnce(t)
			if n := len(f.server.Messages()); n != 1 {
				t.Errorf("once the relay accepts us, %d messages delivered: the agent never gets the provisional password", n)
			}
		})
	}
}

// issueProvisional is what account.Service.issueProvisional does: replace
// the agent's provisional password and queue its mail, in one transaction.

// The relay is down when the agent asks again: the first mail, deferred,
// carried the password the second request replaced, and came after the
// second (found by review); an account disabled before delivery got its
// password all the same. Both are given up in the store's transaction that
// makes them stale (conformance: PendingMailOfAnOlderPasswordEnds).
func issueProvisional(t *testing.T, f *senderFixture, u storage.User, password string) storage.OutboxMail {
	t.Helper()
	return issueProvisionalIn(t, f.store, f.clock, u, password)
}

// createAgent stores the agent the provisional-password tests mail.
func createAgent(t *testing.T, store *sqlite.Store) storage.User {
	t.Helper()
	u := storage.User{ID: storage.NewID(), Email: "agent@example.fr", Name: "Marie Dupont", CreatedAt: t0, UpdatedAt: t0}
	if err := store.CreateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	return u
}

// issueProvisionalIn issues u a provisional password now, with its mail, as
// the recovery worker does.
func issueProvisionalIn(t *testing.T, store *sqlite.Store, clock *fakeClock, u storage.User, password string) storage.OutboxMail {
	t.Helper()
	now := clock.Now()
	expires := now.Add(24 * time.Hour)
	m := ProvisionalPassword(testPortal, u.Email, u.Name, password, expires, now)
	err := store.IssueProvisionalPassword(context.Background(), storage.ProvisionalIssue{
		Password: storage.ProvisionalPassword{UserID: u.ID, Hash: "hash-of-" + password, CreatedAt: now, ExpiresAt: expires},
		Mail:     m,
	})
	if err != nil {
		t.Fatalf("IssueProvisionalPassword: %v", err)
	}
	return m
}

func textOf(t *testing.T, r received) string {
	t.Helper()
	return strings.ReplaceAll(parseMessage(t, r.Data).Text, "\r\n", "\n")
}

// agentBehindADownRelay is an agent, and a relay that answers 421 until
// *down is set false.
func agentBehindADownRelay(t *testing.T) (*senderFixture, storage.User, *bool) {
	t.Helper()
	f := newSenderFixture(t, SenderConfig{})
	u := createAgent(t, f.store)
	down := true
	f.server.setReject(func(stage string, _ int) error {
		if down && stage == "session" {
			return smtpReply(421, "relay busy, try again later")
		}
		return nil
	})
	return f, u, &down
}

func TestSenderNeverMailsAReplacedProvisionalPassword(t *testing.T) {
	f, u, down := agentBehindADownRelay(t)
	issueProvisional(t, f, u, "mdpA2x7kQpRt") // 13:00 request
	f.runOnce(t)                              // deferred: next attempt 13:00:30
	f.clock.Advance(20 * time.Second)
	issueProvisional(t, f, u, "mdpB9w4mNzHs") // 13:00:20 the agent asks again: A's password is replaced
	*down = false                             // the relay is back
	f.runOnce(t)                              // 13:00:20: B is due, A is not yet
	f.clock.Advance(15 * time.Second)
	f.runOnce(t) // 13:00:35: A's retry

	got := f.server.Messages()
	var order []string
	for _, r := range got {
		text := textOf(t, r)
		switch {
		case strings.Contains(text, "mdpA2x7kQpRt"):
			order = append(order, "A (replaced password)")
		case strings.Contains(text, "mdpB9w4mNzHs"):
			order = append(order, "B (current password)")
		}
	}
	if len(order) != 1 || order[0] != "B (current password)" {
		t.Errorf("mails received by the agent, in order: %v; want the current password's only", order)
	}
}

func TestSenderNeverMailsAProvisionalPasswordToADisabledAccount(t *testing.T) {
	ctx := context.Background()
	f, u, down := agentBehindADownRelay(t)
	issueProvisional(t, f, u, "mdpA2x7kQpRt")
	f.runOnce(t) // deferred
	if err := f.store.SetUserDisabled(ctx, u.ID, true, f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	*down = false
	f.clock.Advance(time.Minute)
	f.runOnce(t)
	if n := len(f.server.Messages()); n != 0 {
		t.Errorf("%d provisional-password mail(s) delivered to an account disabled before delivery", n)
	}
}

// TestSenderHoldsItsClaimPastTheLongestSends: a sender starts no send after
// the first half of its lease, and each send is bounded by smtp.timeout,
// under a minute: with a lease of two minutes, no send outlives the hold
// and another instance never takes the same mail again. The admin commands'
// sender held its claim for one minute: a second mail started at 29 s and
// sent for 59 s was taken again by idp serve (found by review).
type slowTransport struct {
	clock  *fakeClock
	took   func(n int) time.Duration
	during func(n int)
	n      int
	inner  Transport
}

func (s *slowTransport) Send(ctx context.Context, from, to string, msg []byte) error {
	s.n++
	n := s.n
	s.clock.Advance(s.took(n))
	if s.during != nil {
		s.during(n)
	}
	return s.inner.Send(ctx, from, to, msg)
}

func TestSenderHoldsItsClaimPastTheLongestSends(t *testing.T) {
	store := openStore(t, "")
	srv := startSMTPServer(t, smtpServerOptions{})
	clock := newFakeClock(t0)
	smtpT := NewSMTPTransport(SMTPConfig{Addr: srv.Addr, Timeout: 5 * time.Second})
	serve := NewSender(store, smtpT, SenderConfig{From: testFrom, Lease: 2 * time.Minute, BatchSize: 20, Now: clock.Now})
	slow := &slowTransport{clock: clock, inner: smtpT,
		took: func(n int) time.Duration {
			if n == 1 {
				return 29 * time.Second // first mail: a slow but in-time relay
			}
			return 59 * time.Second // second: smtp.timeout = 59s, allowed
		},
	}
	slow.during = func(n int) {
		if n == 2 {
			// 88 s after deliverNow's claim: an idp serve instance polls.
			if _, err := serve.RunOnce(context.Background()); err != nil {
				t.Errorf("serve RunOnce: %v", err)
			}
		}
	}
	// deliverNow's sender (cmd/idp/admin.go): Lease time.Minute, BatchSize 10.
	// The admin commands' sender, with cmd/idp's lease: twice the longest
	// smtp.timeout config allows (it held its claim for 1 minute).
	now := NewSender(store, slow, SenderConfig{From: testFrom, PollInterval: time.Second, Lease: 2 * time.Minute, BatchSize: 10, Now: clock.Now})

	// Two mails due for the agent: a change notification and the new
	// provisional password.
	if err := store.EnqueueMail(context.Background(), PasswordChanged(testPortal, "agent@example.fr", "Marie Dupont", t0, t0)); err != nil {
		t.Fatal(err)
	}
	pw := ProvisionalPassword(testPortal, "agent@example.fr", "Marie Dupont", "Kp7vQ2mXz9r", t0.Add(24*time.Hour), t0)
	pw.CreatedAt = t0.Add(time.Millisecond)
	if err := store.EnqueueMail(context.Background(), pw); err != nil {
		t.Fatal(err)
	}
	if _, err := now.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	count := 0
	for _, r := range srv.Messages() {
		if bytes.Contains(r.Data, []byte(pw.ID)) {
			count++
		}
	}
	if count != 1 {
		t.Errorf("the provisional-password mail was delivered %d times", count)
	}
}
