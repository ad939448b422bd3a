package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/caf-extranet/idp/storage"
)

func recoveryJobBehaviours() []behaviour {
	return []behaviour{
		{"ClaimLeasesJobs", testRecoveryClaimLease},
		{"ClaimLimit", testRecoveryClaimLimit},
		{"Delete", testRecoveryDelete},
		{"EnqueueCounted", testRecoveryEnqueueCounted},
		{"ConcurrentClaimersNeverShare", testRecoveryClaimRace},
		{"WritesCarryTheirAuditEvents", testRecoveryJobAudit},
		{"EnqueueNormalisesTheAddress", testRecoveryEnqueueNormalises},
	}
}

// testRecoveryEnqueueNormalises: a job keeps its address normalised, as
// typed in any case and with spaces around.
func testRecoveryEnqueueNormalises(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	_, err := s.EnqueueRecoveryJob(ctx, "recovery:ip:192.0.2.9", time.Hour, 3, newRecoveryJob("job-n", " Agent.MiXed@Example.FR ", now))
	mustOK(t, err, "EnqueueRecoveryJob")
	jobs, err := s.ClaimRecoveryJobs(ctx, now.Add(time.Second), time.Minute, 10)
	mustOK(t, err, "ClaimRecoveryJobs")
	if len(jobs) != 1 || jobs[0].Email != "agent.mixed@example.fr" {
		t.Fatalf("claimed %+v, want one job for agent.mixed@example.fr", jobs)
	}
}

// testRecoveryJobAudit: a job enqueued or deleted with audit events writes
// them in the same write, all or nothing.
func testRecoveryJobAudit(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	event := func(typ, detail string) storage.AuditEvent {
		return storage.AuditEvent{Time: now, Type: typ, Email: "agent@example.fr", ClientIP: "192.0.2.7", Detail: detail}
	}
	events := func() []string {
		t.Helper()
		list, err := s.ListAudit(ctx, storage.AuditFilter{Email: "agent@example.fr"})
		mustOK(t, err, "ListAudit")
		var got []string
		for _, e := range list {
			got = append(got, e.Type+"/"+e.Detail)
		}
		return got
	}
	j := newRecoveryJob("job-1", "agent@example.fr", now)
	mustOK(t, enqueue(s, ctx, j, event("recovery.requested", "")), "EnqueueRecoveryJob with its event")
	if got := events(); len(got) != 1 || got[0] != "recovery.requested/" {
		t.Fatalf("audit after the enqueue: %v", got)
	}
	// The same job again fails: its event is not written either.
	if err := enqueue(s, ctx, j, event("recovery.requested", "twice")); err == nil {
		t.Fatal("EnqueueRecoveryJob accepted a job id already queued")
	}
	if got := events(); len(got) != 1 {
		t.Fatalf("a refused enqueue left its audit event: %v", got)
	}
	mustOK(t, s.DeleteRecoveryJobs(ctx, []string{j.ID}, event("recovery.ignored", "unknown account")), "DeleteRecoveryJobs with its event")
	claimed, err := s.ClaimRecoveryJobs(ctx, now.Add(time.Minute), time.Minute, 10)
	mustOK(t, err, "ClaimRecoveryJobs")
	if len(claimed) != 0 {
		t.Fatalf("the deleted job is still there: %v", claimed)
	}
	if got := events(); len(got) != 2 || got[0] != "recovery.ignored/unknown account" {
		t.Fatalf("audit after the delete, newest first: %v", got)
	}
}

