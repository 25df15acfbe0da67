package sctpnet

import "sync"

// PieceSize is the size of the buffers ReadMessagePieces reads into: what
// the kernel hands over in one recvmsg(2) during partial delivery.
const PieceSize = 64 << 10

// pieces holds the buffers of ReadMessagePieces, shared by all Conns.
var pieces = sync.Pool{New: func() any { b := make([]byte, PieceSize); return &b }}

func getPiece() []byte { return *pieces.Get().(*[]byte) }

// ReleasePieces returns the buffers of a message read with
// ReadMessagePieces to the pool once the caller is done with them, and
// returns p[:0] to pass to the next ReadMessagePieces.
func ReleasePieces(p [][]byte) [][]byte {
	for i, b := range p {
		if cap(b) == PieceSize {
			b = b[:PieceSize]
			pieces.Put(&b)
		}
		p[i] = nil
	}
	return p[:0]
}
