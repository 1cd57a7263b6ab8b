package sqlindex

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/cloudpacs/pacs/internal/storage"
)

const (
	// DefaultLimit is the page of a search without a limit; MaxLimit
	// caps a larger one.
	DefaultLimit = 1000
	MaxLimit     = 10000
)

// columns maps matching attributes to columns; person names map to their
// upper-cased _key columns. IS attributes are read through Dialect.Int.
var columns = map[string]string{
	"StudyDate":              "st.study_date",
	"StudyTime":              "st.study_time",
	"AccessionNumber":        "st.accession_number",
	"ReferringPhysicianName": "st.referring_physician_key",
	"PatientName":            "st.patient_name_key",
	"PatientID":              "st.patient_id",
	"IssuerOfPatientID":      "st.issuer_of_patient_id",
	"PatientBirthDate":       "st.patient_birth_date",
	"PatientSex":             "st.patient_sex",
	"StudyInstanceUID":       "st.study_uid",
	"StudyID":                "st.study_id",
	"StudyDescription":       "st.study_description",
	"ModalitiesInStudy":      "m.modality", // inside Dialect.EachModality

	"Modality":                        "se.modality",
	"SeriesInstanceUID":               "se.series_uid",
	"SeriesNumber":                    "se.series_number",
	"SeriesDescription":               "se.series_description",
	"BodyPartExamined":                "se.body_part_examined",
	"PerformedProcedureStepStartDate": "se.performed_procedure_step_start_date",
	"PerformedProcedureStepStartTime": "se.performed_procedure_step_start_time",
	"SeriesDate":                      "se.series_date",
	"SeriesTime":                      "se.series_time",

	"SOPClassUID":    "i.sop_class_uid",
	"SOPInstanceUID": "i.sop_instance_uid",
	"InstanceNumber": "i.instance_number",
	"ContentDate":    "i.content_date",
	"ContentTime":    "i.content_time",
}

// Core is the SQL shared by the backends, written for one dialect.
type Core struct {
	d Dialect

	// InstanceCols, LocateCols and LocateBulkCols are the columns of
	// ScanInstance: the whole row, the row without its metadata and bulk
	// documents, and without its metadata only. InstanceFrom joins the
	// tables they name (i, se, st).
	InstanceCols, LocateCols, LocateBulkCols string
	// SeriesOrder and InstanceOrder order a study's series and a
	// series' instances (number, empty numbers last, then a stable key).
	SeriesOrder, InstanceOrder string
	// ListInstancesSQL is storage.ListInstancesSQL in the dialect.
	ListInstancesSQL string

	searchInstanceOrder string
	lookupSQL, byPKSQL  string

	deleteEmptySeriesSQL, deleteEmptyStudySQL string
}

// InstanceFrom is the FROM clause of the instance columns.
const InstanceFrom = ` FROM instances i
	JOIN series se ON se.series_pk = i.series_pk
	JOIN studies st ON st.study_pk = i.study_pk`

// New returns the core for d.
func New(d Dialect) *Core {
	tail := storage.StudyAttrColumns + `, ` + storage.SeriesAttrColumns
	null := d.NullBytes()
	sn, in := d.Int("se.series_number"), d.Int("i.instance_number")
	c := &Core{
		d:                   d,
		InstanceCols:        storage.InstanceHeadColumns + `i.metadata, i.bulk, ` + tail,
		LocateCols:          storage.InstanceHeadColumns + null + `, ` + null + `, ` + tail,
		LocateBulkCols:      storage.InstanceHeadColumns + null + `, i.bulk, ` + tail,
		SeriesOrder:         `(` + sn.Missing + `), ` + sn.Value + `, se.series_pk`,
		InstanceOrder:       `(` + in.Missing + `), ` + in.Value + `, i.sop_instance_uid`,
		searchInstanceOrder: `(` + in.Missing + `), ` + in.Value + `, i.instance_pk`,
		ListInstancesSQL:    Bind(d, storage.ListInstancesSQL("?", "?")),
		lookupSQL: Bind(d, `SELECT i.instance_pk, st.study_uid, se.series_uid, i.sha256, i.blob_key, i.study_pk`+
			InstanceFrom+` WHERE i.sop_instance_uid = ?`),
	}
	c.byPKSQL = Bind(d, `SELECT `+c.InstanceCols+InstanceFrom+` WHERE i.instance_pk = ?`)
	c.deleteEmptySeriesSQL = Bind(d, `DELETE FROM series WHERE study_pk = ?
		AND NOT EXISTS (SELECT 1 FROM instances i WHERE i.series_pk = series.series_pk)`)
	c.deleteEmptyStudySQL = Bind(d, `DELETE FROM studies WHERE study_pk = ?
		AND NOT EXISTS (SELECT 1 FROM series se WHERE se.study_pk = studies.study_pk)`)
	return c
}

