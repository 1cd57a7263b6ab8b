package storage

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/cloudpacs/pacs/internal/dcm"
)

// Sentinel errors. Backends translate their own errors into these at the
// boundary and wrap the rest: fmt.Errorf("fsblob: open %q: %w", key, err).
var (
	ErrNotFound    = errors.New("not found")
	ErrExists      = errors.New("already exists with different content")
	ErrUnavailable = errors.New("storage unavailable")
	ErrConflict    = errors.New("conflict") // e.g. study UID in the path does not match the instance
	// ErrInvalidKey: a blob key that is empty, absolute, or has "..", "."
	// or empty segments or backslashes.
	ErrInvalidKey = errors.New("invalid blob key")
	// ErrUnsupportedMatch: a QIDO matching key the index cannot match on
	// (at that level). The error text names the attribute; the HTTP layer
	// answers 400 or ignores the key with a Warning header.
	ErrUnsupportedMatch = errors.New("unsupported matching key")
	// ErrBadQuery: a malformed QIDO matching value (e.g. a bad range).
	ErrBadQuery = errors.New("bad query")
)

// BlobInfo describes a committed object.
type BlobInfo struct {
	Key     string
	Size    int64
	ModTime time.Time
}

// BlobStore keeps immutable objects under opaque keys.
type BlobStore interface {
	// Create starts a write; nothing is readable under key until Commit.
	// A cancelled ctx makes Commit fail and discards the data.
	Create(ctx context.Context, key string) (BlobWriter, error)
	// Open reads [off, off+n) of key (n < 0: to the end). Missing key:
	// ErrNotFound. A range past the end is cut at the end.
	Open(ctx context.Context, key string, off, n int64) (io.ReadCloser, error)
	// Stat reports size and time of key, or ErrNotFound.
	Stat(ctx context.Context, key string) (BlobInfo, error)
	// Delete removes key. Deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// List calls fn for each committed key under prefix, in key order.
	List(ctx context.Context, prefix string, fn func(BlobInfo) error) error
	// Ping checks that the store is reachable (for /readyz).
	Ping(ctx context.Context) error
}

// BlobWriter is an object being written.
type BlobWriter interface {
	io.Writer
	// Commit makes the object durable and visible, atomically.
	Commit() (BlobInfo, error)
	// Abort discards the object; a no-op after Commit, so `defer w.Abort()`
	// is always safe.
	Abort() error
}

// Instance is the index row of one stored SOP instance.
type Instance struct {
	StudyInstanceUID  string
	SeriesInstanceUID string
	SOPInstanceUID    string
	SOPClassUID       string
	TransferSyntaxUID string

	BlobKey string
	Size    int64
	SHA256  string // lower-case hex of the stored bytes
	Created time.Time

	// Pixel data layout, recorded at ingest (see dcm.Header).
	Frames        []dcm.Frame
	Encapsulated  bool
	Deflated      bool
	BigEndian     bool
	DataSetOffset int64
	// Bulk locates every bulk value of the instance (dcm.Header.Bulk,
	// PixelData included), so that a BulkDataURI is one ranged read. An
	// index persists it as is (EncodeBulk/DecodeBulk) and must return nil
	// and an empty non-nil slice as given: nil means "not recorded" (rows
	// from before it was), empty means "the instance has no bulk values".
	Bulk []dcm.BulkRef

	// Attributes for matching and for QIDO responses. Strings are UTF-8
	// (decoded from SpecificCharacterSet), multi-values joined with `\`.
	Study    StudyAttrs
	Series   SeriesAttrs
	Instance InstanceAttrs

	// Metadata is the instance's DICOM JSON object (PS3.18 Annex F), bulk
	// values given as BulkDataURI values that start with the byte
	// BulkPlaceholder; the serving layer replaces it with the instance's
	// retrieve URL (".../instances/{uid}").
	Metadata []byte
}

// BulkPlaceholder starts every BulkDataURI in Instance.Metadata. A raw
// control byte cannot occur in valid JSON text, so replacing it is never
// ambiguous. Example stored value: "\x01/bulk/7FE00010".
const BulkPlaceholder = "\x01"

