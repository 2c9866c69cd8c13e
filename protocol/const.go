// Package protocol is the wire codec between agencies and the lottery central:
// frames, messages, limits and errors. It knows bytes and limits, not lottery
// rules; SPEC.md beside this file defines every message byte by byte.
package protocol

import (
	"errors"
	"fmt"
)

// Version is the protocol version an agency announces in HELLO. Version 2
// added FINISH_ACK's digest; version 3 carries a batch's bets as the rows
// the central stores.
const Version = 3

// DigestSize is the size of FINISH_ACK's digest: a BLAKE3 (Digest).
const DigestSize = 32

// Sizes and limits.
const (
	// HeaderSize is the fixed frame header: type (1 byte) and payload length (4 bytes).
	HeaderSize = 5
	// MaxClientFrame bounds every agency-to-central frame, header included (the course's limit).
	MaxClientFrame = 8192
	// MaxClientPayload is the largest payload an agency may send.
	MaxClientPayload = MaxClientFrame - HeaderSize
	// MaxServerFrame bounds every central-to-agency frame, header included. Winners
	// lists larger than this are split across several WINNERS frames.
	MaxServerFrame = 64 * 1024
	// MaxServerPayload is the largest payload the central sends.
	MaxServerPayload = MaxServerFrame - HeaderSize
	// MaxString is the longest str8 field (the documents of INFORM_AGENCY_WINNERS).
	MaxString = 255
	// MaxText is the longest str16 field (error texts).
	MaxText = 1024
	// batchPrefix is the BATCH payload before its bets: seq (4) and count (2).
	batchPrefix = 6
	// winnersPrefix is the WINNERS payload before its documents: total (4) and count (2).
	winnersPrefix = 6
	// minRowSize is the shortest row of five fields: four commas and LF.
	minRowSize = 5
	// MaxBatchBets is the most bets a BATCH can carry within MaxClientFrame.
	MaxBatchBets = (MaxClientPayload - batchPrefix) / minRowSize
	// NoIndex in BATCH_REJECT means the rejection is not about one bet.
	NoIndex = 0xFFFFFFFF
)

// MsgType identifies a message. Agency-to-central types are below 0x80,
// central-to-agency types have the high bit set.
type MsgType uint8

// Message types.
const (
	MsgHello       MsgType = 0x01
	MsgBatch       MsgType = 0x02
	MsgFinish      MsgType = 0x03
	MsgConsult     MsgType = 0x04
	MsgPing        MsgType = 0x05
	MsgHelloAck    MsgType = 0x81
	MsgBatchAck    MsgType = 0x82
	MsgBatchReject MsgType = 0x83
	MsgFinishAck   MsgType = 0x84
	MsgWinners     MsgType = 0x85
	MsgPong        MsgType = 0x86
	MsgError       MsgType = 0xFF
)

var msgNames = map[MsgType]string{
	MsgHello: "HELLO", MsgBatch: "BATCH", MsgFinish: "FINISH",
	MsgConsult: "CONSULT_AGENCY_WINNERS", MsgPing: "PING",
	MsgHelloAck: "HELLO_ACK", MsgBatchAck: "BATCH_ACK", MsgBatchReject: "BATCH_REJECT",
	MsgFinishAck: "FINISH_ACK", MsgWinners: "INFORM_AGENCY_WINNERS", MsgPong: "PONG",
	MsgError: "ERROR",
}

func (t MsgType) String() string {
	if n, ok := msgNames[t]; ok {
		return n
	}
	return fmt.Sprintf("0x%02x", uint8(t))
}

// Known reports whether t is a message type of this protocol version.
func (t MsgType) Known() bool { _, ok := msgNames[t]; return ok }

// Code says why the central refused something (ERROR and BATCH_REJECT).
type Code uint16

