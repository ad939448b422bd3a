// Package mail composes the French e-mails the identity provider sends and
// delivers the mail outbox (storage.OutboxMail rows) through SMTP or, when no
// SMTP server is configured, to the log and a folder of .eml files.
//
// Mails are queued in the database in the same transaction as the change they
// announce (see storage.Store.IssueProvisionalPassword and ChangePassword), and
// a Sender on any instance delivers them: a crash between the two never loses
// a mail, and several instances never send one twice while its lease runs.
//
// Bodies can hold a provisional password: nothing in this package ever logs a
// body, and the store clears it once the mail is sent.
package mail