func testRecoveryClaimLease(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	addClient(t, s, "portail", now)
	ar := newAuthRequest("ar-1", "portail", now)
	mustOK(t, s.CreateAuthRequest(ctx, ar), "CreateAuthRequest")
	a := newRecoveryJob("job-a", "agent@example.fr", now)
	a.AuthRequestID = ar.ID
	b := newRecoveryJob("job-b", "inconnu@example.fr", now.Add(654*time.Microsecond))
	for _, j := range []storage.RecoveryJob{a, b} {
		mustOK(t, enqueue(s, ctx, j), "EnqueueRecoveryJob "+j.ID)
	}

	got, err := s.ClaimRecoveryJobs(ctx, now, time.Minute, 10)
	mustOK(t, err, "ClaimRecoveryJobs")
	assertIDSet(t, "first claim", got, "job-a", "job-b")
	for _, j := range got {
		want := a
		if j.ID == b.ID {
			want = b
		}
		assertSame(t, "claimed job "+j.ID, j, want)
	}

	got, err = s.ClaimRecoveryJobs(ctx, now, time.Minute, 10)
	mustOK(t, err, "ClaimRecoveryJobs while leased")
	assertIDSet(t, "claim while leased", got)
	got, err = s.ClaimRecoveryJobs(ctx, now.Add(59*time.Second), time.Minute, 10)
	mustOK(t, err, "ClaimRecoveryJobs just before the lease ends")
	assertIDSet(t, "claim just before the lease ends", got)

	// The worker died: once the lease has run out, someone else takes over.
	t1 := now.Add(61 * time.Second)
	got, err = s.ClaimRecoveryJobs(ctx, t1, time.Minute, 10)
	mustOK(t, err, "ClaimRecoveryJobs after the lease")
	assertIDSet(t, "claim after the lease", got, "job-a", "job-b")
	got, err = s.ClaimRecoveryJobs(ctx, t1.Add(time.Second), time.Minute, 10)
	mustOK(t, err, "ClaimRecoveryJobs under the new lease")
	assertIDSet(t, "claim under the new lease", got)
}

func testRecoveryClaimLimit(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	var all []string
	for i := range 5 {
		j := newRecoveryJob(fmt.Sprintf("job-%d", i), fmt.Sprintf("agent%d@example.fr", i), now.Add(time.Duration(i)*time.Second))
		mustOK(t, enqueue(s, ctx, j), "EnqueueRecoveryJob")
		all = append(all, j.ID)
	}
	t1 := now.Add(time.Minute)
	first, err := s.ClaimRecoveryJobs(ctx, t1, time.Minute, 2)
	mustOK(t, err, "ClaimRecoveryJobs limit 2")
	if len(first) != 2 {
		t.Fatalf("claim with limit 2 got %d jobs %v", len(first), ids(first))
	}
	rest, err := s.ClaimRecoveryJobs(ctx, t1, time.Minute, 10)
	mustOK(t, err, "ClaimRecoveryJobs the rest")
	assertIDSet(t, "both claims together", append(first, rest...), all...)
}

// testRecoveryDelete: a worker deletes a claim's jobs at once; a job
// already gone (finished by another worker) is no error, and only the jobs
// named go.
func testRecoveryDelete(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	for _, id := range []string{"job-a", "job-b", "job-c", "job-d"} {
		mustOK(t, enqueue(s, ctx, newRecoveryJob(id, "agent@example.fr", now)), "EnqueueRecoveryJob")
	}
	got, err := s.ClaimRecoveryJobs(ctx, now, time.Minute, 10)
	mustOK(t, err, "ClaimRecoveryJobs")
	assertIDSet(t, "claim", got, "job-a", "job-b", "job-c", "job-d")
	mustOK(t, s.DeleteRecoveryJobs(ctx, []string{"job-a"}), "DeleteRecoveryJobs one")
	// One event per job, all at the same time: they are listed newest
	// first, in the reverse of the order given.
	why := func(detail string) storage.AuditEvent {
		return storage.AuditEvent{Time: now, Type: "recovery.ignored", Email: "agent@example.fr", Detail: detail}
	}
	mustOK(t, s.DeleteRecoveryJobs(ctx, []string{"job-a", "job-c", "job-inconnu"}, why("a"), why("c"), why("inconnu")),
		"DeleteRecoveryJobs with one gone and one unknown")
	events, err := s.ListAudit(ctx, storage.AuditFilter{Email: "agent@example.fr"})
	mustOK(t, err, "ListAudit")
	var details []string
	for _, e := range events {
		details = append(details, e.Detail)
	}
	if fmt.Sprint(details) != "[inconnu c a]" {
		t.Fatalf("audit events of the deletion, newest first: %v", details)
	}
	mustOK(t, s.DeleteRecoveryJobs(ctx, nil), "DeleteRecoveryJobs none")
	got, err = s.ClaimRecoveryJobs(ctx, now.Add(2*time.Minute), time.Minute, 10)
	mustOK(t, err, "ClaimRecoveryJobs after the lease")
	assertIDSet(t, "claim after delete", got, "job-b", "job-d")
}