// StudyAttrs are the study-level attributes kept in index columns.
type StudyAttrs struct {
	PatientName            string
	PatientID              string
	IssuerOfPatientID      string
	PatientBirthDate       string
	PatientSex             string
	StudyDate              string
	StudyTime              string
	AccessionNumber        string
	StudyID                string
	ReferringPhysicianName string
	StudyDescription       string
	SpecificCharacterSet   string
	TimezoneOffsetFromUTC  string
}

// SeriesAttrs are the series-level attributes kept in index columns.
type SeriesAttrs struct {
	Modality                        string
	SeriesNumber                    string
	SeriesDescription               string
	SeriesDate                      string
	SeriesTime                      string
	BodyPartExamined                string
	PerformedProcedureStepStartDate string
	PerformedProcedureStepStartTime string
	// From the first item of RequestAttributesSequence, if any.
	ScheduledProcedureStepID string
	RequestedProcedureID     string
	InstitutionName          string
	StationName              string
	Manufacturer             string
}

// InstanceAttrs are the instance-level attributes kept in index columns.
type InstanceAttrs struct {
	InstanceNumber  string
	Rows            int
	Columns         int
	BitsAllocated   int
	NumberOfFrames  int
	ContentDate     string
	ContentTime     string
	AcquisitionDate string
}

// PutResult tells what PutInstance did.
type PutResult struct {
	// Stored is the row now in the index (the new one, or the existing
	// identical one when Duplicate).
	Stored Instance
	// Duplicate: an instance with the same SOP Instance UID and the same
	// SHA-256 was already indexed; nothing changed.
	Duplicate bool
	// ReplacedBlobKey is the blob key of the row that a replace policy
	// overwrote; the caller deletes that blob after the commit.
	ReplacedBlobKey string
	// ReplacedSHA256 is the SHA-256 of the row a replace overwrote (what
	// caches keyed by content, such as thumbnails, drop).
	ReplacedSHA256 string
}

// Level is a QIDO query level.
type Level int

const (
	LevelStudy Level = iota
	LevelSeries
	LevelInstance
)

// Match is one attribute-value matching key from a QIDO request, value as
// given in the request (wildcards, ranges, UID lists unparsed).
type Match struct {
	Tag   dcm.Tag
	Value string
}

// Query is a parsed QIDO-RS search.
type Query struct {
	Level Level
	// Path scope: /studies/{StudyUID}/series/{SeriesUID}/instances.
	StudyInstanceUID  string
	SeriesInstanceUID string
	Matches           []Match
	FuzzyMatching     bool
	Limit             int // 0: backend default
	Offset            int
	// OmitMetadata says that the caller needs no attribute beyond the
	// index columns: a backend may then leave StudyResult.Representative,
	// SeriesResult.Representative and, at the instance level,
	// Instance.Metadata and Instance.Bulk nil, and skip reading and
	// decompressing those documents. The QIDO-RS layer sets it when no
	// includefield asks for an attribute outside the columns.
	OmitMetadata bool
}

// Result is one QIDO match. Which fields are filled depends on the level:
// study results carry Study and counts; series results add Series;
// instance results carry everything.
type Result struct {
	Study    StudyResult
	Series   SeriesResult
	Instance Instance
}

// StudyResult is a study with its computed attributes.
type StudyResult struct {
	StudyInstanceUID  string
	Attrs             StudyAttrs
	ModalitiesInStudy []string
	SOPClassesInStudy []string
	NumberOfSeries    int
	NumberOfInstances int
	// Representative is the metadata (Instance.Metadata) of one instance
	// of the study, for includefield of attributes not in columns.
	Representative []byte
}

// SeriesResult is a series with its computed attributes.
type SeriesResult struct {
	SeriesInstanceUID string
	Attrs             SeriesAttrs
	NumberOfInstances int
	Representative    []byte
}

