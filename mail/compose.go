package mail

import (
	"strings"
	"time"

	"github.com/caf-extranet/idp/storage"
)

// Subjects. The agents' procedure names the provisional-password mail by its
// subject, so onboarding and recovery share it.
const (
	SubjectPassword        = "Votre mot de passe"
	SubjectPasswordChanged = "Votre mot de passe a été modifié"
)

// DefaultPortalName is used when Portal.Name is empty.
const DefaultPortalName = "Portail Extranet"

// Portal is how the mails name and point to the login pages.
type Portal struct {
	// URL is the configured issuer (or its login page): never a request's
	// Host header, which an attacker chooses and would turn the mail into a
	// phishing link carrying a genuine password.
	URL string
	// Name is what the agents call the portal, e.g. « Portail Extranet ».
	Name string
}

func (p Portal) name() string {
	if strings.TrimSpace(p.Name) == "" {
		return DefaultPortalName
	}
	return p.Name
}

const footer = "Ce message vous est envoyé automatiquement ; merci de ne pas y répondre."

func greeting(displayName string) string {
	if name := strings.TrimSpace(displayName); name != "" {
		return "Bonjour " + name + ","
	}
	return "Bonjour,"
}

// loginSteps tells the agent what to do with a provisional password.
func loginSteps(p Portal) block {
	return steps(
		line{Text: "Rendez-vous sur le " + p.name() + " :", URL: p.URL},
		line{Text: "Connectez-vous avec votre adresse e-mail et ce mot de passe provisoire."},
		line{Text: "Il vous sera ensuite demandé de choisir votre mot de passe personnel."},
	)
}

func expiryParagraph(expires time.Time) block {
	return paragraph("Ce mot de passe provisoire est valable jusqu'au " + frenchDateTime(expires) +
		" (heure de Paris). Passé ce délai, utilisez « Mot de passe oublié ? » sur le portail pour en recevoir un nouveau.")
}

// ProvisionalPassword is the mail of the « Mot de passe oublié ? » procedure:
// it carries the provisional password the agent asked for. The returned mail
// is pending, due at now, with a fresh random id.
func ProvisionalPassword(p Portal, to, displayName, password string, expires, now time.Time) storage.OutboxMail {
	d := document{
		PortalName: p.name(),
		Subject:    SubjectPassword,
		Greeting:   greeting(displayName),
		Blocks: []block{
			paragraph("Vous avez demandé un nouveau mot de passe pour accéder au " + p.name() + ". Voici votre mot de passe provisoire :"),
			secret(password),
			expiryParagraph(expires),
			heading("Pour vous connecter :"),
			loginSteps(p),
			heading("Vous n'avez rien demandé ?"),
			paragraph("Ignorez ce message : votre mot de passe actuel reste valable. " +
				"Si vous recevez de nouveau ce message sans l'avoir demandé, prévenez votre gestionnaire d'habilitations."),
		},
		Footer: footer,
	}
	return outboxMail(to, d, now)
}

// AccountCreated is the onboarding mail: an administrator created the agent's
// account, and this provisional password is its first one.
func AccountCreated(p Portal, to, displayName, password string, expires, now time.Time) storage.OutboxMail {
	d := document{
		PortalName: p.name(),
		Subject:    SubjectPassword,
		Greeting:   greeting(displayName),
		Blocks: []block{
			paragraph("Un administrateur vient de vous créer un compte pour accéder au " + p.name() + ". Voici votre mot de passe provisoire :"),
			secret(password),
			expiryParagraph(expires),
			heading("Pour vous connecter :"),
			loginSteps(p),
			heading("Vous n'attendiez pas ce message ?"),
			paragraph("Ne vous connectez pas et prévenez votre gestionnaire d'habilitations, qui pourra désactiver ce compte."),
		},
		Footer: footer,
	}
	return outboxMail(to, d, now)
}

// PasswordChanged tells the agent its personal password was changed at `at`,
// so that a change it did not make is noticed. It carries no password.
func PasswordChanged(p Portal, to, displayName string, at, now time.Time) storage.OutboxMail {
	d := document{
		PortalName: p.name(),
		Subject:    SubjectPasswordChanged,
		Greeting:   greeting(displayName),
		Blocks: []block{
			paragraph("Le mot de passe de votre compte sur le " + p.name() + " a été modifié le " +
				frenchDateTime(at) + " (heure de Paris)."),
			paragraph("Si vous êtes à l'origine de cette modification, vous n'avez rien à faire."),
			heading("Ce n'est pas vous ?"),
			steps(
				line{Text: "Utilisez immédiatement « Mot de passe oublié ? » sur le portail pour recevoir un nouveau mot de passe :", URL: p.URL},
				line{Text: "Prévenez votre gestionnaire d'habilitations."},
			),
		},
		Footer: footer,
	}
	return outboxMail(to, d, now)
}

func outboxMail(to string, d document, now time.Time) storage.OutboxMail {
	return storage.OutboxMail{
		ID:            storage.NewID(),
		To:            to,
		Subject:       d.Subject,
		TextBody:      renderText(d),
		HTMLBody:      renderHTML(d),
		Status:        storage.MailPending,
		NextAttemptAt: now,
		CreatedAt:     now,
	}
}
