package account

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/caf-extranet/idp/mail"
	"github.com/caf-extranet/idp/storage"
)

// recoveryLease is how long a claimed recovery job is hidden from the other
// instances' workers; a worker that dies mid-job lets another retry it after.
const recoveryLease = 2 * time.Minute

// RequestRecovery records a « Mot de passe oublié ? » request. It does not
// look at the address at all: whether it belongs to an active account, a
// disabled one or nobody, the caller gets the same nil after the same work,
// and the background worker (ProcessRecoveryJobs) decides what to send.
// Beyond the per-IP hourly limit nothing is queued and it returns
// ErrThrottled: the agent must not be told that a mail is on its way, and
// since the limit depends on the client address only, saying so tells
// nothing about the e-mail address. receipt, when set, is recorded with a
// queued job (the login pages' answer to the same form posted again).
func (s *Service) RequestRecovery(ctx context.Context, email string, meta Meta, receipt storage.ChallengeReceipt) error {
	now := s.now()
	email = storage.NormaliseEmail(email)
	job := storage.RecoveryJob{
		ID: storage.NewID(), Email: email, ClientIP: meta.ClientIP,
		AuthRequestID: meta.AuthRequestID, RequestedAt: now, Receipt: receipt,
	}
	// The per-address count, the job, its receipt and its audit event in one
	// write.
	n, err := s.store.EnqueueRecoveryJob(ctx, "recovery:ip:"+ClientKey(meta.ClientIP), time.Hour, int64(s.cfg.MaxRequestsPerIPPerHour),
		job, s.auditEvent("recovery.requested", storage.User{Email: email}, meta, ""))
	if err != nil {
		return fmt.Errorf("account: recording recovery request: %w", err)
	}
	if n > int64(s.cfg.MaxRequestsPerIPPerHour) {
		s.audit(ctx, "recovery.throttled", storage.User{Email: email}, meta, "per-IP limit")
		return ErrThrottled
	}
	s.wakeRecovery()
	return nil
}

// ProcessRecoveryJobs handles the recovery requests due now and returns how
// many it took. Every instance runs it; the store's leases keep two instances
// off the same job.
func (s *Service) ProcessRecoveryJobs(ctx context.Context) (int, error) {
	jobs, err := s.store.ClaimRecoveryJobs(ctx, s.now(), recoveryLease, recoveryBatch)
	if err != nil {
		return 0, fmt.Errorf("account: claiming recovery jobs: %w", err)
	}
	if len(jobs) == 0 {
		return 0, nil
	}
	// One lookup for the whole claim.
	emails := make([]string, len(jobs))
	for i, j := range jobs {
		emails[i] = j.Email
	}
	users, err := s.store.GetUsersByEmail(ctx, emails)
	if err != nil {
		return 0, fmt.Errorf("account: looking up %d recovery addresses: %w", len(jobs), err)
	}
	byEmail := make(map[string]storage.User, len(users))
	for _, u := range users {
		byEmail[u.Email] = u
	}
	// The jobs that send nothing (unknown, disabled or throttled accounts:
	// most of them under a flood) are deleted together, with their audit
	// events, in one write at the end.
	var drops recoveryDrops
	for i, j := range jobs {
		u, known := byEmail[storage.NormaliseEmail(j.Email)]
		if err := s.processRecoveryJob(ctx, j, u, known, &drops); err != nil {
			// The lease runs out and the job is retried later; the drops
			// decided so far still go.
			if derr := drops.flush(ctx, s.store); derr != nil {
				return i - len(drops.ids), errors.Join(err, derr)
			}
			return i, err
		}
	}
	if err := drops.flush(ctx, s.store); err != nil {
		return len(jobs) - len(drops.ids), err
	}
	return len(jobs), nil
}

// processRecoveryJob handles one job of a claim, u being the account of its
// address when known.
func (s *Service) processRecoveryJob(ctx context.Context, j storage.RecoveryJob, u storage.User, known bool, drops *recoveryDrops) error {
	meta := Meta{ClientIP: j.ClientIP, AuthRequestID: j.AuthRequestID}
	switch {
	case !known:
		drops.add(j, s.auditEvent("recovery.ignored", storage.User{Email: j.Email}, meta, "unknown account"))
		return nil
	case u.Disabled:
		drops.add(j, s.auditEvent("recovery.ignored", u, meta, "disabled account"))
		return nil
	}
	n, err := s.store.HitCounter(ctx, "recovery:account:"+u.ID, time.Hour, s.now())
	if err != nil {
		return fmt.Errorf("account: counting recovery mails: %w", err)
	}
	if n > int64(s.cfg.MaxMailsPerAccountPerHour) {
		drops.add(j, s.auditEvent("recovery.throttled", u, meta, "per-account limit"))
		return nil
	}
	err = s.issueProvisional(ctx, u, j.ID, mail.ProvisionalPassword)
	if errors.Is(err, storage.ErrConflict) {
		// Another instance's worker finished this job after our lease ran
		// out: its mail went, ours must not.
		s.log.InfoContext(ctx, "recovery job already done elsewhere", "job_id", j.ID)
		return nil
	}
	if errors.Is(err, storage.ErrAccountChanged) {
		// Disabled between the claim's lookup and now: the mail would
		// carry a password the account cannot use.
		drops.add(j, s.auditEvent("recovery.ignored", u, meta, "account changed"))
		return nil
	}
	if err != nil {
		return err
	}
	s.audit(ctx, "provisional.issued", u, meta, "recovery")
	return nil
}

