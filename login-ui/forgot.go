package loginui

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/caf-extranet/idp/account"
	"github.com/caf-extranet/idp/storage"
)

// CAPTCHA throttles, per client address. Drawing: a fixed window, beyond
// which no challenge is drawn until it ends. Wrong answers: growing delays
// after freeWrongAnswers (account.ThrottleDelay, as for passwords), one
// forgotten per account.AddressDecay, counted in the database so that every
// instance shares them.
const (
	captchaWindow          = 10 * time.Minute
	maxChallengesPerWindow = 60
	freeWrongAnswers       = 10
	// maxAnswerBytes: longer answers are wrong without being hashed.
	maxAnswerBytes = 64
	// maxChallengeID: ids are storage.NewID's 32 hex characters.
	maxChallengeID = 64
)

// The question alternative is there for agents who cannot read the image
// (RGAA 1.5), and a program that reads French answers it every time: only a
// count stops it. The recovery requests whose challenge was a question are
// counted per client address, on top of the limits every request meets, in
// the database like the other counters so that every instance shares them:
// 2 an hour, an agent's request and one retry (a mistyped address gets the
// same confirmation, so the agent finds out only when no mail comes). That
// is below the 3 mails an account gets an hour (the default), so that one
// address answering questions cannot by itself use up an agent's hour.
const (
	questionWindow                 = time.Hour
	maxQuestionRecoveriesPerWindow = 2
)

// challengeView is the CAPTCHA part of the form. A zero value means no
// challenge could be drawn (throttled).
type challengeView struct {
	ID    string
	Kind  string
	Image template.URL // set for storage.ChallengeImage
}

// forgotPageData is the forgot form's own content.
type forgotPageData struct {
	Challenge challengeView
	// Question: the form offers (or shows) the question alternative.
	Question bool
}

// forgotView is the form with the typed address kept.
func (h *Handler) forgotView(id, email string) *view {
	v := newView(msg("forgot.title"), id)
	v.addField(field{ID: "email", Type: "email", Label: msg("field.email"), Value: email, Autocomplete: "email"})
	return v
}

// forgotPage is GET /login/forgot: the form with a new image.
func (h *Handler) forgotPage(w http.ResponseWriter, r *http.Request) {
	id, _ := authRequestParam(r)
	token := h.ensureCSRF(w, r)
	h.renderForgot(w, r, h.forgotView(id, ""), storage.ChallengeImage, token, false, false)
}