// Index is the metadata catalogue. The index row is the commit point of
// an ingest: a blob is visible only once its row is committed.
type Index interface {
	// PutInstance records inst. Same SOP Instance UID and same SHA-256 as
	// an existing row: PutResult{Duplicate: true}, nil. Different SHA-256:
	// ErrExists, unless replace is true, in which case the row is replaced
	// and ReplacedBlobKey is set. An existing SOP Instance UID under a
	// different study or series UID is ErrConflict.
	PutInstance(ctx context.Context, inst *Instance, replace bool) (PutResult, error)
	// Instance returns one instance by UID; empty study/series UIDs are
	// not checked. Unknown: ErrNotFound.
	Instance(ctx context.Context, study, series, sop string) (*Instance, error)
	// Instances lists the instances of a study (series == "": all
	// series), ordered by series then instance number then UID. Unknown
	// study or series: ErrNotFound.
	Instances(ctx context.Context, study, series string) ([]*Instance, error)
	// Search answers a QIDO query with a stable order (study date desc,
	// then UID; series number; instance number).
	Search(ctx context.Context, q Query) ([]Result, error)
	// Delete removes a study, a series (series != "") or an instance
	// (sop != "") and returns the blob keys that are no longer referenced.
	// Unknown: ErrNotFound.
	Delete(ctx context.Context, study, series, sop string) ([]string, error)
	// StudyVersion returns a value that changes whenever an instance of
	// the study is added, replaced or removed (metadata ETags, caches).
	// Unknown study: ErrNotFound.
	StudyVersion(ctx context.Context, study string) (int64, error)
	// CachedMetadata and PutCachedMetadata keep precomputed metadata
	// documents: key names the document (e.g. "series/<uid>/<base>"),
	// version is the StudyVersion the document was built from. A cached
	// entry is returned only if its version equals the current one.
	CachedMetadata(ctx context.Context, study, key string, version int64) ([]byte, error)
	PutCachedMetadata(ctx context.Context, study, key string, version int64, doc []byte) error
	// HasBlob reports whether an indexed instance references the blob
	// key (the orphan sweep deletes blobs no row references).
	HasBlob(ctx context.Context, key string) (bool, error)
	// ListInstances is one page of a walk over every indexed instance
	// (Verify): at most limit instances (limit <= 0: 1000) whose SOP
	// Instance UID sorts after `after` in byte order ("" from the
	// first), in that order. Only the UIDs, SOPClassUID,
	// TransferSyntaxUID, BlobKey, Size, SHA256 and Created are filled. A
	// page is one range of the UID index plus a primary-key lookup of
	// each row's study and series, whatever the size of the index.
	// Walking page after page, each from the last UID of the page
	// before, until an empty page, visits every instance indexed for the
	// whole walk exactly once, whatever is stored or deleted meanwhile.
	ListInstances(ctx context.Context, after string, limit int) ([]*Instance, error)
	// Ping checks the index is reachable (for /readyz).
	Ping(ctx context.Context) error
	Close() error
}

// InstanceLocator is an optional Index capability, found by type
// assertion (see LocateInstance), for the retrieve paths (frames, whole
// instances, bulk data) that need where an instance lies but not its
// metadata: it answers like Index.Instance and Index.Instances, except
// that Metadata is always nil (nothing is decompressed) and Bulk is nil
// unless withBulk.
type InstanceLocator interface {
	LocateInstance(ctx context.Context, study, series, sop string, withBulk bool) (*Instance, error)
	LocateInstances(ctx context.Context, study, series string) ([]*Instance, error)
}

// LocateInstance returns one instance without its Metadata (and without
// Bulk unless withBulk) from an index that implements InstanceLocator,
// or the whole row from Index.Instance otherwise.
func LocateInstance(ctx context.Context, x Index, study, series, sop string, withBulk bool) (*Instance, error) {
	if l, ok := x.(InstanceLocator); ok {
		return l.LocateInstance(ctx, study, series, sop, withBulk)
	}
	return x.Instance(ctx, study, series, sop)
}

// LocateInstances is LocateInstance for Index.Instances (without Bulk).
func LocateInstances(ctx context.Context, x Index, study, series string) ([]*Instance, error) {
	if l, ok := x.(InstanceLocator); ok {
		return l.LocateInstances(ctx, study, series)
	}
	return x.Instances(ctx, study, series)
}

// MetadataLister is an optional Index capability, found by type
// assertion, for building study and series metadata documents fast: it
// streams Instance.Metadata of a study's instances (series == "": all
// series) in the order of Index.Instances without loading whole rows.
// metadata is valid only during the call of fn. An error from fn stops
// the walk and is returned. Unknown study or series: ErrNotFound.
type MetadataLister interface {
	EachMetadata(ctx context.Context, study, series string, fn func(seriesUID, sopUID string, metadata []byte) error) error
}
