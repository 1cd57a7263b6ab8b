package pgindex

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/cloudpacs/pacs/internal/storage"
)

const (
	defaultLimit = 1000
	maxLimit     = 10000
)

// columns maps matching attributes to columns; person names map to their
// upper-cased _key columns, IS attributes to their integer columns.
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
	"ModalitiesInStudy":      "m.modality", // inside an EXISTS over the study's series

	"Modality":                        "se.modality",
	"SeriesInstanceUID":               "se.series_uid",
	"SeriesNumber":                    "se.series_number_int",
	"SeriesDescription":               "se.series_description",
	"BodyPartExamined":                "se.body_part_examined",
	"PerformedProcedureStepStartDate": "se.performed_procedure_step_start_date",
	"PerformedProcedureStepStartTime": "se.performed_procedure_step_start_time",
	"SeriesDate":                      "se.series_date",
	"SeriesTime":                      "se.series_time",

	"SOPClassUID":    "i.sop_class_uid",
	"SOPInstanceUID": "i.sop_instance_uid",
	"InstanceNumber": "i.instance_number_int",
	"ContentDate":    "i.content_date",
	"ContentTime":    "i.content_time",
}

// fuzzyColumns are the (words, phonetic keys) columns of the person names.
var fuzzyColumns = map[string][2]string{
	"PatientName":            {"st.patient_name_words", "st.patient_name_phon"},
	"ReferringPhysicianName": {"st.referring_physician_words", "st.referring_physician_phon"},
}

// sqlArgs collects the arguments of a statement: add returns the
// placeholder of its value.
type sqlArgs []any

func (a *sqlArgs) add(v any) string {
	*a = append(*a, v)
	return "$" + strconv.Itoa(len(*a))
}

// succ returns the smallest string greater than every string that
// starts with s, for digit strings (DA/TM bounds): the last byte + 1.
// `left(col, len(hi)) <= hi` is then `col < succ(hi)`, which an index
// can serve.
func succ(s string) string {
	b := []byte(s)
	b[len(b)-1]++
	return string(b)
}

// prefixRange returns "col >= p AND col < end AND " (the columns use the
// "C" collation: byte order), or "" when p has no end.
func prefixRange(col, p string, args *sqlArgs) string {
	end := storage.PrefixEnd(p)
	if end == "" {
		return ""
	}
	return col + " >= " + args.add(p) + " AND " + col + " < " + args.add(end) + " AND "
}

