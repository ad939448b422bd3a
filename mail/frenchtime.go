package mail

import (
	"fmt"
	"time"

	// The agents read times in Paris time whatever the server's zone, and a
	// slim container image may lack /usr/share/zoneinfo: embed the database.
	_ "time/tzdata"
)

// parisLocation returns Europe/Paris. The embedded tz database makes the
// fallback unreachable in practice; it stays so that a broken build still
// prints a sensible (if summer-time-naive) hour rather than UTC.
func parisLocation() *time.Location {
	loc, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		return time.FixedZone("CET", 60*60)
	}
	return loc
}

// frenchDateTime writes t in Paris time the way a French letter does:
// « jeudi 26 novembre 2026 à 14 h 05 », « mardi 1er décembre 2026 à 9 h 00 ».
func frenchDateTime(t time.Time) string {
	weekdays := [...]string{"dimanche", "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi"}
	months := [...]string{"janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre", "novembre", "décembre"}
	t = t.In(parisLocation())
	day := fmt.Sprint(t.Day())
	if t.Day() == 1 {
		day = "1er"
	}
	return fmt.Sprintf("%s %s %s %d à %d h %02d",
		weekdays[t.Weekday()], day, months[t.Month()-1], t.Year(), t.Hour(), t.Minute())
}