// prefixRange is "col starts with p" as a range an index serves (the
// columns compare in byte order), or StartsWith when p has no end.
func (c *Core) prefixRange(col, p string, a *Args) string {
	end := storage.PrefixEnd(p)
	if end == "" {
		return c.d.StartsWith(col, p, a)
	}
	return "(" + col + " >= " + a.Add(p) + " AND " + col + " < " + a.Add(end) + ")"
}

// cond translates one condition into a boolean SQL expression.
func (c *Core) cond(k storage.Cond, a *Args) (string, error) {
	col, ok := columns[k.Attr.Keyword]
	if !ok {
		return "", fmt.Errorf("%w: %s", storage.ErrUnsupportedMatch, k.Attr.Keyword)
	}
	modalities := k.Attr.Keyword == "ModalitiesInStudy"
	// studies.modalities (00003) holds the study's distinct non-empty
	// series modalities, and no condition matches an empty modality: a
	// single value or a list is a test of that column; anything else
	// runs over its values (EachModality).
	if modalities && k.Kind == storage.MatchSingle {
		return c.d.HasModality([]string{k.Value}, a), nil
	}
	if modalities && k.Kind == storage.MatchList {
		return c.d.HasModality(k.Values, a), nil
	}
	var expr string
	switch k.Kind {
	case storage.MatchSingle, storage.MatchList:
		if k.Attr.VR == "IS" {
			expr = c.intList(c.d.Int(col), k, a)
		} else if k.Kind == storage.MatchSingle {
			expr = col + " = " + a.Add(k.Value)
		} else {
			expr = c.d.InText(col, k.Values, a)
		}
	case storage.MatchPrefix:
		expr = c.prefixRange(col, k.Value, a)
	case storage.MatchWildcard:
		if k.Attr.VR == "IS" { // ParseConds gives none; be safe
			return "", fmt.Errorf("%w: %s: wildcard on a number", storage.ErrBadQuery, k.Attr.Keyword)
		}
		// A literal start ("SMI*") also bounds the value, as a range an
		// index serves: neither database takes the prefix out of a
		// pattern given as a parameter of a prepared statement.
		if i := strings.IndexAny(k.Value, "*?"); i > 0 && storage.PrefixEnd(k.Value[:i]) != "" {
			expr = c.prefixRange(col, k.Value[:i], a) + " AND "
		}
		expr += c.d.Wildcard(col, k.Value, a)
	case storage.MatchRange:
		parts := []string{col + " <> ''"}
		if k.Lo != "" {
			parts = append(parts, col+" >= "+a.Add(k.Lo))
		}
		if k.Hi != "" {
			// Compare the value cut to the bound's length: an upper bound
			// "1200" includes 120059. As col < succ(Hi), an index range.
			parts = append(parts, col+" < "+a.Add(storage.PrefixEnd(k.Hi)))
		}
		expr = "(" + strings.Join(parts, " AND ") + ")"
	case storage.MatchFuzzy:
		if k.Attr.Keyword == "PatientName" {
			// study_name_words (00005): index ranges per word.
			expr = "(" + c.fuzzyName("st.study_pk", k.Values, -1, a) + ")"
			break
		}
		words := make([]string, len(k.Values))
		for i, w := range k.Values {
			e, ok := c.d.FuzzyWord(k.Attr.Keyword, w, storage.PhoneticKey(w), a)
			if !ok {
				return "", fmt.Errorf("%w: %s: fuzzy matching", storage.ErrUnsupportedMatch, k.Attr.Keyword)
			}
			words[i] = e
		}
		expr = "(" + strings.Join(words, " AND ") + ")"
	default:
		return "", fmt.Errorf("%w: %s: match kind %d", storage.ErrBadQuery, k.Attr.Keyword, k.Kind)
	}
	if modalities {
		expr = c.d.EachModality(expr)
	}
	return expr, nil
}

// intList is an IS single value or list: the integer value of the
// column is one of the numbers (so "007" matches 7).
func (c *Core) intList(n IntColumn, k storage.Cond, a *Args) string {
	var expr string
	if k.Kind == storage.MatchSingle {
		v, _ := strconv.ParseInt(k.Value, 10, 64)
		expr = n.Value + " = " + a.Add(v)
	} else {
		ns := make([]int64, len(k.Values))
		for i, v := range k.Values {
			ns[i], _ = strconv.ParseInt(v, 10, 64)
		}
		expr = c.d.InInt(n.Value, ns, a)
	}
	if n.Present == "" {
		return expr
	}
	return "(" + n.Present + " AND " + expr + ")"
}

