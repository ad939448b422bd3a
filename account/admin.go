package account

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/caf-extranet/idp/account/policy"
	idpmail "github.com/caf-extranet/idp/mail"
	"github.com/caf-extranet/idp/storage"
)

// InputError is a rejected administrative input: which field and why.
type InputError struct {
	Field   string
	Message string
}

func (e *InputError) Error() string { return e.Field + ": " + e.Message }

// ErrDisabled: the action needs an active account.
var ErrDisabled = errors.New("account: the account is disabled")

// NewUser is what an administrator gives to create an agent's account.
type NewUser struct {
	Email        string
	Name         string
	Organisation string
	// Password, when empty, makes the account start with a provisional
	// password mailed to the agent (onboarding and recovery are one procedure).
	Password string
}

// maxEmailBytes is the longest e-mail address (RFC 5321's path limit): no
// account has a longer one.
const maxEmailBytes = 254

// ValidateEmail accepts a bare address (no display name), without control
// characters, in ASCII, and returns its normalised form. ASCII because the
// mails go out 7-bit, without SMTPUTF8: an address with accents would be
// refused by some relays, or mangled, and the agent would never receive
// its provisional password.
func ValidateEmail(email string) (string, error) {
	e := storage.NormaliseEmail(email)
	if e == "" {
		return "", &InputError{"email", "is required"}
	}
	// The address as given, trimmed (a spreadsheet cell's non-breaking
	// space is no part of it): NormaliseEmail turns an accented domain into
	// its ASCII form, which an administrator is asked to give, so that the
	// address of an account is the one the agency's records hold.
	for _, c := range strings.TrimSpace(email) {
		if c > unicode.MaxASCII {
			return "", &InputError{"email", fmt.Sprintf("%q has characters outside ASCII, which the mails cannot carry: give its ASCII form (a domain with accents in punycode, e.g. xn--socit-esab.fr)", email)}
		}
	}
	if strings.ContainsAny(e, "\r\n\x00 <>,;\"") || !utf8.ValidString(e) || len(e) > maxEmailBytes {
		return "", &InputError{"email", fmt.Sprintf("%q is not a valid e-mail address", email)}
	}
	a, err := mail.ParseAddress(e)
	if err != nil || a.Address != e || !strings.Contains(e[strings.LastIndex(e, "@")+1:], ".") && !strings.HasSuffix(e, "@localhost") {
		return "", &InputError{"email", fmt.Sprintf("%q is not a valid e-mail address", email)}
	}
	return e, nil
}

// ValidateText is the rule for names and organisations: trimmed, valid
// UTF-8, no control character, at most 200 characters.
func ValidateText(field, v string, required bool) (string, error) {
	v = strings.TrimSpace(v)
	switch {
	case required && v == "":
		return "", &InputError{field, "is required"}
	case !utf8.ValidString(v) || strings.ContainsFunc(v, isControl):
		return "", &InputError{field, "contains control characters or invalid UTF-8"}
	case utf8.RuneCountInString(v) > 200:
		return "", &InputError{field, "is longer than 200 characters"}
	}
	return v, nil
}

// isControl tells the characters a name must not hold: controls (escape
// sequences and bells replayed by idp user list to the administrator's
// terminal, tabs that shift its columns), invisible format characters
// (bidirectional overrides that reorder a name in ID tokens and mails),
// line and paragraph separators.
func isControl(r rune) bool {
	return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp)
}

// CheckNewUser applies CreateUser's rules to nu, pol being the password
// policy, without the store: the admin command refuses a wrong command
// line with it before it opens (or creates) the database. It returns nu
// normalised (e-mail, trimmed texts), or every problem at once, each an
// *InputError (errors.Join).
func CheckNewUser(nu NewUser, pol policy.Policy) (NewUser, error) {
	email, err := ValidateEmail(nu.Email)
	var problems []error
	if err != nil {
		problems = append(problems, err)
	}
	name, err := ValidateText("name", nu.Name, true)
	if err != nil {
		problems = append(problems, err)
	}
	org, err := ValidateText("organisation", nu.Organisation, false)
	if err != nil {
		problems = append(problems, err)
	}
	if nu.Password != "" {
		if v := pol.Check(nu.Password, nu.Password, "", email); len(v) > 0 {
			problems = append(problems, &InputError{"password", "breaks the password policy: " + joinViolations(v)})
		}
	}
	if len(problems) > 0 {
		return NewUser{}, errors.Join(problems...)
	}
	return NewUser{Email: email, Name: name, Organisation: org, Password: nu.Password}, nil
}

