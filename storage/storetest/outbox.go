package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/caf-extranet/idp/storage"
)

func outboxBehaviours() []behaviour {
	return []behaviour{
		{"EnqueueAndClaim", testMailEnqueueAndClaim},
		{"ClaimDueOnly", testMailClaimDueOnly},
		{"LeaseHidesClaimedMail", testMailLease},
		{"ClaimLimit", testMailClaimLimit},
		{"ClaimToOneAddress", testMailClaimTo},
		{"ListWithoutLimitStopsAt1000", testMailListDefaultLimit},
		{"Retry", testMailRetry},
		{"FailedClearsBodies", testMailFailed},
		{"SentClearsBodies", testMailSent},
		{"ListNewestFirstByStatus", testMailList},
		{"ConcurrentClaimersNeverShare", testMailClaimRace},
	}
}

func addMail(t *testing.T, s storage.Store, id string, now time.Time) storage.OutboxMail {
	t.Helper()
	m := newMail(id, "agent@example.fr", now)
	mustOK(t, s.EnqueueMail(t.Context(), m), "EnqueueMail "+id)
	return m
}

// mailByID lists the whole outbox and returns one mail of it.
func mailByID(t *testing.T, s storage.Store, id string) storage.OutboxMail {
	t.Helper()
	mails, err := s.ListMails(t.Context(), "", 1000)
	mustOK(t, err, "ListMails")
	for _, m := range mails {
		if m.ID == id {
			return m
		}
	}
	t.Fatalf("mail %s is not in the outbox", id)
	return storage.OutboxMail{}
}

func testMailEnqueueAndClaim(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	m := newMail("mail-1", "agent@example.fr", now.Add(987*time.Microsecond))
	mustOK(t, s.EnqueueMail(ctx, m), "EnqueueMail")
	assertSame(t, "enqueued mail", mailByID(t, s, "mail-1"), m)

	t1 := now.Add(time.Second)
	got, err := s.ClaimMails(ctx, t1, time.Minute, 10)
	mustOK(t, err, "ClaimMails")
	if len(got) != 1 {
		t.Fatalf("ClaimMails got %v, want [mail-1]", ids(got))
	}
	// The claim may report the old or the leased NextAttemptAt: not compared.
	claimed := got[0]
	claimed.NextAttemptAt = m.NextAttemptAt
	assertSame(t, "claimed mail", claimed, m)
	leased := m
	leased.NextAttemptAt = t1.Add(time.Minute)
	assertSame(t, "mail in the outbox once claimed", mailByID(t, s, "mail-1"), leased)
}

// testMailClaimTo: ClaimMailsTo claims the due mails to one address and
// leaves the others pending and unleased.
func testMailClaimTo(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	mine := newMail("mail-mine", "agent@example.fr", now)
	mustOK(t, s.EnqueueMail(ctx, mine), "EnqueueMail mine")
	other := newMail("mail-other", "autre@example.fr", now)
	mustOK(t, s.EnqueueMail(ctx, other), "EnqueueMail other")
	got, err := s.ClaimMailsTo(ctx, "agent@example.fr", now.Add(time.Second), time.Minute, 10)
	mustOK(t, err, "ClaimMailsTo")
	if len(got) != 1 || got[0].ID != mine.ID {
		t.Fatalf("ClaimMailsTo got %v, want [mail-mine]", ids(got))
	}
	assertSame(t, "the other address's mail", mailByID(t, s, other.ID), other)
	got, err = s.ClaimMails(ctx, now.Add(time.Second), time.Minute, 10)
	mustOK(t, err, "ClaimMails")
	if len(got) != 1 || got[0].ID != other.ID {
		t.Fatalf("ClaimMails after ClaimMailsTo got %v, want [mail-other]", ids(got))
	}
}

func testMailClaimDueOnly(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	addMail(t, s, "mail-due", now)
	later := newMail("mail-later", "agent@example.fr", now)
	later.NextAttemptAt = now.Add(10 * time.Minute)
	mustOK(t, s.EnqueueMail(ctx, later), "EnqueueMail later")

	got, err := s.ClaimMails(ctx, now, time.Minute, 10)
	mustOK(t, err, "ClaimMails")
	assertIDSet(t, "due mails", got, "mail-due")
	got, err = s.ClaimMails(ctx, later.NextAttemptAt, time.Minute, 10)
	mustOK(t, err, "ClaimMails when the later one is due")
	assertIDSet(t, "mails due later", got, "mail-due", "mail-later")
}

