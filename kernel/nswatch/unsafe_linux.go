//go:build linux

package nswatch

import "unsafe"

func unsafePointer(b []byte, off int) unsafe.Pointer { return unsafe.Pointer(&b[off]) }