// condSQL translates one condition into a boolean SQL expression.
func condSQL(c storage.Cond, args *sqlArgs) (string, error) {
	col, ok := columns[c.Attr.Keyword]
	if !ok {
		return "", fmt.Errorf("%w: %s", storage.ErrUnsupportedMatch, c.Attr.Keyword)
	}
	if c.Attr.Keyword == "ModalitiesInStudy" {
		switch c.Kind {
		case storage.MatchSingle:
			return "st.modalities @> ARRAY[" + args.add(c.Value) + "::text]", nil
		case storage.MatchList:
			return "st.modalities && " + args.add(c.Values) + "::text[]", nil
		}
	}
	numeric := c.Attr.VR == "IS"
	var expr string
	switch c.Kind {
	case storage.MatchSingle:
		if numeric {
			n, _ := strconv.ParseInt(c.Value, 10, 64)
			expr = col + " = " + args.add(n)
		} else {
			expr = col + " = " + args.add(c.Value)
		}
	case storage.MatchPrefix:
		expr = col + " LIKE " + args.add(likeEscape(c.Value)+"%")
		expr = prefixRange(col, c.Value, args) + expr
	case storage.MatchWildcard:
		if numeric { // not produced by ParseConds for IS; be safe
			return "", fmt.Errorf("%w: %s: wildcard on a number", storage.ErrBadQuery, c.Attr.Keyword)
		}
		expr = col + " LIKE " + args.add(likePattern(c.Value))
		// A literal start ("SMI*") also bounds the value, as a range a
		// btree index serves in a generic plan too: pgx runs cached
		// prepared statements, and PostgreSQL cannot take the prefix out
		// of a LIKE parameter in a generic plan.
		if i := strings.IndexAny(c.Value, "*?"); i > 0 {
			expr = prefixRange(col, c.Value[:i], args) + expr
		}
	case storage.MatchList:
		if numeric {
			ns := make([]int64, len(c.Values))
			for i, v := range c.Values {
				ns[i], _ = strconv.ParseInt(v, 10, 64)
			}
			expr = col + " = ANY(" + args.add(ns) + ")"
		} else {
			expr = col + " = ANY(" + args.add(c.Values) + "::text[])"
		}
	case storage.MatchRange:
		parts := []string{col + " <> ''"}
		if c.Lo != "" {
			parts = append(parts, col+" >= "+args.add(c.Lo))
		}
		if c.Hi != "" {
			// Compare the value cut to the bound's length: an upper bound
			// "1200" includes 120059.
			parts = append(parts, col+" < "+args.add(succ(c.Hi)))
		}
		expr = "(" + strings.Join(parts, " AND ") + ")"
	case storage.MatchFuzzy:
		if c.Attr.Keyword == "PatientName" {
			// study_name_words (00005): index ranges per word.
			expr = "(" + fuzzyNameSQL("st.study_pk", c.Values, -1, args) + ")"
			break
		}
		fc, ok := fuzzyColumns[c.Attr.Keyword]
		if !ok {
			return "", fmt.Errorf("%w: %s: fuzzy matching", storage.ErrUnsupportedMatch, c.Attr.Keyword)
		}
		words := make([]string, len(c.Values))
		for i, w := range c.Values {
			// The word starts a component, or sounds like one.
			words[i] = fc[0] + " LIKE " + args.add("% "+likeEscape(w)+"%")
			if k := storage.PhoneticKey(w); k != "" {
				words[i] = "(" + words[i] + " OR " + fc[1] + " @> ARRAY[" + args.add(k) + "::text])"
			}
		}
		expr = "(" + strings.Join(words, " AND ") + ")"
	default:
		return "", fmt.Errorf("%w: %s: match kind %d", storage.ErrBadQuery, c.Attr.Keyword, c.Kind)
	}
	if c.Attr.Keyword == "ModalitiesInStudy" {
		// studies.modalities (00003) holds the distinct non-empty
		// modalities of the study's series, and no condition matches an
		// empty modality, so the conditions read the array: a single value
		// or a list as array containment or overlap (GIN index, and
		// evaluated from the studies_study_date index alone), anything else
		// over its elements.
		// (Single values and lists are answered before the switch above.)
		expr = "EXISTS (SELECT 1 FROM unnest(st.modalities) m(modality) WHERE " + expr + ")"
	}
	return expr, nil
}

// Search answers a QIDO query. See the package documentation for the
// matching rules.
func (x *Index) Search(ctx context.Context, q storage.Query) ([]storage.Result, error) {
	sql, args, err := searchSQL(q)
	if err != nil {
		return nil, fmt.Errorf("pgindex: search: %w", err)
	}
	var res []storage.Result
	switch q.Level {
	case storage.LevelStudy:
		res, err = x.searchStudies(ctx, sql, args)
	case storage.LevelSeries:
		res, err = x.searchSeries(ctx, sql, args)
	default:
		res, err = x.searchInstances(ctx, sql, args)
	}
	if err != nil {
		return nil, fmt.Errorf("pgindex: search: %w", err)
	}
	return res, nil
}

