package lottery

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var testNow = time.Date(2024, 5, 10, 15, 0, 0, 0, time.UTC)

func goodBet() Bet {
	return Bet{
		Agency:    1,
		FirstName: "Santiago Lionel",
		LastName:  "Lorca",
		Document:  "30904465",
		Birthdate: "1999-03-17",
		Number:    2201,
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*Bet)
		field string // "" means valid
	}{
		{"official row", func(*Bet) {}, ""},
		{"accents and ñ", func(b *Bet) { b.FirstName, b.LastName = "Iñaki Tomás", "Núñez" }, ""},
		{"comma and quote in name", func(b *Bet) { b.LastName = `O"Higgins, Jr` }, ""},
		{"name at max length", func(b *Bet) { b.FirstName = strings.Repeat("a", MaxNameLen) }, ""},
		{"one-digit document", func(b *Bet) { b.Document = "7" }, ""},
		{"ten-digit document", func(b *Bet) { b.Document = "1234567890" }, ""},
		{"born today", func(b *Bet) { b.Birthdate = "2024-05-10" }, ""},
		{"born 1900-01-01", func(b *Bet) { b.Birthdate = "1900-01-01" }, ""},
		{"born February 29 of 2000", func(b *Bet) { b.Birthdate = "2000-02-29" }, ""},
		{"born December 31", func(b *Bet) { b.Birthdate = "1999-12-31" }, ""},
		{"leap day", func(b *Bet) { b.Birthdate = "2000-02-29" }, ""},
		{"number 0", func(b *Bet) { b.Number = 0 }, ""},
		{"number 9999", func(b *Bet) { b.Number = 9999 }, ""},

		{"agency 0", func(b *Bet) { b.Agency = 0 }, "agency"},
		{"empty first name", func(b *Bet) { b.FirstName = "" }, "first_name"},
		{"blank first name", func(b *Bet) { b.FirstName = "   " }, "first_name"},
		{"empty last name", func(b *Bet) { b.LastName = "" }, "last_name"},
		{"over-long name", func(b *Bet) { b.LastName = strings.Repeat("a", MaxNameLen+1) }, "last_name"},
		{"over-long in bytes, not runes", func(b *Bet) { b.LastName = strings.Repeat("ñ", MaxNameLen/2+1) }, "last_name"},
		{"invalid UTF-8", func(b *Bet) { b.FirstName = "Jos\xe9" }, "first_name"},
		{"newline in name", func(b *Bet) { b.FirstName = "Ana\nMaría" }, "first_name"},
		{"carriage return in name", func(b *Bet) { b.LastName = "Paz\r" }, "last_name"},
		{"NUL in name", func(b *Bet) { b.LastName = "Paz\x00" }, "last_name"},
		{"empty document", func(b *Bet) { b.Document = "" }, "document"},
		{"non-digit document", func(b *Bet) { b.Document = "30.904.465" }, "document"},
		{"non-ASCII digit document", func(b *Bet) { b.Document = "３0904465" }, "document"},
		{"over-long document", func(b *Bet) { b.Document = "12345678901" }, "document"},
		{"February 30", func(b *Bet) { b.Birthdate = "2023-02-30" }, "birthdate"},
		{"February 29 of a common year", func(b *Bet) { b.Birthdate = "2023-02-29" }, "birthdate"},
		{"February 29 of 1900, not a leap year", func(b *Bet) { b.Birthdate = "1900-02-29" }, "birthdate"},
		{"April 31", func(b *Bet) { b.Birthdate = "1990-04-31" }, "birthdate"},
		{"month 0", func(b *Bet) { b.Birthdate = "1990-00-10" }, "birthdate"},
		{"day 0", func(b *Bet) { b.Birthdate = "1990-01-00" }, "birthdate"},
		{"signed year", func(b *Bet) { b.Birthdate = "+990-01-01" }, "birthdate"},
		{"month 13", func(b *Bet) { b.Birthdate = "2023-13-01" }, "birthdate"},
		{"unpadded date", func(b *Bet) { b.Birthdate = "1990-1-2" }, "birthdate"},
		{"day first", func(b *Bet) { b.Birthdate = "17-03-1999" }, "birthdate"},
		{"trailing space", func(b *Bet) { b.Birthdate = "1999-03-17 " }, "birthdate"},
		{"empty birthdate", func(b *Bet) { b.Birthdate = "" }, "birthdate"},
		{"before 1900", func(b *Bet) { b.Birthdate = "1899-12-31" }, "birthdate"},
		{"tomorrow", func(b *Bet) { b.Birthdate = "2024-05-11" }, "birthdate"},
		{"far future", func(b *Bet) { b.Birthdate = "2999-01-01" }, "birthdate"},
		{"number -1", func(b *Bet) { b.Number = -1 }, "number"},
		{"number 10000", func(b *Bet) { b.Number = 10000 }, "number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := goodBet()
			tt.edit(&b)
			err := b.Validate(testNow)
			if tt.field == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrInvalidBet)
			var fe *FieldError
			require.True(t, errors.As(err, &fe), "want a *FieldError, got %T", err)
			assert.Equal(t, tt.field, fe.Field)
			assert.True(t, strings.HasPrefix(err.Error(), "invalid bet: "+tt.field+": "), err.Error())
		})
	}
}

func TestValidateUsesNowsDate(t *testing.T) {
	// Late in the evening west of UTC it is already tomorrow in UTC; the caller's date counts.
	late := time.Date(2024, 5, 10, 23, 30, 0, 0, time.FixedZone("ART", -3*60*60))
	b := goodBet()
	b.Birthdate = "2024-05-10"
	require.NoError(t, b.Validate(late))
	b.Birthdate = "2024-05-11"
	require.ErrorIs(t, b.Validate(late), ErrInvalidBet)
}

func TestHasWon(t *testing.T) {
	b := goodBet()
	assert.False(t, HasWon(b))
	b.Number = WinningNumber
	assert.True(t, HasWon(b))
}

// The kept date never answers for another now: alternating days and zones.
func TestBirthdateFutureAcrossNows(t *testing.T) {
	utc := time.Date(2024, 6, 1, 23, 30, 0, 0, time.UTC)
	east := utc.In(time.FixedZone("UTC+2", 2*60*60)) // already 2 June there
	tests := []struct {
		name string
		now  time.Time
		date string
		want string
	}{
		{"today in UTC", utc, "2024-06-01", ""},
		{"tomorrow in UTC", utc, "2024-06-02", "in the future"},
		{"the same instant, east: already that day", east, "2024-06-02", ""},
		{"back in UTC", utc, "2024-06-02", "in the future"},
		{"a day later", utc.Add(24 * time.Hour), "2024-06-02", ""},
		{"a second before", utc.Add(-time.Second), "2024-06-02", "in the future"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, checkBirthdate(tt.date, today(tt.now)))
		})
	}
}
