package storetest

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// RandomID is the n-th of a fixed series of random-looking v4 UUIDs: request
// ids for the stores' benchmarks, which land on random pages of an index
// keyed by them as real ones do, the same in every run.
func RandomID(n int) string {
	h := sha256.Sum256(binary.BigEndian.AppendUint64(nil, uint64(n)))
	return fmt.Sprintf("%x-%x-4%x-8%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])[:36]
}