// searchSQL returns the statement and arguments of a search; the first
// argument may be a pgx.QueryExecMode (customPlan).
func searchSQL(q storage.Query) (string, []any, error) {
	conds, err := storage.ParseConds(q)
	if err != nil {
		return "", nil, err
	}
	var args sqlArgs
	where := []string{"true"}
	if q.StudyInstanceUID != "" {
		where = append(where, "st.study_uid = "+args.add(q.StudyInstanceUID))
	}
	if q.SeriesInstanceUID != "" && q.Level >= storage.LevelSeries {
		where = append(where, "se.series_uid = "+args.add(q.SeriesInstanceUID))
	}
	// A study search with a fuzzy PatientName reads its keys from
	// study_name_words (00005): the ranges of one word, in search order,
	// drive it; the other conditions filter.
	var (
		driver []string
		words  string
	)
	for _, c := range conds {
		if q.Level == storage.LevelStudy && driver == nil && c.Kind == storage.MatchFuzzy && c.Attr.Keyword == "PatientName" {
			d := driverWord(c.Values)
			words = fuzzyWordRows(c.Values[d], &args)
			driver = []string{fuzzyNameSQL("w.study_pk", c.Values, d, &args)}
			continue
		}
		expr, err := condSQL(c, &args)
		if err != nil {
			return "", nil, err
		}
		where = append(where, expr)
	}
	limit := q.Limit
	if limit <= 0 {
		limit = defaultLimit
	}
	limit = min(limit, maxLimit)
	page := " LIMIT " + args.add(limit) + " OFFSET " + args.add(max(q.Offset, 0))
	switch q.Level {
	case storage.LevelStudy:
		keys := studyKeys
		if driver != nil {
			keys = wordKeys
			if len(where) > 1 { // other conditions on the study row
				keys = wordKeysJoin
			}
			where = append(driver, where...)
			keys = strings.Replace(keys, "{words}", words, 1)
		}
		sql := studyQuery(keys, strings.Join(where, " AND "), page, !q.OmitMetadata)
		if customPlan(conds) {
			return sql, append([]any{pgx.QueryExecModeDescribeExec}, args...), nil
		}
		return sql, args, nil
	case storage.LevelSeries:
		return seriesQuery(strings.Join(where, " AND "), page, !q.OmitMetadata), args, nil
	case storage.LevelInstance:
		return instanceQuery(strings.Join(where, " AND "), page, !q.OmitMetadata), args, nil
	}
	return "", nil, fmt.Errorf("%w: level %v", storage.ErrBadQuery, q.Level)
}

const studyOrder = `st.study_date DESC, st.study_time DESC, st.study_pk`

// studyQuery returns the SQL of a study-level search with the given
// conditions and page clause; rep: with the representative metadata.
// The computed attributes are columns of the study row (00003_counts).
// The page is cut first as keys only (study_pk and the sort key), which
// the indexes of 00004 answer without reading a heap row for a study
// that is not returned (the name range with the sort key; the date walk
// with the fuzzy name and modality columns); the rows and the
// representative are read for the returned page only.
//
// The keys come from the studies table, or, for a fuzzy PatientName, from
// one query word's rows in study_name_words ({words}: the word range
// UNION ALL the phonetic key, two index-only scans, where an OR would be
// a bitmap heap scan), joined to the study row only when other
// conditions need it. Two words of a name may match the same query word:
// GROUP BY the sort key (which includes study_pk) removes the
// duplicates. {where}: the other conditions.
const (
	studyKeys = `SELECT st.study_pk, st.study_date, st.study_time FROM studies st
			WHERE {where} ORDER BY ` + studyOrder
	wordKeys = `SELECT w.study_pk, w.study_date, w.study_time FROM ({words}) w
			WHERE {where} GROUP BY w.study_date, w.study_time, w.study_pk
			ORDER BY w.study_date DESC, w.study_time DESC, w.study_pk`
	wordKeysJoin = `SELECT w.study_pk, w.study_date, w.study_time FROM ({words}) w
			JOIN studies st ON st.study_pk = w.study_pk
			WHERE {where} GROUP BY w.study_date, w.study_time, w.study_pk
			ORDER BY w.study_date DESC, w.study_time DESC, w.study_pk`
)

func studyQuery(keys, where, page string, rep bool) string {
	meta := `NULL::bytea`
	if rep {
		meta = `(SELECT c.metadata FROM instances c WHERE c.study_pk = st.study_pk ORDER BY c.instance_pk LIMIT 1)`
	}
	return `SELECT st.study_uid, ` + studyAttrCols + `,
		st.num_series, st.num_instances, st.modalities, st.sop_classes, ` + meta + `
		FROM (` + strings.Replace(keys, "{where}", where, 1) + page + `) k
		JOIN studies st ON st.study_pk = k.study_pk
		ORDER BY k.study_date DESC, k.study_time DESC, k.study_pk`
}