func testMailLease(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	addMail(t, s, "mail-1", now)
	got, err := s.ClaimMails(ctx, now, time.Minute, 10)
	mustOK(t, err, "ClaimMails")
	assertIDSet(t, "first claim", got, "mail-1")
	got, err = s.ClaimMails(ctx, now.Add(30*time.Second), time.Minute, 10)
	mustOK(t, err, "ClaimMails during the lease")
	assertIDSet(t, "claim during the lease", got)
	// The sender died: once the lease has run out, the mail is due again.
	got, err = s.ClaimMails(ctx, now.Add(61*time.Second), time.Minute, 10)
	mustOK(t, err, "ClaimMails after the lease")
	assertIDSet(t, "claim after the lease", got, "mail-1")
}

func testMailClaimLimit(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	var all []string
	for i := range 5 {
		all = append(all, addMail(t, s, fmt.Sprintf("mail-%d", i), now).ID)
	}
	first, err := s.ClaimMails(ctx, now, time.Minute, 2)
	mustOK(t, err, "ClaimMails limit 2")
	if len(first) != 2 {
		t.Fatalf("ClaimMails with limit 2 got %v", ids(first))
	}
	rest, err := s.ClaimMails(ctx, now, time.Minute, 10)
	mustOK(t, err, "ClaimMails the rest")
	assertIDSet(t, "both claims together", append(first, rest...), all...)
}

func testMailRetry(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	m := addMail(t, s, "mail-1", now)
	_, err := s.ClaimMails(ctx, now, 30*time.Second, 10)
	mustOK(t, err, "ClaimMails")

	next := now.Add(5 * time.Minute)
	mustOK(t, s.MarkMailRetry(ctx, m.ID, next, "451 4.7.1 greylisted"), "MarkMailRetry")
	want := m
	want.Attempts, want.NextAttemptAt, want.LastError = 1, next, "451 4.7.1 greylisted"
	assertSame(t, "mail after a retry", mailByID(t, s, m.ID), want)

	got, err := s.ClaimMails(ctx, now.Add(time.Minute), 30*time.Second, 10)
	mustOK(t, err, "ClaimMails before the retry time")
	assertIDSet(t, "claim before the retry time", got)
	got, err = s.ClaimMails(ctx, next, 30*time.Second, 10)
	mustOK(t, err, "ClaimMails at the retry time")
	assertIDSet(t, "claim at the retry time", got, "mail-1")

	next2 := next.Add(10 * time.Minute)
	mustOK(t, s.MarkMailRetry(ctx, m.ID, next2, "421 try later"), "MarkMailRetry again")
	want.Attempts, want.NextAttemptAt, want.LastError = 2, next2, "421 try later"
	assertSame(t, "mail after two retries", mailByID(t, s, m.ID), want)
}

func testMailFailed(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	m := addMail(t, s, "mail-1", now)
	addMail(t, s, "mail-2", now)
	_, err := s.ClaimMails(ctx, now, time.Minute, 10)
	mustOK(t, err, "ClaimMails")
	mustOK(t, s.MarkMailRetry(ctx, m.ID, now.Add(time.Minute), "451 greylisted"), "MarkMailRetry")

	mustOK(t, s.MarkMailFailed(ctx, m.ID, "550 5.1.1 no such user"), "MarkMailFailed")
	got := mailByID(t, s, m.ID)
	if got.Status != storage.MailFailed || got.Attempts != 2 || got.LastError != "550 5.1.1 no such user" {
		t.Errorf("failed mail: status %q, attempts %d, last error %q; want %q, 2, %q",
			got.Status, got.Attempts, got.LastError, storage.MailFailed, "550 5.1.1 no such user")
	}
	if got.SentAt != nil {
		t.Errorf("failed mail has SentAt %v", *got.SentAt)
	}
	// A mail never delivered may hold a provisional password: it must not
	// linger either.
	if got.TextBody != "" || got.HTMLBody != "" {
		t.Errorf("failed mail still has its bodies: text %q, html %q", got.TextBody, got.HTMLBody)
	}
	if got.To != m.To || got.Subject != m.Subject {
		t.Errorf("failed mail lost its envelope: to %q subject %q", got.To, got.Subject)
	}
	if other := mailByID(t, s, "mail-2"); other.TextBody == "" || other.HTMLBody == "" {
		t.Errorf("another mail lost its bodies: text %q, html %q", other.TextBody, other.HTMLBody)
	}
	claimed, err := s.ClaimMails(ctx, now.Add(24*time.Hour), time.Minute, 10)
	mustOK(t, err, "ClaimMails much later")
	assertIDSet(t, "claim much later (the failed mail is given up)", claimed, "mail-2")
}

