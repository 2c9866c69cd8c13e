package central

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// arrived is how many bytes have reached conn's socket and wait to be read:
// reading that many cannot block. 0 when conn is no socket or the kernel
// does not say.
func arrived(conn syscall.RawConn) int {
	if conn == nil {
		return 0
	}
	n := 0
	if err := conn.Control(func(fd uintptr) {
		n, _ = unix.IoctlGetInt(int(fd), unix.SIOCINQ)
	}); err != nil {
		return 0
	}
	return max(n, 0)
}