// Error codes.
const (
	CodeMalformed         Code = 1  // the frame or payload does not decode
	CodeUnknownType       Code = 2  // unknown message type
	CodeFrameTooLarge     Code = 3  // header announces more than the limit
	CodeNotIdentified     Code = 4  // a message before HELLO
	CodeAlreadyIdentified Code = 5  // a second HELLO
	CodeBadAgency         Code = 6  // agency outside 1..N
	CodeBadVersion        Code = 7  // unsupported protocol version
	CodeInvalidBet        Code = 8  // a bet fails validation (index says which)
	CodeEmptyBatch        Code = 9  // a batch with no bets
	CodeBadSequence       Code = 10 // replayed or out-of-order batch number
	CodeAfterFinish       Code = 11 // bets or FINISH after this agency's FINISH
	CodeDrawDone          Code = 12 // bets after the draw
	CodeWrongAgency       Code = 13 // a CONSULT for another agency (a row names none)
	CodeNotFinished       Code = 14 // CONSULT before this agency's FINISH
	CodeAgencyBusy        Code = 15 // another live connection holds this agency
	CodeCountMismatch     Code = 16 // FINISH total differs from the bets stored
	CodeStorage           Code = 17 // the central could not store the batch
	CodeShuttingDown      Code = 18 // the central is stopping
	CodeTooManyConns      Code = 19 // connection cap reached
	CodeIdleTimeout       Code = 20 // the peer was idle too long
	CodeUnexpected        Code = 21 // a valid message that makes no sense here
	CodeUnauthorized      Code = 22 // HELLO for an agency the peer's certificate does not name
	CodeExcluded          Code = 23 // HELLO, bets or FINISH of an agency the central's operator excluded from the draw
	CodeRevoked           Code = 24 // the connection's certificate is on the central's revocation list
)

var codeNames = map[Code]string{
	CodeMalformed: "malformed", CodeUnknownType: "unknown_type", CodeFrameTooLarge: "frame_too_large",
	CodeNotIdentified: "not_identified", CodeAlreadyIdentified: "already_identified",
	CodeBadAgency: "bad_agency", CodeBadVersion: "bad_version", CodeInvalidBet: "invalid_bet",
	CodeEmptyBatch: "empty_batch", CodeBadSequence: "bad_sequence", CodeAfterFinish: "after_finish",
	CodeDrawDone: "draw_done", CodeWrongAgency: "wrong_agency", CodeNotFinished: "not_finished",
	CodeAgencyBusy: "agency_busy", CodeCountMismatch: "count_mismatch", CodeStorage: "storage",
	CodeShuttingDown: "shutting_down", CodeTooManyConns: "too_many_connections",
	CodeIdleTimeout: "idle_timeout", CodeUnexpected: "unexpected_message", CodeUnauthorized: "unauthorized",
	CodeExcluded: "excluded", CodeRevoked: "revoked",
}

func (c Code) String() string {
	if n, ok := codeNames[c]; ok {
		return n
	}
	return fmt.Sprintf("code_%d", uint16(c))
}

// Sentinel errors; test them with errors.Is.
var (
	ErrFrameTooLarge = errors.New("frame too large")
	ErrUnknownType   = errors.New("unknown message type")
	ErrTruncated     = errors.New("truncated")
	ErrTrailingBytes = errors.New("trailing bytes")
	ErrMalformed     = errors.New("malformed payload")
	ErrInvalidUTF8   = errors.New("invalid UTF-8")
	ErrStringTooLong = errors.New("string too long")
	ErrEmptyBatch    = errors.New("empty batch")
	ErrBatchFull     = errors.New("batch full")
	ErrShortWrite    = errors.New("short write")
)

// RemoteError is an ERROR or BATCH_REJECT received from the peer, as a Go error.
type RemoteError struct {
	Code  Code
	Index uint32 // the bet BATCH_REJECT is about, or NoIndex
	Text  string
}

func (e *RemoteError) Error() string {
	if e.Index != NoIndex {
		return fmt.Sprintf("refused by peer: %s (bet %d): %s", e.Code, e.Index, e.Text)
	}
	return fmt.Sprintf("refused by peer: %s: %s", e.Code, e.Text)
}