// testRecoveryEnqueueCounted: the count and the job are one write; over the
// limit the hit is counted and nothing else stored, not even the audit
// events, and the window restarts the count.
func testRecoveryEnqueueCounted(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	const key = "recovery:ip:192.0.2.7"
	requested := func(email string) int {
		t.Helper()
		list, err := s.ListAudit(ctx, storage.AuditFilter{Email: email})
		mustOK(t, err, "ListAudit")
		return len(list)
	}
	for i := 1; i <= 4; i++ {
		email := fmt.Sprintf("agent%d@example.fr", i)
		j := newRecoveryJob(fmt.Sprintf("job-%d", i), email, now.Add(time.Duration(i)*time.Second))
		ev := storage.AuditEvent{Time: j.RequestedAt, Type: "recovery.requested", Email: email}
		n, err := s.EnqueueRecoveryJob(ctx, key, time.Hour, 3, j, ev, ev)
		mustOK(t, err, "EnqueueRecoveryJob "+j.ID)
		if n != int64(i) {
			t.Fatalf("request %d counted %d", i, n)
		}
		want := 2
		if i > 3 {
			want = 0
		}
		if got := requested(email); got != want {
			t.Fatalf("request %d (limit 3): %d audit events, want %d", i, got, want)
		}
	}
	got, err := s.ClaimRecoveryJobs(ctx, now.Add(time.Minute), time.Minute, 10)
	mustOK(t, err, "ClaimRecoveryJobs")
	assertIDSet(t, "jobs queued under the limit", got, "job-1", "job-2", "job-3")
	// Another key counts apart; the next window starts again at 1.
	n, err := s.EnqueueRecoveryJob(ctx, "recovery:ip:192.0.2.8", time.Hour, 3, newRecoveryJob("job-5", "agent5@example.fr", now.Add(5*time.Second)))
	mustOK(t, err, "EnqueueRecoveryJob other key")
	if n != 1 {
		t.Fatalf("another key counted %d, want 1", n)
	}
	n, err = s.EnqueueRecoveryJob(ctx, key, time.Hour, 3, newRecoveryJob("job-6", "agent6@example.fr", now.Add(time.Hour+time.Second)))
	mustOK(t, err, "EnqueueRecoveryJob next window")
	if n != 1 {
		t.Fatalf("next window counted %d, want 1", n)
	}
	got, err = s.ClaimRecoveryJobs(ctx, now.Add(2*time.Hour), time.Minute, 10)
	mustOK(t, err, "ClaimRecoveryJobs")
	assertIDSet(t, "every job queued", got, "job-1", "job-2", "job-3", "job-5", "job-6")
}

// enqueue queues j under a counter of its own, far from any limit.
func enqueue(s storage.Store, ctx context.Context, j storage.RecoveryJob, audit ...storage.AuditEvent) error {
	_, err := s.EnqueueRecoveryJob(ctx, "test:"+j.ID, time.Hour, 1<<40, j, audit...)
	return err
}

func testRecoveryClaimRace(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	const jobs = 20
	var all []string
	for i := range jobs {
		j := newRecoveryJob(fmt.Sprintf("job-%02d", i), fmt.Sprintf("agent%d@example.fr", i), now)
		mustOK(t, enqueue(s, ctx, j), "EnqueueRecoveryJob")
		all = append(all, j.ID)
	}
	// Two workers claim small batches until there is nothing left.
	var mu sync.Mutex
	var claimed []storage.RecoveryJob
	errs := race(2, func(int) error {
		// Bounded, so that an engine handing out leased jobs again fails
		// instead of looping forever.
		for range jobs + 1 {
			got, err := s.ClaimRecoveryJobs(ctx, now, time.Minute, 3)
			if err != nil || len(got) == 0 {
				return err
			}
			mu.Lock()
			claimed = append(claimed, got...)
			mu.Unlock()
		}
		return errors.New("still claiming jobs after more rounds than there are jobs")
	})
	for i, err := range errs {
		mustOK(t, err, fmt.Sprintf("ClaimRecoveryJobs in worker %d", i))
	}
	assertIDSet(t, "jobs claimed by both workers (each exactly once)", claimed, all...)
}

func provisionalBehaviours() []behaviour {
	return []behaviour{
		{"IssueStoresQueuesMailDeletesJob", testProvisionalIssue},
		{"IssueCreatesItsNewAgentOrNothing", testProvisionalIssueNewUser},
		{"SecondIssueReplacesFirst", testProvisionalReplace},
		{"Expiry", testProvisionalExpiry},
		{"Delete", testProvisionalDelete},
		{"IssueForCompletedJobConflicts", testProvisionalJobGone},
		{"ConcurrentIssuesForOneJobOneWinner", testProvisionalJobRace},
		{"IssueOnlyToTheEnabledAgentsAddress", testProvisionalAccountChanged},
		{"ReadWithItsAgent", testUserWithProvisional},
		{"PendingMailOfAnOlderPasswordEnds", testProvisionalMailsEnd},
	}
}