// forgotSubmit is POST /login/forgot. The CAPTCHA is checked before anything
// looks at the address; past it, the address only has to look like one, and
// the answer is the same 303 whatever it is: RequestRecovery records a job
// and the background worker decides. Only the client address's quotas (of
// all requests, and of those answered by a question) stop it, answered
// « Trop de tentatives » whatever the e-mail address.
func (h *Handler) forgotSubmit(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id, _ := authRequestParam(r)
	token, _ := h.browserToken(r) // present: postForm checked it
	f := readFields(r, "email", "captcha", "challenge", "kind")
	kind := storage.ChallengeImage
	if f.get("kind") == storage.ChallengeQuestion {
		kind = storage.ChallengeQuestion
	}

	// « Nouvelle image » and the question alternative post the form, so the
	// typed address is kept; the current challenge is spent.
	if pressed(r, "refresh") || pressed(r, "question") {
		if err := h.discardChallenge(ctx, f.get("challenge")); err != nil {
			h.internalError(w, r, "discarding challenge", err)
			return
		}
		kind = storage.ChallengeImage
		if pressed(r, "question") {
			kind = storage.ChallengeQuestion
		}
		v := h.forgotView(id, f.get("email"))
		v.markBad(f.bad)
		h.renderForgot(w, r, v, kind, token, false, false)
		return
	}

	email := strings.TrimSpace(f.get("email"))
	v := h.forgotView(id, email)
	v.markBad(f.bad)
	wrongKey := "captcha:wrong:" + h.clientKey(r)
	// The challenge is spent, whatever comes next, in the read of the
	// address's wrong-answer throttle.
	challengeID := challengeParam(f.get("challenge"))
	challenge, wrong, err := h.challenges.TakeChallenge(ctx, challengeID, wrongKey, h.now())
	if err != nil {
		h.internalError(w, r, "taking the challenge and its throttle", err)
		return
	}
	if challenge == nil {
		// Spent: by this very form, accepted moments ago (receipt.go)?
		again, err := h.postedAgain(ctx, challengeID, token, email, f.get("captcha"))
		if err != nil {
			h.internalError(w, r, "reading the challenge's receipt", err)
			return
		}
		if again {
			h.log.InfoContext(ctx, "recovery form posted again once accepted: the same confirmation, nothing queued")
			http.Redirect(w, r, link(pathForgotSent, id), http.StatusSeeOther)
			return
		}
	}
	if account.TooSoon(wrong.LastFailureAt, h.now(), account.ThrottleDelay(wrong.DecayedAt(h.now(), account.AddressDecay), freeWrongAnswers)) {
		// Too soon after too many wrong answers: the challenge is spent
		// unread, and none is drawn.
		h.renderForgot(w, r, v, kind, token, false, true)
		return
	}
	if !h.solves(challenge, f.get("captcha"), token) {
		if _, err := h.challenges.AddDecayingFailure(ctx, wrongKey, account.AddressDecay, h.now()); err != nil {
			h.internalError(w, r, "counting wrong answers", err)
			return
		}
		h.renderForgot(w, r, v, kind, token, true, false)
		return
	}
	if len(v.Errors) == 0 {
		switch {
		case email == "":
			v.fieldError("email", msg("error.email_needed"))
		case !plausibleEmail(email):
			v.fieldError("email", msg("error.email_format"))
		}
	}
	if len(v.Errors) > 0 {
		h.renderForgot(w, r, v, kind, token, false, false)
		return
	}
	over, err := h.overQuestionQuota(ctx, r, challenge)
	if err != nil {
		h.internalError(w, r, "counting question-answered requests", err)
		return
	}
	if over {
		h.log.InfoContext(ctx, "recovery request refused: the address's quota of question-answered requests is used up")
		h.renderForgot(w, r, v, kind, token, false, true)
		return
	}
	err = h.accounts.RequestRecovery(ctx, email, h.meta(r, id), h.receipt(challenge.ID, token, email, f.get("captcha")))
	if errors.Is(err, account.ErrThrottled) {
		// Nothing was queued: the confirmation page would promise a mail
		// that never comes.
		h.renderForgot(w, r, v, kind, token, false, true)
		return
	}
	if err != nil {
		h.internalError(w, r, "recording recovery request", err)
		return
	}
	http.Redirect(w, r, link(pathForgotSent, id), http.StatusSeeOther)
}

// overQuestionQuota counts a request whose challenge was a question on its
// address and tells whether it is past the quota. The kind is the stored
// challenge's, not the form's, which a program writes as it likes.
func (h *Handler) overQuestionQuota(ctx context.Context, r *http.Request, c *storage.Challenge) (bool, error) {
	if c.Kind != storage.ChallengeQuestion {
		return false, nil
	}
	n, err := h.challenges.HitCounter(ctx, "captcha:question:"+h.clientKey(r), questionWindow, h.now())
	if err != nil {
		return false, err
	}
	return n > maxQuestionRecoveriesPerWindow, nil
}

