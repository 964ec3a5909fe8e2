package archive

import "os"

// Option changes how Extract reads its source.
type Option func(*options)

type options struct {
	releaseSource bool
	// step and lag override releaseStep and releaseLag (tests).
	step, lag int64
}

// ReleaseSource tells Extract that the caller will not read src again for
// what was extracted from it (it is the scan's own download): as the
// package's tar stream (a tar, or the compressed stream of a tar.gz) is
// read front to back, the bytes already written out (as entry data, or
// read as headers and as entries refused with a finding) are released
// from the file system (fallocate FALLOC_FL_PUNCH_HOLE), so the work disk
// holds about the expanded size at any moment, not the package plus its
// expansion. src keeps its size; released ranges read as zeros. Bytes not
// read yet (after a corrupt entry) are never released, so an engine that
// reads the package itself still sees them; the part of an entry written
// before its data turned out truncated or corrupt stays in its file. Only
// a bomb (the scan fails) or an error (the scan is retried from a new
// download) drops written data whose source was released. A zip is read
// through its index, not front to back: it is not released. On a file
// system that cannot punch holes nothing is released (Result.ReleasedBytes
// stays 0).
func ReleaseSource() Option { return func(o *options) { o.releaseSource = true } }

const (
	// releaseLag is how far behind the read position released bytes end:
	// a decompressor may have read (not yet delivered) compressed bytes of
	// the next entry; they stay until that entry is written.
	releaseLag = 1 << 20
	// releaseStep is the least a release frees: one system call per
	// 64 MiB read, not one per entry.
	releaseStep = 64 << 20
)

// releaser frees the front of a source file as extraction passes it.
type releaser struct {
	f         *os.File
	step, lag int64
	done      int64 // bytes [0, done) are released
	off       bool  // the file system refused: stop trying
}

// upTo releases the source up to read position n (the bytes of every
// entry written so far end there), less releaseLag, page-aligned.
func (r *releaser) upTo(n int64) {
	if r == nil || r.off {
		return
	}
	end := (n - r.lag) &^ (pageSize - 1)
	if end-r.done < r.step {
		return
	}
	if err := punchHole(r.f, r.done, end-r.done); err != nil {
		// The file system cannot punch holes: the work disk holds the
		// package and its expansion, as before (Result.ReleasedBytes
		// stays where it was; the scan logs it).
		r.off = true
		return
	}
	r.done = end
}

func (r *releaser) released() int64 {
	if r == nil {
		return 0
	}
	return r.done
}

const pageSize = 4096
