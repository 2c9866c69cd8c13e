// Package vocab is the agency's log vocabulary: every action and every key
// the agency logs, declared once. A line is built from these
// (logfmt.Logger) and a test waits for one built the same way. One action
// per event, one event per action; keys in the course's Spanish. The course's
// own line (consulta_ganadores with cant_ganadores) keeps its exact text.
package vocab

import "lotterycentral.example/lottery/logfmt"

// Actions: what happened.
const (
	// The course's line: the agency's winners, received.
	ConsultaGanadores logfmt.Action = "consulta_ganadores"

	Config           logfmt.Action = "config"            // the configuration read, or why it could not be
	TLS              logfmt.Action = "tls"               // the transport: mutual TLS, or plaintext with a warning
	Conectar         logfmt.Action = "conectar"          // reaching the central and saying HELLO
	TLSHandshake     logfmt.Action = "tls_handshake"     // a handshake the central or the agency refused
	Conexion         logfmt.Action = "conexion"          // a connection lost, retried
	EnvioApuestas    logfmt.Action = "envio_apuestas"    // streaming the bets file
	FinApuestas      logfmt.Action = "fin_apuestas"      // FINISH acknowledged
	VerificarConteo  logfmt.Action = "verificar_conteo"  // the central's count against the agency's file
	VerificarDigesto logfmt.Action = "verificar_digesto" // the central's digest against the agency's file
	LeerArchivo      logfmt.Action = "leer_archivo"      // the agency's bets file could not be read
	CerrarArchivo    logfmt.Action = "cerrar_archivo"
	CerrarConexion   logfmt.Action = "cerrar_conexion"
	Shutdown         logfmt.Action = "shutdown" // stopped by SIGTERM or SIGINT
)

// Keys: what a value is.
const (
	Almacenadas        logfmt.Key = "almacenadas"         // bets the central holds of this agency
	AlmacenadasCentral logfmt.Key = "almacenadas_central" // the central's count, when it disagrees
	Apuestas           logfmt.Key = "apuestas"
	ApuestasArchivo    logfmt.Key = "apuestas_archivo" // the agency file's count, when it disagrees
	Archivo            logfmt.Key = "archivo"
	Aviso              logfmt.Key = "aviso"
	CantGanadores      logfmt.Key = "cant_ganadores"
	Digesto            logfmt.Key = "digesto"         // the digest of the agency's bets: its file's, which the central's matched
	DigestoArchivo     logfmt.Key = "digesto_archivo" // the agency file's digest, when the central's disagrees
	DigestoCentral     logfmt.Key = "digesto_central" // the central's digest, when it disagrees
	Enviadas           logfmt.Key = "enviadas"
	Error              logfmt.Key = "error"
	EsperaConexion     logfmt.Key = "espera_conexion"  // CLI_CONNECT_TIMEOUT
	EsperaRespuesta    logfmt.Key = "espera_respuesta" // CLI_REPLY_TIMEOUT
	Finalizada         logfmt.Key = "finalizada"
	ID                 logfmt.Key = "id"
	Intento            logfmt.Key = "intento"
	LoteMax            logfmt.Key = "lote_max" // CLI_BATCH_MAXAMOUNT
	Lotes              logfmt.Key = "lotes"
	MaxReintentos      logfmt.Key = "max_reintentos"
	Modo               logfmt.Key = "modo"
	Motivo             logfmt.Key = "motivo"
	NivelLog           logfmt.Key = "nivel_log"
	NombreServidorTLS  logfmt.Key = "nombre_servidor_tls"
	Reintento          logfmt.Key = "reintento"
	ReintentoEn        logfmt.Key = "reintento_en"
	Senal              logfmt.Key = "senal"
	Servidor           logfmt.Key = "servidor"
	TLSKey             logfmt.Key = "tls"
	YaAlmacenadas      logfmt.Key = "ya_almacenadas"
)
