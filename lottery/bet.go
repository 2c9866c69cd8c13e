// Package lottery is the domain of the lottery central: a bet, its validation, the draw
// rule, the central's bets file and the agencies' CSV files.
package lottery

// WinningNumber is the number that wins the draw.
const WinningNumber = 7574

// Limits on a bet's text fields, so one bet cannot grow without bound.
const (
	MaxNameLen     = 100 // bytes, per name field
	MaxDocumentLen = 10  // digits
)

// Bet is one row taken by an agency. A bet is a row: two bets may carry the same document.
type Bet struct {
	Agency    int
	FirstName string
	LastName  string
	Document  string // digits only, 1..MaxDocumentLen
	Birthdate string // YYYY-MM-DD
	Number    int    // 0..9999
}

// HasWon reports whether b won the draw.
func HasWon(b Bet) bool {
	return b.Number == WinningNumber
}