// testProvisionalMailsEnd: a pending mail carrying a provisional password is
// given up, its bodies cleared, once that password is no longer the agent's
// (a newer one, a personal one) or the account is disabled: the agent would
// type it and be refused. A mail already sent, another agent's, and the
// other mails stay as they were.
func testProvisionalMailsEnd(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	addUser(t, s, "u-1", "agent@example.fr", now)
	addUser(t, s, "u-2", "collegue@example.fr", now)
	addUser(t, s, "u-3", "tiers@example.fr", now)
	issue := func(user, hash, mailID, to string, at time.Time) {
		t.Helper()
		mustOK(t, s.IssueProvisionalPassword(ctx, storage.ProvisionalIssue{
			Password: newProvisional(user, hash, at), Mail: newMail(mailID, to, at)}), "IssueProvisionalPassword "+mailID)
	}
	status := func(id string) storage.OutboxMail {
		t.Helper()
		mails, err := s.ListMails(ctx, "", 100)
		mustOK(t, err, "ListMails")
		for _, m := range mails {
			if m.ID == id {
				return m
			}
		}
		t.Fatalf("mail %s not in the outbox", id)
		return storage.OutboxMail{}
	}
	wantEnded := func(id, why string) {
		t.Helper()
		if m := status(id); m.Status != storage.MailFailed || m.LastError != why || m.TextBody != "" || m.HTMLBody != "" {
			t.Fatalf("mail %s: status %q, last error %q, bodies %d+%d bytes; want failed, %q, cleared",
				id, m.Status, m.LastError, len(m.TextBody), len(m.HTMLBody), why)
		}
	}
	wantPending := func(id string) {
		t.Helper()
		if m := status(id); m.Status != storage.MailPending || m.TextBody == "" {
			t.Fatalf("mail %s: status %q, %d bytes of text; want pending with its body", id, m.Status, len(m.TextBody))
		}
	}

	issue("u-1", "$argon2id$a", "mail-a", "agent@example.fr", now)
	issue("u-2", "$argon2id$other", "mail-other", "collegue@example.fr", now)
	mustOK(t, s.EnqueueMail(ctx, newMail("mail-notice", "agent@example.fr", now)), "EnqueueMail")
	t1 := now.Add(time.Minute)
	issue("u-1", "$argon2id$b", "mail-b", "agent@example.fr", t1)
	wantEnded("mail-a", storage.ProvisionalMailSuperseded)
	wantPending("mail-b")
	// What a sender that claimed mail-a before asks before sending it.
	for id, want := range map[string]bool{"mail-a": false, "mail-b": true, "mail-notice": true} {
		got, err := s.MailPending(ctx, id)
		mustOK(t, err, "MailPending "+id)
		if got != want {
			t.Fatalf("MailPending(%s) = %v, want %v", id, got, want)
		}
	}
	_, err := s.MailPending(ctx, "no-such-mail")
	wantErr(t, err, storage.ErrNotFound, "MailPending of an unknown mail")
	wantPending("mail-other")
	wantPending("mail-notice")

	// A personal password ends the pending one; one already sent stays sent.
	mustOK(t, s.MarkMailSent(ctx, "mail-other", t1), "MarkMailSent")
	issue("u-2", "$argon2id$other-2", "mail-other-2", "collegue@example.fr", t1)
	mustOK(t, s.ChangePassword(ctx, storage.PasswordChange{UserID: "u-1", NewHash: "$argon2id$personal",
		ExpectProvisionalHash: "$argon2id$b", Now: t1.Add(time.Second)}), "ChangePassword")
	wantEnded("mail-b", storage.ProvisionalMailPersonal)
	if m := status("mail-other"); m.Status != storage.MailSent {
		t.Fatalf("a sent mail became %q", m.Status)
	}
	wantPending("mail-other-2")
	wantPending("mail-notice")

	// A disabled account gets none, and keeps no provisional password
	// whose mail would never come once enabled again.
	mustOK(t, s.SetUserDisabled(ctx, "u-2", true, t1.Add(2*time.Second)), "SetUserDisabled")
	wantEnded("mail-other-2", storage.ProvisionalMailDisabled)
	_, err = s.GetProvisionalPassword(ctx, "u-2", t1)
	wantErr(t, err, storage.ErrNotFound, "the provisional password of a disabled agent")

	// A provisional password cancelled (the agent logged in with its
	// personal one) takes its mail along; a stale cancel leaves a newer
	// password's mail alone.
	issue("u-1", "$argon2id$c", "mail-c", "agent@example.fr", t1)
	mustOK(t, s.DeleteProvisionalPassword(ctx, "u-1", "$argon2id$old"), "DeleteProvisionalPassword stale")
	wantPending("mail-c")
	mustOK(t, s.DeleteProvisionalPassword(ctx, "u-1", "$argon2id$c"), "DeleteProvisionalPassword")
	wantEnded("mail-c", storage.ProvisionalMailCancelled)
	issue("u-3", "$argon2id$third", "mail-third", "tiers@example.fr", t1)
	wantPending("mail-third")
	claimed, err := s.ClaimMails(ctx, t1.Add(time.Hour), time.Minute, 10)
	mustOK(t, err, "ClaimMails")
	assertIDSet(t, "mails still to send", claimed, "mail-notice", "mail-third")
}