func testMailSent(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	m := addMail(t, s, "mail-1", now)
	other := addMail(t, s, "mail-2", now)
	_, err := s.ClaimMails(ctx, now, time.Minute, 10)
	mustOK(t, err, "ClaimMails")
	// An earlier attempt failed: its error goes once the mail is sent.
	mustOK(t, s.MarkMailRetry(ctx, m.ID, now, "421 try later"), "MarkMailRetry")

	sentAt := now.Add(3*time.Second + 210*time.Microsecond)
	mustOK(t, s.MarkMailSent(ctx, m.ID, sentAt), "MarkMailSent")
	got := mailByID(t, s, m.ID)
	checkUTC(t, "sent mail", got)
	if got.Status != storage.MailSent {
		t.Errorf("sent mail status = %q, want %q", got.Status, storage.MailSent)
	}
	if got.SentAt == nil || !canonTime(*got.SentAt).Equal(canonTime(sentAt)) {
		t.Errorf("sent mail SentAt = %v, want %v", got.SentAt, sentAt)
	}
	if got.TextBody != "" || got.HTMLBody != "" {
		t.Errorf("sent mail still has its bodies: text %q, html %q", got.TextBody, got.HTMLBody)
	}
	if got.To != m.To || got.Subject != m.Subject {
		t.Errorf("sent mail lost its envelope: to %q subject %q", got.To, got.Subject)
	}
	if got.LastError != "" {
		t.Errorf("sent mail keeps the error of an earlier attempt: %q", got.LastError)
	}
	// The other mail keeps its bodies.
	leased := other
	leased.NextAttemptAt = now.Add(time.Minute)
	assertSame(t, "mail not sent", mailByID(t, s, other.ID), leased)

	claimed, err := s.ClaimMails(ctx, now.Add(24*time.Hour), time.Minute, 10)
	mustOK(t, err, "ClaimMails much later")
	assertIDSet(t, "claim much later (the sent mail is done)", claimed, "mail-2")
}

func testMailList(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	for i := range 4 {
		addMail(t, s, fmt.Sprintf("mail-%d", i), now.Add(time.Duration(i)*time.Second))
	}
	_, err := s.ClaimMails(ctx, now.Add(time.Minute), time.Minute, 10)
	mustOK(t, err, "ClaimMails")
	mustOK(t, s.MarkMailSent(ctx, "mail-1", now.Add(time.Minute)), "MarkMailSent")
	mustOK(t, s.MarkMailFailed(ctx, "mail-2", "550"), "MarkMailFailed")

	all, err := s.ListMails(ctx, "", 10)
	mustOK(t, err, "ListMails")
	assertIDs(t, "ListMails any status", all, "mail-3", "mail-2", "mail-1", "mail-0")
	top, err := s.ListMails(ctx, "", 2)
	mustOK(t, err, "ListMails limit 2")
	assertIDs(t, "ListMails limit 2", top, "mail-3", "mail-2")
	pending, err := s.ListMails(ctx, storage.MailPending, 10)
	mustOK(t, err, "ListMails pending")
	assertIDs(t, "ListMails pending", pending, "mail-3", "mail-0")
	sent, err := s.ListMails(ctx, storage.MailSent, 10)
	mustOK(t, err, "ListMails sent")
	assertIDs(t, "ListMails sent", sent, "mail-1")
	failed, err := s.ListMails(ctx, storage.MailFailed, 10)
	mustOK(t, err, "ListMails failed")
	assertIDs(t, "ListMails failed", failed, "mail-2")
}

func testMailClaimRace(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	const mails = 30
	var all []string
	for i := range mails {
		all = append(all, addMail(t, s, fmt.Sprintf("mail-%02d", i), now).ID)
	}
	// Three senders claim small batches until there is nothing left.
	var mu sync.Mutex
	var claimed []storage.OutboxMail
	errs := race(3, func(int) error {
		for range mails + 1 {
			got, err := s.ClaimMails(ctx, now, time.Minute, 4)
			if err != nil || len(got) == 0 {
				return err
			}
			mu.Lock()
			claimed = append(claimed, got...)
			mu.Unlock()
		}
		return errors.New("still claiming mails after more rounds than there are mails")
	})
	for i, err := range errs {
		mustOK(t, err, fmt.Sprintf("ClaimMails in sender %d", i))
	}
	assertIDSet(t, "mails claimed by all senders (each exactly once)", claimed, all...)
}

// testMailListDefaultLimit: ListMails without a limit lists the 1000 newest.
func testMailListDefaultLimit(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	for i := range 1001 {
		m := newMail(fmt.Sprintf("mail-%04d", i), "agent@example.fr", now.Add(time.Duration(i)*time.Millisecond))
		mustOK(t, s.EnqueueMail(ctx, m), "EnqueueMail")
	}
	all, err := s.ListMails(ctx, "", 0)
	mustOK(t, err, "ListMails")
	if len(all) != 1000 || all[0].ID != "mail-1000" || all[999].ID != "mail-0001" {
		t.Fatalf("ListMails without a limit: %d mails, from %s", len(all), all[0].ID)
	}
}