// CreateUser creates an agent's account. With a password, it must satisfy
// the active policy; without one, a provisional password is mailed.
func (s *Service) CreateUser(ctx context.Context, nu NewUser, meta Meta) (storage.User, error) {
	nu, err := CheckNewUser(nu, s.policy)
	if err != nil {
		return storage.User{}, err
	}
	now := s.now()
	u := storage.User{ID: storage.NewID(), Email: nu.Email, Name: nu.Name, Organisation: nu.Organisation, CreatedAt: now, UpdatedAt: now}
	if nu.Password == "" {
		if err := s.createWithProvisional(ctx, u, meta); err != nil {
			return storage.User{}, err
		}
		return u, nil
	}
	if u.PasswordHash, err = s.hasher.Hash(ctx, policy.Normalize(nu.Password)); err != nil {
		return storage.User{}, fmt.Errorf("account: hashing password: %w", err)
	}
	if err := s.store.CreateUser(ctx, u); err != nil {
		if errors.Is(err, storage.ErrDuplicate) {
			return storage.User{}, &InputError{"email", fmt.Sprintf("an account with e-mail %s already exists", u.Email)}
		}
		return storage.User{}, fmt.Errorf("account: creating user: %w", err)
	}
	s.audit(ctx, "admin.user_created", u, meta, "")
	return u, nil
}

// createWithProvisional writes the account u with its provisional password
// and the mail that carries it, in one transaction: interrupted (Ctrl-C, a
// database outage) it leaves no account without a password nor mail, which
// a second run would find "already exists".
func (s *Service) createWithProvisional(ctx context.Context, u storage.User, meta Meta) error {
	issue, err := s.provisionalIssue(ctx, u, idpmail.AccountCreated)
	if err != nil {
		return err
	}
	issue.NewUser = &u
	if err := s.store.IssueProvisionalPassword(ctx, issue); err != nil {
		if errors.Is(err, storage.ErrDuplicate) {
			return &InputError{"email", fmt.Sprintf("an account with e-mail %s already exists", u.Email)}
		}
		return fmt.Errorf("account: creating user with a provisional password: %w", err)
	}
	s.wakeMailer()
	s.audit(ctx, "admin.user_created", u, meta, "")
	s.audit(ctx, "provisional.issued", u, meta, "account created")
	return nil
}

// ResetPassword issues a provisional password to an active agent (helpdesk).
func (s *Service) ResetPassword(ctx context.Context, email string, meta Meta) error {
	u, err := s.store.GetUserByEmail(ctx, email)
	if err != nil {
		return err
	}
	if u.Disabled {
		return ErrDisabled
	}
	err = s.issueProvisional(ctx, u, "", idpmail.ProvisionalPassword)
	if errors.Is(err, storage.ErrAccountChanged) {
		return ErrDisabled // disabled since it was read
	}
	if err != nil {
		return err
	}
	s.audit(ctx, "provisional.issued", u, meta, "helpdesk reset")
	return nil
}

// SetDisabled disables (revoking sessions and tokens) or enables an agent.
func (s *Service) SetDisabled(ctx context.Context, email string, disabled bool, meta Meta) error {
	u, err := s.store.GetUserByEmail(ctx, email)
	if err != nil {
		return err
	}
	if err := s.store.SetUserDisabled(ctx, u.ID, disabled, s.now()); err != nil {
		return err
	}
	typ := "admin.user_enabled"
	if disabled {
		typ = "admin.user_disabled"
	}
	s.audit(ctx, typ, u, meta, "")
	return nil
}

func joinViolations(v []policy.Violation) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = string(x)
	}
	return strings.Join(parts, ", ")
}