// BuildSearch returns the statement of a QIDO search.
func (c *Core) BuildSearch(q storage.Query) (Statement, error) {
	conds, err := storage.ParseConds(q)
	if err != nil {
		return Statement{}, err
	}
	var args Args
	where := []string{c.d.True()}
	if q.StudyInstanceUID != "" {
		where = append(where, "st.study_uid = "+args.Add(q.StudyInstanceUID))
	}
	if q.SeriesInstanceUID != "" && q.Level >= storage.LevelSeries {
		where = append(where, "se.series_uid = "+args.Add(q.SeriesInstanceUID))
	}
	// A study search with a fuzzy PatientName reads its keys from
	// study_name_words (00005): the rows of one word, in search order,
	// drive it; the other conditions filter them.
	var drive *storage.Cond
	for i, k := range conds {
		if q.Level == storage.LevelStudy && drive == nil && k.Kind == storage.MatchFuzzy && k.Attr.Keyword == "PatientName" {
			drive = &conds[i]
			continue
		}
		e, err := c.cond(k, &args)
		if err != nil {
			return Statement{}, err
		}
		where = append(where, e)
	}
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)
	var page Args
	pageSQL := " LIMIT " + page.Add(limit) + " OFFSET " + page.Add(max(q.Offset, 0))

	st := Statement{Level: q.Level, Conds: conds}
	var sql string
	switch q.Level {
	case storage.LevelStudy:
		keys, kargs := studyKeys, Args(nil)
		if drive != nil {
			d := driverWord(drive.Values)
			src := c.wordRows(drive.Values[d], &kargs)
			on := c.fuzzyName("w.study_pk", drive.Values, d, &kargs)
			keys = wordKeys
			if len(where) > 1 { // other conditions on the study row
				keys = wordKeysJoin
			}
			keys = strings.Replace(keys, "{words}", src, 1)
			where = append([]string{on}, where...)
		}
		sql = c.studyQuery(keys, strings.Join(where, " AND "), pageSQL, !q.OmitMetadata)
		st.Args = append(append(kargs, args...), page...)
	case storage.LevelSeries:
		sql = c.seriesQuery(strings.Join(where, " AND "), pageSQL, !q.OmitMetadata)
		st.Args = append(args, page...)
	case storage.LevelInstance:
		cols := c.InstanceCols
		if q.OmitMetadata {
			cols = c.LocateCols
		}
		sql = `SELECT ` + cols + InstanceFrom + `
		WHERE ` + strings.Join(where, " AND ") + `
		ORDER BY ` + c.searchInstanceOrder + pageSQL
		st.Args = append(args, page...)
	default:
		return Statement{}, fmt.Errorf("%w: level %v", storage.ErrBadQuery, q.Level)
	}
	st.SQL = Bind(c.d, sql)
	return st, nil
}

// The key queries of a study search (a page of study_pk with the sort
// key): from the studies table, or, for a fuzzy PatientName, from one
// query word's rows in study_name_words ({words}: the word range UNION
// ALL the phonetic key, two covering index ranges, where an OR would read
// table rows), joined to the study row only when other conditions need
// it. Two words of a name may match the same query word: GROUP BY the
// sort key (which includes study_pk) removes the duplicates in the
// sorter that orders the page (DISTINCT would add a second sort over
// every matching row, 4x slower for SMITH at 1M on SQLite). {where}: the
// other conditions.
const (
	studyKeys = `SELECT st.study_pk, st.study_date, st.study_time FROM studies st
			WHERE {where}
			ORDER BY st.study_date DESC, st.study_time DESC, st.study_pk`
	wordKeys = `SELECT w.study_pk, w.study_date, w.study_time FROM ({words}) w
			WHERE {where}
			GROUP BY w.study_date, w.study_time, w.study_pk
			ORDER BY w.study_date DESC, w.study_time DESC, w.study_pk`
	wordKeysJoin = `SELECT w.study_pk, w.study_date, w.study_time FROM ({words}) w
			JOIN studies st ON st.study_pk = w.study_pk
			WHERE {where}
			GROUP BY w.study_date, w.study_time, w.study_pk
			ORDER BY w.study_date DESC, w.study_time DESC, w.study_pk`
)

