package loginui

import (
	"context"
	"time"

	"github.com/caf-extranet/idp/storage"
)

// A double click on « Valider » of « Mot de passe oublié ? » posts the form
// twice, and the browser shows the answer to the second. The first solved
// the challenge and spent it; the second, finding it spent, was answered
// « la vérification du texte a échoué » with a new image, although a
// provisional password was on its way (and solved again, a second one
// replaced it). Once a request is accepted, its challenge's receipt is
// recorded in the database, shared by every instance: the same form posted
// again by the same browser within resubmitWindow gets the same 303 to the
// confirmation, with no second recovery job and no wrong answer counted.
//
// It opens no way past the CAPTCHA: the receipt names the challenge, the
// browser that solved it (its CSRF cookie, as the challenge's binding), the
// address and the answer, under the challenge key, so that another browser,
// another address, or the same form after the window, is refused as any
// spent challenge is. A browser cookie would not do: the second click of a
// double click leaves before the first answer, and its cookie, comes back.

// resubmitWindow is how long an accepted form may be posted again and get
// the same answer.
const resubmitWindow = 2 * time.Minute

// receipt names the acceptance of the form that answered challengeID with
// answer for email, from the browser whose CSRF token is token, for
// resubmitWindow. It is recorded with the recovery job, in the same write:
// a write of its own cost PostgreSQL's forgot a tenth of its throughput.
func (h *Handler) receipt(challengeID, token, email, answer string) storage.ChallengeReceipt {
	return storage.ChallengeReceipt{ID: h.receiptID(challengeID, token, email, answer), ExpiresAt: h.now().Add(resubmitWindow)}
}

func (h *Handler) receiptID(challengeID, token, email, answer string) string {
	return h.captcha.mac("forgot receipt\x00" + challengeID + "\x00" + token + "\x00" +
		storage.NormaliseEmail(email) + "\x00" + answer)
}

// postedAgain tells whether a form whose challenge was already spent is one
// this browser had accepted within resubmitWindow.
func (h *Handler) postedAgain(ctx context.Context, challengeID, token, email, answer string) (bool, error) {
	if challengeID == "" || token == "" || answer == "" || len(answer) > maxAnswerBytes {
		return false, nil
	}
	return h.challenges.ChallengeReceipt(ctx, h.receiptID(challengeID, token, email, answer), h.now())
}
