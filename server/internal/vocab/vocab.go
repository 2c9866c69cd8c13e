// Package vocab is the central's log vocabulary: every action and every key
// the central and its commands log, declared once. A line is built from these
// (logfmt.Logger) and a test waits for one built the same way, so a name
// changes here or nowhere. One action per event, one event per action; keys
// in the course's Spanish. The course's own lines (apuesta_recibida, sorteo)
// keep their exact text; keys after the course's are extra, which its parsers
// accept.
package vocab

import "lotterycentral.example/lottery/logfmt"

// Actions: what happened.
const (
	// The course's lines.
	ApuestaRecibida logfmt.Action = "apuesta_recibida" // a batch stored (success) or refused (fail), with its cantidad
	Sorteo          logfmt.Action = "sorteo"           // the draw ran, once

	// Start, configuration, stop.
	Config                logfmt.Action = "config"       // the configuration read, or why it could not be
	TLS                   logfmt.Action = "tls"          // the transport: mutual TLS, or plaintext with a warning
	Iniciar               logfmt.Action = "iniciar"      // the central could not start
	Escuchar              logfmt.Action = "escuchar"     // the agencies' listener
	Recuperacion          logfmt.Action = "recuperacion" // reading back the bets file and journal at start
	Signal                logfmt.Action = "signal"       // SIGTERM or SIGINT received
	Shutdown              logfmt.Action = "shutdown"     // the central stopping
	CerrarListener        logfmt.Action = "cerrar_listener"
	EsperarConexiones     logfmt.Action = "esperar_conexiones" // connections still open at the shutdown deadline
	CerrarArchivoApuestas logfmt.Action = "cerrar_archivo_apuestas"
	TestServer            logfmt.Action = "test_server" // the health probe (server health)

	// Connections.
	AceptarConexion    logfmt.Action = "aceptar_conexion"    // accepted (DEBUG), or refused at a cap
	TLSHandshake       logfmt.Action = "tls_handshake"       // a failed handshake, with its motivo
	Autorizacion       logfmt.Action = "autorizacion"        // HELLO for an agency the certificate does not name
	Identificacion     logfmt.Action = "identificacion"      // HELLO accepted
	ReemplazarConexion logfmt.Action = "reemplazar_conexion" // an agency's new connection took over its old one
	Protocolo          logfmt.Action = "protocolo"           // a connection ended with an ERROR, its motivo the code
	Enviar             logfmt.Action = "enviar"              // a write to an agency failed
	CerrarConexion     logfmt.Action = "cerrar_conexion"

	// The round.
	RechazoLote           logfmt.Action = "rechazo_lote"           // why a batch was refused
	GuardarApuestas       logfmt.Action = "guardar_apuestas"       // a write or fsync of the bets file failed
	RepararAlmacenamiento logfmt.Action = "reparar_almacenamiento" // the bets file healed after such a failure
	GuardarFin            logfmt.Action = "guardar_fin"            // a FINISH the journal could not record
	FinApuestas           logfmt.Action = "fin_apuestas"           // a FINISH recorded
	EsperandoAgencias     logfmt.Action = "esperando_agencias"     // the agencies the draw still waits for
	EsperaSorteo          logfmt.Action = "espera_sorteo"          // an agency parked for the draw, or gone while parked
	EnvioGanadores        logfmt.Action = "envio_ganadores"        // an agency's winners sent

	// The operator.
	ExcluirAgencia logfmt.Action = "excluir_agencia" // an agency excluded from the draw, or why not
	Revocaciones   logfmt.Action = "revocaciones"    // the revocation list in force: read at start, reloaded, or a reload refused

	// The admin listener.
	EscucharAdmin logfmt.Action = "escuchar_admin"
	AdminHTTP     logfmt.Action = "admin_http" // what net/http reports of it
	CerrarAdmin   logfmt.Action = "cerrar_admin"
	RechazoAdmin  logfmt.Action = "rechazo_admin" // a request the admin listener refused: an action or the profiler to a non-operator
	OrdenAdmin    logfmt.Action = "orden_admin"   // server exclude, server reload: what the central answered

	// The certificate command.
	Certs           logfmt.Action = "certs"            // the whole run
	Certificado     logfmt.Action = "certificado"      // one certificate (and its key) made or replaced
	Revocar         logfmt.Action = "revocar"          // one certificate put on the revocation list
	ListaRevocacion logfmt.Action = "lista_revocacion" // the revocation list file written (or kept, by -revoke)
)