// testUserWithProvisional: the login's one read gives the agent and its
// provisional password, expired too (a personal login cancels it all the
// same), nil when there is none; the address is matched normalised.
func testUserWithProvisional(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	agent := addUser(t, s, "u-1", "agent@example.fr", now)
	other := addUser(t, s, "u-2", "collegue@example.fr", now)
	prov := newProvisional("u-1", "$argon2id$prov-1", now.Add(7*time.Microsecond))
	mustOK(t, s.IssueProvisionalPassword(ctx, storage.ProvisionalIssue{Password: prov, Mail: newMail("mail-1", "agent@example.fr", now)}),
		"IssueProvisionalPassword")

	u, p, err := s.GetUserWithProvisional(ctx, "  Agent@Example.FR ")
	mustOK(t, err, "GetUserWithProvisional")
	assertSame(t, "agent", u, agent)
	if p == nil {
		t.Fatal("GetUserWithProvisional: no provisional password, want the one issued")
	}
	assertSame(t, "provisional password", *p, prov)

	u, p, err = s.GetUserWithProvisional(ctx, "collegue@example.fr")
	mustOK(t, err, "GetUserWithProvisional without one")
	assertSame(t, "agent without a provisional password", u, other)
	if p != nil {
		t.Fatalf("GetUserWithProvisional of an agent without one: %+v, want nil", *p)
	}

	// Long expired: still returned, with its expiry.
	expired := newProvisional("u-2", "$argon2id$old", now.Add(-48*time.Hour))
	mustOK(t, s.IssueProvisionalPassword(ctx, storage.ProvisionalIssue{Password: expired, Mail: newMail("mail-2", "collegue@example.fr", now)}),
		"IssueProvisionalPassword expired")
	_, p, err = s.GetUserWithProvisional(ctx, "collegue@example.fr")
	mustOK(t, err, "GetUserWithProvisional expired")
	if p == nil || p.ExpiresAt.After(now) {
		t.Fatalf("GetUserWithProvisional: %+v, want the expired password", p)
	}
	assertSame(t, "expired provisional password", *p, expired)

	_, _, err = s.GetUserWithProvisional(ctx, "inconnu@example.fr")
	wantErr(t, err, storage.ErrNotFound, "GetUserWithProvisional unknown")
}