// customPlan reports whether a search with these conditions is planned
// with its values (an unnamed statement) rather than as a cached
// prepared statement's generic plan: how many studies a fuzzy name or a
// modality matches decides between the date walk (common values) and
// the GIN index plus a sort (rare ones), and a generic plan takes the
// walk for every value, reading the whole index for a rare one. A fuzzy
// PatientName needs no such choice: its keys always come from the
// ranges of study_name_words (searchSQL).
func customPlan(conds []storage.Cond) bool {
	for _, c := range conds {
		if (c.Kind == storage.MatchFuzzy && c.Attr.Keyword != "PatientName") || c.Attr.Keyword == "ModalitiesInStudy" {
			return true
		}
	}
	return false
}

func (x *Index) searchStudies(ctx context.Context, sql string, args []any) ([]storage.Result, error) {
	rows, err := x.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []storage.Result
	for rows.Next() {
		var (
			r    storage.Result
			meta []byte
		)
		s := &r.Study
		dest := append([]any{&s.StudyInstanceUID}, studyAttrDest(&s.Attrs)...)
		dest = append(dest, &s.NumberOfSeries, &s.NumberOfInstances, &s.ModalitiesInStudy, &s.SOPClassesInStudy, &meta)
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		if len(s.ModalitiesInStudy) == 0 {
			s.ModalitiesInStudy = nil
		}
		if len(s.SOPClassesInStudy) == 0 {
			s.SOPClassesInStudy = nil
		}
		if s.Representative, err = decompress(meta); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func seriesQuery(where, page string, rep bool) string {
	meta := `NULL::bytea`
	if rep {
		meta = `(SELECT c.metadata FROM instances c WHERE c.series_pk = se.series_pk ORDER BY c.instance_pk LIMIT 1)`
	}
	return `SELECT st.study_uid, ` + studyAttrCols + `, se.series_uid, ` + seriesAttrCols + `,
		se.num_instances, ` + meta + `
		FROM (SELECT se.* FROM series se JOIN studies st ON st.study_pk = se.study_pk
			WHERE ` + where + ` ORDER BY ` + seriesOrder + page + `) se
		JOIN studies st ON st.study_pk = se.study_pk
		ORDER BY ` + seriesOrder
}

func (x *Index) searchSeries(ctx context.Context, sql string, args []any) ([]storage.Result, error) {
	rows, err := x.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []storage.Result
	for rows.Next() {
		var (
			r    storage.Result
			meta []byte
		)
		dest := append([]any{&r.Study.StudyInstanceUID}, studyAttrDest(&r.Study.Attrs)...)
		dest = append(dest, &r.Series.SeriesInstanceUID)
		dest = append(dest, seriesAttrDest(&r.Series.Attrs)...)
		dest = append(dest, &r.Series.NumberOfInstances, &meta)
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		if r.Series.Representative, err = decompress(meta); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func instanceQuery(where, page string, meta bool) string {
	cols := instanceCols
	if !meta {
		cols = locateCols
	}
	return `SELECT ` + cols + instanceFrom + `
		WHERE ` + where + `
		ORDER BY (i.instance_number_int IS NULL), i.instance_number_int, i.instance_pk` + page
}

func (x *Index) searchInstances(ctx context.Context, sql string, args []any) ([]storage.Result, error) {
	rows, err := x.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []storage.Result
	for rows.Next() {
		inst, err := scanInstance(rows)
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

// Explain returns PostgreSQL's EXPLAIN (ANALYZE, BUFFERS) output for the
// statement Search runs for q (benchmarks and docs).
func (x *Index) Explain(ctx context.Context, q storage.Query) (string, error) {
	sql, args, err := searchSQL(q)
	if err != nil {
		return "", err
	}
	if len(args) > 0 {
		if _, ok := args[0].(pgx.QueryExecMode); ok {
			args = args[1:]
		}
	}
	rows, err := x.pool.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) "+sql, args...)
	if err != nil {
		return "", err
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return strings.Join(lines, "\n"), err
}