// representative selects the metadata of a study's (series') first
// instance; a NULL when the query omits metadata.
func (c *Core) representative(parent string, rep bool) string {
	if !rep {
		return c.d.NullBytes()
	}
	return `(SELECT c.metadata FROM instances c WHERE c.` + parent + ` ORDER BY c.instance_pk LIMIT 1)`
}

// studyQuery is a study-level search. The computed attributes are
// columns of the study row (00003_counts). The page is cut first as keys
// only (study_pk and the sort key), which the indexes of 00004 answer
// without reading a table row for a study that is not returned; the rows
// and the representative are read for the returned page only.
func (c *Core) studyQuery(keys, where, page string, rep bool) string {
	return `SELECT st.study_uid, ` + storage.StudyAttrColumns + `,
		st.num_series, st.num_instances, st.modalities, st.sop_classes,
		` + c.representative("study_pk = st.study_pk", rep) + `
		FROM (` + strings.Replace(keys, "{where}", where, 1) + page + `) k
		JOIN studies st ON st.study_pk = k.study_pk
		ORDER BY k.study_date DESC, k.study_time DESC, k.study_pk`
}

// seriesQuery is a series-level search, in the dialect's shape.
func (c *Core) seriesQuery(where, page string, rep bool) string {
	head := `SELECT st.study_uid, ` + storage.StudyAttrColumns + `, se.series_uid, ` + storage.SeriesAttrColumns + `,
		se.num_instances, ` + c.representative("series_pk = se.series_pk", rep)
	if c.d.SeriesPageFirst() {
		return head + `
		FROM (SELECT se.* FROM series se JOIN studies st ON st.study_pk = se.study_pk
			WHERE ` + where + ` ORDER BY ` + c.SeriesOrder + page + `) se
		JOIN studies st ON st.study_pk = se.study_pk
		ORDER BY ` + c.SeriesOrder
	}
	return head + `
		FROM series se JOIN studies st ON st.study_pk = se.study_pk
		WHERE ` + where + `
		ORDER BY ` + c.SeriesOrder + page
}

// Search answers a QIDO query (storage.Index.Search), running its
// statement with run.
func (c *Core) Search(ctx context.Context, q storage.Query, run Run) ([]storage.Result, error) {
	st, err := c.BuildSearch(q)
	if err != nil {
		return nil, err
	}
	rows, err := run(ctx, st)
	if err != nil {
		return nil, err
	}
	var out []storage.Result
	switch q.Level {
	case storage.LevelStudy:
		out, err = c.scanStudies(rows)
	case storage.LevelSeries:
		out, err = scanSeries(rows)
	default:
		out, err = scanInstances(rows)
	}
	if cerr := rows.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (c *Core) scanStudies(rows Rows) ([]storage.Result, error) {
	var out []storage.Result
	for rows.Next() {
		var (
			r    storage.Result
			meta []byte
			err  error
		)
		s := &r.Study
		dest := append([]any{&s.StudyInstanceUID}, storage.StudyAttrDest(&s.Attrs)...)
		dest = append(dest, &s.NumberOfSeries, &s.NumberOfInstances,
			c.d.StringList(&s.ModalitiesInStudy), c.d.StringList(&s.SOPClassesInStudy), &meta)
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		if len(s.ModalitiesInStudy) == 0 {
			s.ModalitiesInStudy = nil
		}
		if len(s.SOPClassesInStudy) == 0 {
			s.SOPClassesInStudy = nil
		}
		if s.Representative, err = storage.DecompressDoc(nil, meta); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func scanSeries(rows Rows) ([]storage.Result, error) {
	var out []storage.Result
	for rows.Next() {
		var (
			r    storage.Result
			meta []byte
			err  error
		)
		dest := append([]any{&r.Study.StudyInstanceUID}, storage.StudyAttrDest(&r.Study.Attrs)...)
		dest = append(dest, &r.Series.SeriesInstanceUID)
		dest = append(dest, storage.SeriesAttrDest(&r.Series.Attrs)...)
		dest = append(dest, &r.Series.NumberOfInstances, &meta)
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		if r.Series.Representative, err = storage.DecompressDoc(nil, meta); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func scanInstances(rows Rows) ([]storage.Result, error) {
	var out []storage.Result
	for rows.Next() {
		inst, err := ScanInstance(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, storage.Result{
			Study:    storage.StudyResult{StudyInstanceUID: inst.StudyInstanceUID, Attrs: inst.Study},
			Series:   storage.SeriesResult{SeriesInstanceUID: inst.SeriesInstanceUID, Attrs: inst.Series, Representative: inst.Metadata},
			Instance: *inst,
		})
	}
	return out, rows.Err()
}