// The worker read the agent before hashing its password; by the time it
// issues, the agent may have been disabled. The issue then writes nothing:
// no password, no mail, the job left for the worker to drop. So does an
// issue whose mail goes to an address that is not the agent's, or to an
// agent that does not exist.
func testProvisionalAccountChanged(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	addUser(t, s, "u-1", "agent@example.fr", now)
	addUser(t, s, "u-2", "collegue@example.fr", now)
	mustOK(t, enqueue(s, ctx, newRecoveryJob("job-1", "agent@example.fr", now)), "EnqueueRecoveryJob")
	mustOK(t, s.SetUserDisabled(ctx, "u-1", true, now), "SetUserDisabled")

	refused := []struct {
		what  string
		issue storage.ProvisionalIssue
	}{
		{"to a disabled agent", storage.ProvisionalIssue{Password: newProvisional("u-1", "$argon2id$disabled", now),
			Mail: newMail("mail-disabled", "agent@example.fr", now), JobID: "job-1"}},
		{"to another agent's address", storage.ProvisionalIssue{Password: newProvisional("u-2", "$argon2id$elsewhere", now),
			Mail: newMail("mail-elsewhere", "agent@example.fr", now)}},
		{"to an agent that does not exist", storage.ProvisionalIssue{Password: newProvisional("u-gone", "$argon2id$gone", now),
			Mail: newMail("mail-gone", "parti@example.fr", now)}},
	}
	for _, r := range refused {
		wantErr(t, s.IssueProvisionalPassword(ctx, r.issue), storage.ErrAccountChanged, "IssueProvisionalPassword "+r.what)
	}
	for _, u := range []string{"u-1", "u-2", "u-gone"} {
		_, err := s.GetProvisionalPassword(ctx, u, now)
		wantErr(t, err, storage.ErrNotFound, "GetProvisionalPassword of "+u+" after the refused issues")
	}
	mails, err := s.ListMails(ctx, "", 10)
	mustOK(t, err, "ListMails")
	assertIDs(t, "outbox after the refused issues", mails)
	jobs, err := s.ClaimRecoveryJobs(ctx, now, time.Minute, 10)
	mustOK(t, err, "ClaimRecoveryJobs")
	assertIDs(t, "jobs after the refused issue (left for the worker to drop)", jobs, "job-1")

	// Enabled again, the same issue goes through.
	mustOK(t, s.SetUserDisabled(ctx, "u-1", false, now), "SetUserDisabled false")
	mustOK(t, s.IssueProvisionalPassword(ctx, refused[0].issue), "IssueProvisionalPassword to the enabled agent")
	mails, err = s.ListMails(ctx, "", 10)
	mustOK(t, err, "ListMails")
	assertIDs(t, "outbox after the issue", mails, "mail-disabled")
}

func testProvisionalIssue(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	addUser(t, s, "u-1", "agent@example.fr", now)
	mustOK(t, enqueue(s, ctx, newRecoveryJob("job-1", "agent@example.fr", now)), "EnqueueRecoveryJob")
	mustOK(t, enqueue(s, ctx, newRecoveryJob("job-2", "autre@example.fr", now)), "EnqueueRecoveryJob")

	issue := storage.ProvisionalIssue{
		Password: newProvisional("u-1", "$argon2id$prov-1", now.Add(123*time.Microsecond)),
		Mail:     newMail("mail-1", "agent@example.fr", now),
		JobID:    "job-1",
	}
	mustOK(t, s.IssueProvisionalPassword(ctx, issue), "IssueProvisionalPassword")

	got, err := s.GetProvisionalPassword(ctx, "u-1", now.Add(time.Minute))
	mustOK(t, err, "GetProvisionalPassword")
	assertSame(t, "provisional password", got, issue.Password)
	mails, err := s.ListMails(ctx, "", 10)
	mustOK(t, err, "ListMails")
	assertSameList(t, "outbox after issue", mails, []storage.OutboxMail{issue.Mail})
	claimedMails, err := s.ClaimMails(ctx, now, time.Minute, 10)
	mustOK(t, err, "ClaimMails")
	assertIDs(t, "mails claimable after issue", claimedMails, "mail-1")
	jobs, err := s.ClaimRecoveryJobs(ctx, now, time.Minute, 10)
	mustOK(t, err, "ClaimRecoveryJobs")
	assertIDSet(t, "jobs left after issue", jobs, "job-2")
}

