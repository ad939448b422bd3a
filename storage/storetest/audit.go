package storetest

import (
	"testing"
	"time"

	"github.com/caf-extranet/idp/storage"
)

func auditBehaviours() []behaviour {
	return []behaviour{
		{"AppendAndListNewestFirst", testAuditList},
		{"Filters", testAuditFilters},
	}
}

// addAuditEvents appends three events a minute apart and returns them in
// the order they were appended.
func addAuditEvents(t *testing.T, s storage.Store, now time.Time) []storage.AuditEvent {
	t.Helper()
	events := []storage.AuditEvent{
		newAuditEvent("login.success", "agent@example.fr", now.Add(111*time.Microsecond)),
		newAuditEvent("login.failure", "collegue@example.fr", now.Add(time.Minute)),
		newAuditEvent("recovery.requested", "agent@example.fr", now.Add(2*time.Minute)),
	}
	for _, e := range events {
		mustOK(t, s.AppendAudit(t.Context(), e), "AppendAudit "+e.Type)
	}
	return events
}

// listAudit lists the trail with filter f.
func listAudit(t *testing.T, s storage.Store, f storage.AuditFilter) []storage.AuditEvent {
	t.Helper()
	got, err := s.ListAudit(t.Context(), f)
	mustOK(t, err, "ListAudit")
	return got
}

func assertAuditTypes(t *testing.T, what string, got []storage.AuditEvent, want ...string) {
	t.Helper()
	var types []string
	for _, e := range got {
		types = append(types, e.Type)
	}
	if len(types) != len(want) {
		t.Errorf("%s: got events %q, want %q", what, types, want)
		return
	}
	for i := range types {
		if types[i] != want[i] {
			t.Errorf("%s: got events %q, want %q", what, types, want)
			return
		}
	}
}

func testAuditList(t *testing.T, s storage.Store) {
	now := start()
	events := addAuditEvents(t, s, now)
	got := listAudit(t, s, storage.AuditFilter{})
	assertAuditTypes(t, "ListAudit", got, "recovery.requested", "login.failure", "login.success")
	if len(got) != 3 {
		return
	}
	seen := make(map[int64]bool)
	for i, e := range got {
		if e.ID == 0 || seen[e.ID] {
			t.Errorf("event %s has ID %d: want a distinct non-zero ID", e.Type, e.ID)
		}
		seen[e.ID] = true
		want := events[len(events)-1-i]
		want.ID = e.ID
		assertSame(t, "audit event "+e.Type, e, want)
	}
}

func testAuditFilters(t *testing.T, s storage.Store) {
	now := start()
	addAuditEvents(t, s, now)
	assertAuditTypes(t, "ListAudit by e-mail",
		listAudit(t, s, storage.AuditFilter{Email: "agent@example.fr"}),
		"recovery.requested", "login.success")
	assertAuditTypes(t, "ListAudit since",
		listAudit(t, s, storage.AuditFilter{Since: now.Add(30 * time.Second)}),
		"recovery.requested", "login.failure")
	assertAuditTypes(t, "ListAudit limit",
		listAudit(t, s, storage.AuditFilter{Limit: 2}),
		"recovery.requested", "login.failure")
	assertAuditTypes(t, "ListAudit by e-mail since",
		listAudit(t, s, storage.AuditFilter{Email: "agent@example.fr", Since: now.Add(30 * time.Second)}),
		"recovery.requested")
	assertAuditTypes(t, "ListAudit by an e-mail with no events",
		listAudit(t, s, storage.AuditFilter{Email: "personne@example.fr"}))
}