// recoveryDrops are the jobs of one claim that send nothing, with the audit
// event that says why for each.
type recoveryDrops struct {
	ids    []string
	events []storage.AuditEvent
}

func (d *recoveryDrops) add(j storage.RecoveryJob, why storage.AuditEvent) {
	d.ids = append(d.ids, j.ID)
	d.events = append(d.events, why)
}

// flush deletes the jobs with their events in one write, and empties d.
func (d *recoveryDrops) flush(ctx context.Context, store storage.Store) error {
	if len(d.ids) == 0 {
		return nil
	}
	if err := store.DeleteRecoveryJobs(ctx, d.ids, d.events...); err != nil {
		return fmt.Errorf("account: deleting %d recovery jobs: %w", len(d.ids), err)
	}
	d.ids, d.events = nil, nil
	return nil
}

// composeFunc builds the mail that carries a provisional password.
type composeFunc func(p mail.Portal, to, displayName, password string, expires, now time.Time) storage.OutboxMail

// issueProvisional generates a provisional password satisfying the active
// policy, and stores its hash with the mail that carries it (and the
// completion of the job, if any) in one transaction.
func (s *Service) issueProvisional(ctx context.Context, u storage.User, jobID string, compose composeFunc) error {
	issue, err := s.provisionalIssue(ctx, u, compose)
	if err != nil {
		return err
	}
	issue.JobID = jobID
	if err := s.store.IssueProvisionalPassword(ctx, issue); err != nil {
		return fmt.Errorf("account: storing provisional password of %s: %w", u.ID, err)
	}
	s.wakeMailer()
	return nil
}

// provisionalIssue generates a provisional password for u, satisfying the
// active policy, with its hash and the mail that carries it.
func (s *Service) provisionalIssue(ctx context.Context, u storage.User, compose composeFunc) (storage.ProvisionalIssue, error) {
	now := s.now()
	pw, err := s.policy.Generate(s.cfg.ProvisionalLength)
	if err != nil {
		return storage.ProvisionalIssue{}, fmt.Errorf("account: generating provisional password: %w", err)
	}
	hash, err := s.hasher.Hash(ctx, pw)
	if err != nil {
		return storage.ProvisionalIssue{}, fmt.Errorf("account: hashing provisional password: %w", err)
	}
	expires := now.Add(s.cfg.ProvisionalTTL)
	return storage.ProvisionalIssue{
		Password: storage.ProvisionalPassword{UserID: u.ID, Hash: hash, CreatedAt: now, ExpiresAt: expires},
		Mail:     compose(s.cfg.Portal, u.Email, u.Name, pw, expires, now),
	}, nil
}

// RunRecoveryWorker processes recovery jobs every interval, and at once when
// woken by RequestRecovery on this instance, until ctx is done.
func (s *Service) RunRecoveryWorker(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		n, err := s.ProcessRecoveryJobs(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.ErrorContext(ctx, "recovery jobs", "err", err)
		}
		if err == nil && n == recoveryBatch {
			// A full batch: more may be waiting (a backlog after a restart
			// or a burst faster than one round), and they would otherwise
			// wait a poll interval per batch.
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.recoveryWake:
			// Let the requests arriving meanwhile join this round: under a
			// burst, one claim (a write) takes many jobs instead of one each.
			select {
			case <-ctx.Done():
				return
			case <-time.After(cmp.Or(s.cfg.RecoveryGather, defaultRecoveryGather)):
			}
		}
	}
}

// recoveryBatch is how many jobs one claim takes.
const recoveryBatch = 20

// defaultRecoveryGather is how long a woken worker waits before claiming:
// nothing next to "within the hour", and at hundreds of requests a second it
// turns one claim per job into one per dozen.
const defaultRecoveryGather = 20 * time.Millisecond

func (s *Service) wakeRecovery() {
	select {
	case s.recoveryWake <- struct{}{}:
	default:
	}
}