// testProvisionalIssueNewUser: an account created without a password is
// written with its provisional password and its mail, in one transaction;
// when its e-mail is taken, nothing is: not the account, not a provisional
// password, not a mail.
func testProvisionalIssueNewUser(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	created := newUser("u-new", "nouveau@example.fr", now)
	created.PasswordHash = ""
	issue := storage.ProvisionalIssue{Password: newProvisional("u-new", "$argon2id$prov-new", now),
		Mail: newMail("mail-new", "nouveau@example.fr", now), NewUser: &created}
	mustOK(t, s.IssueProvisionalPassword(ctx, issue), "IssueProvisionalPassword with a new agent")
	got, err := s.GetUser(ctx, "u-new")
	mustOK(t, err, "GetUser of the new agent")
	assertSame(t, "new agent", got, created)
	prov, err := s.GetProvisionalPassword(ctx, "u-new", now)
	mustOK(t, err, "GetProvisionalPassword of the new agent")
	assertSame(t, "new agent's provisional password", prov, issue.Password)

	addUser(t, s, "u-1", "agent@example.fr", now)
	taken := newUser("u-taken", "agent@example.fr", now)
	wantErr(t, s.IssueProvisionalPassword(ctx, storage.ProvisionalIssue{Password: newProvisional("u-taken", "$argon2id$prov-taken", now),
		Mail: newMail("mail-taken", "agent@example.fr", now), NewUser: &taken}), storage.ErrDuplicate,
		"IssueProvisionalPassword with a new agent whose e-mail is taken")
	_, err = s.GetUser(ctx, "u-taken")
	wantErr(t, err, storage.ErrNotFound, "GetUser of the refused new agent")
	for _, u := range []string{"u-taken", "u-1"} {
		_, err = s.GetProvisionalPassword(ctx, u, now)
		wantErr(t, err, storage.ErrNotFound, "GetProvisionalPassword of "+u+" after the refused issue")
	}
	mails, err := s.ListMails(ctx, "", 10)
	mustOK(t, err, "ListMails")
	assertIDs(t, "outbox after the refused issue", mails, "mail-new")
}

func testProvisionalReplace(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	addUser(t, s, "u-1", "agent@example.fr", now)
	addUser(t, s, "u-2", "collegue@example.fr", now)
	first := storage.ProvisionalIssue{Password: newProvisional("u-1", "$argon2id$prov-1", now), Mail: newMail("mail-1", "agent@example.fr", now)}
	mustOK(t, s.IssueProvisionalPassword(ctx, first), "IssueProvisionalPassword first")
	other := storage.ProvisionalIssue{Password: newProvisional("u-2", "$argon2id$prov-other", now), Mail: newMail("mail-other", "collegue@example.fr", now)}
	mustOK(t, s.IssueProvisionalPassword(ctx, other), "IssueProvisionalPassword other agent")

	t1 := now.Add(5 * time.Minute)
	second := storage.ProvisionalIssue{Password: newProvisional("u-1", "$argon2id$prov-2", t1), Mail: newMail("mail-2", "agent@example.fr", t1)}
	mustOK(t, s.IssueProvisionalPassword(ctx, second), "IssueProvisionalPassword second")

	got, err := s.GetProvisionalPassword(ctx, "u-1", t1)
	mustOK(t, err, "GetProvisionalPassword")
	assertSame(t, "replaced provisional password", got, second.Password)
	got, err = s.GetProvisionalPassword(ctx, "u-2", t1)
	mustOK(t, err, "GetProvisionalPassword other agent")
	assertSame(t, "other agent's provisional password", got, other.Password)
	mails, err := s.ListMails(ctx, "", 10)
	mustOK(t, err, "ListMails")
	assertIDSet(t, "outbox after two issues", mails, "mail-1", "mail-other", "mail-2")
}

func testProvisionalExpiry(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	addUser(t, s, "u-1", "agent@example.fr", now)
	issue := storage.ProvisionalIssue{Password: newProvisional("u-1", "$argon2id$prov-1", now), Mail: newMail("mail-1", "agent@example.fr", now)}
	mustOK(t, s.IssueProvisionalPassword(ctx, issue), "IssueProvisionalPassword")

	_, err := s.GetProvisionalPassword(ctx, "u-1", issue.Password.ExpiresAt.Add(-time.Second))
	mustOK(t, err, "GetProvisionalPassword just before expiry")
	_, err = s.GetProvisionalPassword(ctx, "u-1", issue.Password.ExpiresAt.Add(time.Second))
	wantErr(t, err, storage.ErrNotFound, "GetProvisionalPassword expired")
	_, err = s.GetProvisionalPassword(ctx, "u-unknown", now)
	wantErr(t, err, storage.ErrNotFound, "GetProvisionalPassword of an agent without one")
}