// Keys: what a value is.
const (
	Agencia                    logfmt.Key = "agencia"             // an agency's number
	Agencias                   logfmt.Key = "agencias"            // how many agencies
	AgenciaCertificado         logfmt.Key = "agencia_certificado" // the agency a peer's certificate names
	AgenciaDeclarada           logfmt.Key = "agencia_declarada"   // the agency a HELLO claims
	AgenciasConApuestas        logfmt.Key = "agencias_con_apuestas"
	AgenciasExcluidas          logfmt.Key = "agencias_excluidas" // excluded from the draw by the operator
	AgenciasFinalizadas        logfmt.Key = "agencias_finalizadas"
	AgenciasPendientes         logfmt.Key = "agencias_pendientes" // how many the draw still waits for
	Almacenadas                logfmt.Key = "almacenadas"         // an agency's bets stored for good
	Apuesta                    logfmt.Key = "apuesta"             // a bet's index in its batch
	Apuestas                   logfmt.Key = "apuestas"            // a number of bets
	Archivo                    logfmt.Key = "archivo"
	ArchivoApuestas            logfmt.Key = "archivo_apuestas" // SERVER_STORAGE_PATH
	Aviso                      logfmt.Key = "aviso"
	Bytes                      logfmt.Key = "bytes"
	BytesRecortadosApuestas    logfmt.Key = "bytes_recortados_apuestas" // a torn last row cut off the bets file at start
	BytesRecortadosDiario      logfmt.Key = "bytes_recortados_diario"   // the same for the FINISH journal
	BytesRecortadosOperador    logfmt.Key = "bytes_recortados_operador" // the same for the operator journal
	CAAgencias                 logfmt.Key = "ca_agencias"
	Cantidad                   logfmt.Key = "cantidad" // a batch's bets
	CantGanadores              logfmt.Key = "cant_ganadores"
	CertificadoTLS             logfmt.Key = "certificado" // the central's certificate file
	CodigoHTTP                 logfmt.Key = "codigo_http" // an HTTP answer's status code
	Conexiones                 logfmt.Key = "conexiones"
	Cortadas                   logfmt.Key = "cortadas" // the agencies whose live connections a reload closed, compactly
	Creados                    logfmt.Key = "creados"
	Detalle                    logfmt.Key = "detalle"
	Direccion                  logfmt.Key = "direccion"
	Directorio                 logfmt.Key = "directorio"
	Duracion                   logfmt.Key = "duracion"
	EsperaHello                logfmt.Key = "espera_hello"       // SERVER_HELLO_TIMEOUT
	EsperaInactividad          logfmt.Key = "espera_inactividad" // SERVER_IDLE_TIMEOUT
	Error                      logfmt.Key = "error"
	Estado                     logfmt.Key = "estado"
	Excluidas                  logfmt.Key = "excluidas"     // the agencies excluded from the draw, compactly ("3", "1-3,7")
	Digesto                    logfmt.Key = "digesto"       // the digest of an agency's stored rows (lottery.Digest), journaled with its FINISH
	DigestoRonda               logfmt.Key = "digesto_ronda" // the round's digest: the draw's input, committed before any winner is sent
	Existentes                 logfmt.Key = "existentes"
	FalloPrevio                logfmt.Key = "fallo_previo" // the storage failure a repair healed
	Filas                      logfmt.Key = "filas"        // rows of the bets file read so far
	Ganadores                  logfmt.Key = "ganadores"
	Host                       logfmt.Key = "host"
	Lote                       logfmt.Key = "lote"  // a batch's sequence number
	Lotes                      logfmt.Key = "lotes" // a number of batches
	MaxConexiones              logfmt.Key = "max_conexiones"
	MaxSinIdentificar          logfmt.Key = "max_sin_identificar"
	MaxSinIdentificarPorOrigen logfmt.Key = "max_sin_identificar_por_origen"
	Mensaje                    logfmt.Key = "mensaje"
	Metodo                     logfmt.Key = "metodo" // an HTTP request's method
	Modo                       logfmt.Key = "modo"
	Motivo                     logfmt.Key = "motivo" // why: a protocol code, a refusal's reason
	NivelLog                   logfmt.Key = "nivel_log"
	NumeroLista                logfmt.Key = "numero_lista" // a revocation list's CRL number: one more at each change
	Operador                   logfmt.Key = "operador"     // an operator's certificate's Common Name
	Orden                      logfmt.Key = "orden"        // an operator's command: exclude, reload
	Pendientes                 logfmt.Key = "pendientes"   // the agencies the draw waits for, compactly ("2,5", "1-3,7")
	Pprof                      logfmt.Key = "pprof"        // SERVER_PPROF: on or off
	Puerto                     logfmt.Key = "puerto"
	Reemplazados               logfmt.Key = "reemplazados"
	ReintentoEn                logfmt.Key = "reintento_en"
	Remoto                     logfmt.Key = "remoto" // a peer's address
	RemotoAnterior             logfmt.Key = "remoto_anterior"
	Revocados                  logfmt.Key = "revocados" // the certificates a revocation list names
	Ruta                       logfmt.Key = "ruta"      // an HTTP request's path
	Senal                      logfmt.Key = "senal"
	Serie                      logfmt.Key = "serie" // a certificate's serial number, hexadecimal
	TLSKey                     logfmt.Key = "tls"
	URL                        logfmt.Key = "url"
)
