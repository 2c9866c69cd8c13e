package main

// The log lines these tests wait for. The central's are built from its
// vocabulary (internal/vocab), like the lines it logs; the agency's come from
// the agency constants below.

import (
	"regexp"
	"strings"
)

// The agency's lines that these tests read from the client binary (and its
// containers): the lines of the agency as the course defines them
// (consulta_ganadores with cant_ganadores is the course's own line) and as
// client/internal/vocab declares them. That vocabulary is internal to the
// client module, which this module cannot import, so its texts are copied
// here, once, rather than in every test; a name changed there is changed here.
const (
	agencyConsult    = "action: consulta_ganadores | "                                   // any of its lines
	agencyWinners    = "action: consulta_ganadores | result: success | cant_ganadores: " // its winners received; the count follows
	agencyConnecting = "action: conectar | result: in_progress | "                       // the central not reached yet, retrying
	agencyConnected  = "action: conectar | result: success | "                           // HELLO answered: servidor, almacenadas, finalizada follow
	agencyStored     = "| almacenadas: %d |"                                             // in agencyConnected: its bets the central already held
	agencyConfig     = "action: config | result: success | "                             // its configuration, read
	agencyTLSOn      = "| tls: on |"                                                     // in agencyConfig: mutual TLS
	agencyFileClosed = "action: cerrar_archivo | result: success | archivo: "            // its bets file closed; the path follows
	agencyConnClosed = "action: cerrar_conexion | result: success | servidor: "          // its connection closed; the central's address follows
	agencyShutdown   = "action: shutdown | result: success | "                           // stopped by SIGTERM or SIGINT: motivo and senal follow
)

// pat marks a regular expression in a line given to linePattern, where a
// field's value goes: vocab.Direccion.Str(pat(`(\S+)`)).
func pat(expr string) string { return "\x00" + expr + "\x00" }

// linePattern is the regular expression of line, a line built from the
// vocabulary: its text taken literally but for the values marked with pat.
func linePattern(line string) string {
	parts := strings.Split(line, "\x00")
	for i := 0; i < len(parts); i += 2 {
		parts[i] = regexp.QuoteMeta(parts[i])
	}
	return strings.Join(parts, "")
}