// renderForgot draws a new challenge of kind into the form and renders it.
// captchaFailed puts « la vérification du texte a échoué » next to the
// answer field. When throttled (or when drawing hits the throttle) the form
// comes without a challenge, with status 429.
func (h *Handler) renderForgot(w http.ResponseWriter, r *http.Request, v *view, kind, token string, captchaFailed, throttled bool) {
	v.CSRF = token
	data := forgotPageData{Question: kind == storage.ChallengeQuestion}
	if !throttled {
		ch, question, drawn, err := h.newChallenge(r.Context(), r, kind, token)
		if err != nil {
			h.internalError(w, r, "drawing challenge", err)
			return
		}
		throttled = !drawn
		data.Challenge = ch
		if drawn {
			answer := field{ID: "captcha", Type: "text", Label: msg("captcha.label"), Hint: msg("captcha.hint"),
				Autocomplete: "off", Verbatim: true}
			if kind == storage.ChallengeQuestion {
				answer.Label, answer.Hint, answer.InputMode = question, msg("captcha.question_hint"), "numeric"
			}
			v.addField(answer)
			if captchaFailed {
				v.fieldError("captcha", msg("captcha.failed"))
			}
		}
	}
	status := http.StatusOK
	if throttled {
		v.formError(msg("captcha.throttled"))
		status = http.StatusTooManyRequests
	}
	v.Data = data
	h.render(w, r, status, "forgot", v)
}

// newChallenge stores a new challenge bound to the browser and returns what
// the form shows of it; drawn is false beyond the per-address throttle.
func (h *Handler) newChallenge(ctx context.Context, r *http.Request, kind, token string) (ch challengeView, question message, drawn bool, err error) {
	now := h.now()
	ch = challengeView{ID: storage.NewID(), Kind: kind}
	var answer string
	if kind == storage.ChallengeQuestion {
		question, answer, err = h.captcha.questionChallenge()
	} else {
		answer, err = h.captcha.imageText()
	}
	if err != nil {
		return challengeView{}, message{}, false, err
	}
	// The per-address count and the challenge it allows in one write; the
	// image is drawn only once the challenge is stored, so that an address
	// over its count costs no drawing.
	n, err := h.challenges.CreateCountedChallenge(ctx, "captcha:new:"+h.clientKey(r), captchaWindow, maxChallengesPerWindow,
		storage.Challenge{
			ID: ch.ID, Kind: kind, AnswerHash: h.captcha.answerHash(answer),
			BindingHash: h.captcha.bindingHash(token), CreatedAt: now, ExpiresAt: now.Add(h.cfg.CaptchaTTL),
		}, now)
	if err != nil {
		return challengeView{}, message{}, false, fmt.Errorf("storing challenge: %w", err)
	}
	if n > maxChallengesPerWindow {
		return challengeView{}, message{}, false, nil
	}
	if kind != storage.ChallengeQuestion {
		if ch.Image, err = h.captcha.drawImage(answer); err != nil {
			return challengeView{}, message{}, false, err
		}
	}
	return ch, question, true, nil
}

// solves compares the answer to the challenge, taken from the store (one
// try, right or wrong), exactly, and checks that this browser got the
// challenge. Missing, unknown, expired and replayed challenges (nil) are
// wrong.
func (h *Handler) solves(c *storage.Challenge, answer, token string) bool {
	if c == nil || answer == "" || len(answer) > maxAnswerBytes || token == "" {
		return false
	}
	bound := h.captcha.matchesBinding(token, c.BindingHash)
	right := h.captcha.matches(answer, c.AnswerHash)
	return bound && right
}

// challengeParam is the posted challenge id, or "" (no challenge has it)
// when it cannot be one.
func challengeParam(id string) string {
	if len(id) > maxChallengeID {
		return ""
	}
	return id
}

// discardChallenge spends a challenge the agent asked to replace.
func (h *Handler) discardChallenge(ctx context.Context, challengeID string) error {
	if challengeID == "" || len(challengeID) > maxChallengeID {
		return nil
	}
	if _, err := h.challenges.ConsumeChallenge(ctx, challengeID, h.now()); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("consuming challenge: %w", err)
	}
	return nil
}

// forgotSentPage is GET /login/forgot/sent: the same confirmation for every
// request, since it knows nothing of the address.
func (h *Handler) forgotSentPage(w http.ResponseWriter, r *http.Request) {
	id, _ := authRequestParam(r)
	h.render(w, r, http.StatusOK, "sent", newView(msg("sent.title"), id))
}