func testProvisionalDelete(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	addUser(t, s, "u-1", "agent@example.fr", now)
	addUser(t, s, "u-2", "collegue@example.fr", now)
	for u, to := range map[string]string{"u-1": "agent@example.fr", "u-2": "collegue@example.fr"} {
		issue := storage.ProvisionalIssue{Password: newProvisional(u, "$argon2id$prov-"+u, now), Mail: newMail("mail-"+u, to, now)}
		mustOK(t, s.IssueProvisionalPassword(ctx, issue), "IssueProvisionalPassword "+u)
	}
	mustOK(t, s.DeleteProvisionalPassword(ctx, "u-1", "$argon2id$another"), "DeleteProvisionalPassword of another hash")
	_, err := s.GetProvisionalPassword(ctx, "u-1", now)
	mustOK(t, err, "a provisional password issued after the one a caller read is kept")
	mustOK(t, s.DeleteProvisionalPassword(ctx, "u-1", "$argon2id$prov-u-1"), "DeleteProvisionalPassword")
	_, err = s.GetProvisionalPassword(ctx, "u-1", now)
	wantErr(t, err, storage.ErrNotFound, "GetProvisionalPassword after delete")
	_, err = s.GetProvisionalPassword(ctx, "u-2", now)
	mustOK(t, err, "GetProvisionalPassword of another agent")
}

// A worker whose lease ran out finishes after another worker completed the
// same job: its issue is refused and writes nothing, so the agent holds (and
// was mailed) one password only.
func testProvisionalJobGone(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	addUser(t, s, "u-1", "agent@example.fr", now)
	mustOK(t, enqueue(s, ctx, newRecoveryJob("job-1", "agent@example.fr", now)), "EnqueueRecoveryJob")

	claimed, err := s.ClaimRecoveryJobs(ctx, now, time.Minute, 10)
	mustOK(t, err, "ClaimRecoveryJobs by the slow worker")
	assertIDs(t, "slow worker's claim", claimed, "job-1")
	t1 := now.Add(2 * time.Minute)
	claimed, err = s.ClaimRecoveryJobs(ctx, t1, time.Minute, 10)
	mustOK(t, err, "ClaimRecoveryJobs once the lease ran out")
	assertIDs(t, "second worker's claim", claimed, "job-1")

	second := storage.ProvisionalIssue{Password: newProvisional("u-1", "$argon2id$second", t1),
		Mail: newMail("mail-second", "agent@example.fr", t1), JobID: "job-1"}
	mustOK(t, s.IssueProvisionalPassword(ctx, second), "IssueProvisionalPassword by the second worker")

	t2 := t1.Add(time.Second)
	late := storage.ProvisionalIssue{Password: newProvisional("u-1", "$argon2id$late", t2),
		Mail: newMail("mail-late", "agent@example.fr", t2), JobID: "job-1"}
	wantErr(t, s.IssueProvisionalPassword(ctx, late), storage.ErrConflict, "IssueProvisionalPassword by the slow worker")
	never := storage.ProvisionalIssue{Password: newProvisional("u-1", "$argon2id$never", t2),
		Mail: newMail("mail-never", "agent@example.fr", t2), JobID: "job-unknown"}
	wantErr(t, s.IssueProvisionalPassword(ctx, never), storage.ErrConflict, "IssueProvisionalPassword for a job that never existed")

	got, err := s.GetProvisionalPassword(ctx, "u-1", t2)
	mustOK(t, err, "GetProvisionalPassword")
	assertSame(t, "provisional password after the refused issues", got, second.Password)
	mails, err := s.ListMails(ctx, "", 10)
	mustOK(t, err, "ListMails")
	assertIDs(t, "outbox after the refused issues", mails, "mail-second")
}

func testProvisionalJobRace(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	addUser(t, s, "u-1", "agent@example.fr", now)
	mustOK(t, enqueue(s, ctx, newRecoveryJob("job-1", "agent@example.fr", now)), "EnqueueRecoveryJob")
	const n = 10
	issues := make([]storage.ProvisionalIssue, n)
	for i := range issues {
		issues[i] = storage.ProvisionalIssue{
			Password: newProvisional("u-1", fmt.Sprintf("$argon2id$worker-%d", i), now),
			Mail:     newMail(fmt.Sprintf("mail-%d", i), "agent@example.fr", now),
			JobID:    "job-1",
		}
	}
	errs := race(n, func(i int) error { return s.IssueProvisionalPassword(ctx, issues[i]) })
	w := oneWinner(t, "IssueProvisionalPassword for one job", errs, storage.ErrConflict)

	got, err := s.GetProvisionalPassword(ctx, "u-1", now)
	mustOK(t, err, "GetProvisionalPassword")
	assertSame(t, "provisional password of the winner", got, issues[w].Password)
	mails, err := s.ListMails(ctx, "", 2*n)
	mustOK(t, err, "ListMails")
	assertIDs(t, "outbox after the race", mails, issues[w].Mail.ID)
}
