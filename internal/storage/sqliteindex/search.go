package sqliteindex

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/cloudpacs/pacs/internal/storage"
)

const (
	defaultLimit = 1000
	maxLimit     = 10000
)

// columns maps matching attributes to columns; person names map to their
// upper-cased _key columns.
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

// globEscape turns a DICOM wildcard pattern into a GLOB pattern: `*` and
// `?` mean the same in both; `[` is GLOB's only other special character.
func globEscape(p string) string { return strings.ReplaceAll(p, "[", "[[]") }

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// condSQL translates one condition into a boolean SQL expression.
func condSQL(c storage.Cond) (string, []any, error) {
	col, ok := columns[c.Attr.Keyword]
	if !ok {
		return "", nil, fmt.Errorf("%w: %s", storage.ErrUnsupportedMatch, c.Attr.Keyword)
	}
	if c.Attr.Keyword == "ModalitiesInStudy" {
		// studies.modalities (00003) holds the study's distinct non-empty
		// series modalities joined by ',' (CS values have no comma), and
		// no condition matches an empty modality: a single value or a list
		// is looked up in that column, which the studies_study_date index
		// carries (00004); anything else runs over the series.
		switch c.Kind {
		case storage.MatchSingle:
			return "instr(',' || st.modalities || ',', ?) > 0", []any{"," + c.Value + ","}, nil
		case storage.MatchList:
			var args []any
			parts := make([]string, len(c.Values))
			for i, v := range c.Values {
				parts[i] = "instr(',' || st.modalities || ',', ?) > 0"
				args = append(args, ","+v+",")
			}
			return "(" + strings.Join(parts, " OR ") + ")", args, nil
		}
	}
	numeric := c.Attr.VR == "IS"
	var (
		expr string
		args []any
	)
	switch c.Kind {
	case storage.MatchSingle:
		if numeric {
			n, _ := strconv.Atoi(c.Value)
			expr, args = fmt.Sprintf("(%[1]s <> '' AND CAST(%[1]s AS INTEGER) = ?)", col), []any{n}
		} else {
			expr, args = col+" = ?", []any{c.Value}
		}
	case storage.MatchPrefix:
		expr, args = prefixRange(col, c.Value)
	case storage.MatchWildcard:
		expr, args = col+" GLOB ?", []any{globEscape(c.Value)}
		// A literal start ("SMI*") also bounds the value, a range an
		// index serves; SQLite's own LIKE/GLOB optimisation does not
		// apply to a bound parameter of a prepared statement.
		if i := strings.IndexAny(c.Value, "*?"); i > 0 {
			if r, a := prefixRange(col, c.Value[:i]); r != "" {
				expr, args = r+" AND "+expr, append(a, args...)
			}
		}
	case storage.MatchList:
		for _, v := range c.Values {
			if numeric {
				n, _ := strconv.Atoi(v)
				args = append(args, n)
			} else {
				args = append(args, v)
			}
		}
		if numeric {
			expr = fmt.Sprintf("(%[1]s <> '' AND CAST(%[1]s AS INTEGER) IN (%[2]s))", col, placeholders(len(args)))
		} else {
			expr = fmt.Sprintf("%s IN (%s)", col, placeholders(len(args)))
		}
	case storage.MatchRange:
		parts := []string{col + " <> ''"}
		if c.Lo != "" {
			parts = append(parts, col+" >= ?")
			args = append(args, c.Lo)
		}
		if c.Hi != "" {
			// Compare the value cut to the bound's length: an upper bound
			// "1200" includes 120059. As col < succ(Hi), an index range.
			parts = append(parts, col+" < ?")
			args = append(args, storage.PrefixEnd(c.Hi))
		}
		expr = "(" + strings.Join(parts, " AND ") + ")"
	case storage.MatchFuzzy:
		if c.Attr.Keyword == "PatientName" {
			// Every word starts a word of the name: study_name_words
			// (00005), one index range per word.
			expr, args = fuzzyNameSQL("st.study_pk", c.Values, -1)
			expr = "(" + expr + ")"
			break
		}
		// A word matches when it starts a name component: look for
		// " WORD" in " " + the name with component separators (^ = ,)
		// as spaces; or when its phonetic key is one of the name's
		// (referring_physician_phon, migration 00006).
		if c.Attr.Keyword != "ReferringPhysicianName" {
			return "", nil, fmt.Errorf("%w: %s: fuzzy matching", storage.ErrUnsupportedMatch, c.Attr.Keyword)
		}
		words := make([]string, len(c.Values))
		for i, w := range c.Values {
			words[i] = fmt.Sprintf("(' ' || replace(replace(replace(%s, '^', ' '), '=', ' '), ',', ' ')) GLOB ?", col)
			args = append(args, "* "+globEscape(w)+"*")
			if k := storage.PhoneticKey(w); k != "" {
				words[i] = "(" + words[i] + " OR instr(st.referring_physician_phon, ?) > 0)"
				args = append(args, " "+k+" ")
			}
		}
		expr = "(" + strings.Join(words, " AND ") + ")"
	default:
		return "", nil, fmt.Errorf("%w: %s: match kind %d", storage.ErrBadQuery, c.Attr.Keyword, c.Kind)
	}
	if c.Attr.Keyword == "ModalitiesInStudy" {
		expr = "EXISTS (SELECT 1 FROM series m WHERE m.study_pk = st.study_pk AND " + expr + ")"
	}
	return expr, args, nil
}

// prefixRange is `col starts with p` as a range an index serves.
func prefixRange(col, p string) (string, []any) {
	end := storage.PrefixEnd(p)
	if end == "" {
		return fmt.Sprintf("substr(%s, 1, ?) = ?", col), []any{utf8.RuneCountInString(p), p}
	}
	return fmt.Sprintf("(%[1]s >= ? AND %[1]s < ?)", col), []any{p, end}
}

// Search answers a QIDO query. See the package documentation for the
// matching rules.
func (x *Index) Search(ctx context.Context, q storage.Query) ([]storage.Result, error) {
	conds, err := storage.ParseConds(q)
	if err != nil {
		return nil, fmt.Errorf("sqliteindex: search: %w", err)
	}
	where := []string{"1"}
	var args []any
	if q.StudyInstanceUID != "" {
		where, args = append(where, "st.study_uid = ?"), append(args, q.StudyInstanceUID)
	}
	if q.SeriesInstanceUID != "" && q.Level >= storage.LevelSeries {
		where, args = append(where, "se.series_uid = ?"), append(args, q.SeriesInstanceUID)
	}
	// A study search with a fuzzy PatientName reads its keys from
	// study_name_words (00005): the range of one word, in search order,
	// is the driver; the other conditions filter it.
	var (
		drive     *storage.Cond
		driveWord int
	)
	for i, c := range conds {
		if q.Level == storage.LevelStudy && drive == nil && c.Kind == storage.MatchFuzzy && c.Attr.Keyword == "PatientName" {
			drive, driveWord = &conds[i], driverWord(c.Values)
			continue
		}
		expr, a, err := condSQL(c)
		if err != nil {
			return nil, fmt.Errorf("sqliteindex: search: %w", err)
		}
		where, args = append(where, expr), append(args, a...)
	}
	keys := studyKeys
	if drive != nil {
		join := len(where) > 1 // other conditions on the study row
		src, sargs := wordRows(drive.Values[driveWord])
		ow, oargs := fuzzyNameSQL("w.study_pk", drive.Values, driveWord)
		where = append([]string{ow}, where...)
		args = slices.Concat(sargs, oargs, args)
		keys = wordKeys
		if join {
			keys = wordKeysJoin
		}
		keys = strings.Replace(keys, "study_name_words w", "("+src+") w", 1)
	}
	limit := q.Limit
	if limit <= 0 {
		limit = defaultLimit
	}
	limit = min(limit, maxLimit)
	args = append(args, limit, max(q.Offset, 0))
	cond := strings.Join(where, " AND ")

	leave, err := x.gate.enter(ctx)
	if err != nil {
		return nil, fmt.Errorf("sqliteindex: search: %w", err)
	}
	defer leave()
	var res []storage.Result
	switch q.Level {
	case storage.LevelStudy:
		res, err = x.searchStudies(ctx, keys, cond, args, !q.OmitMetadata)
	case storage.LevelSeries:
		res, err = x.searchSeries(ctx, cond, args, !q.OmitMetadata)
	case storage.LevelInstance:
		res, err = x.searchInstances(ctx, cond, args, !q.OmitMetadata)
	default:
		return nil, fmt.Errorf("sqliteindex: search: %w: level %v", storage.ErrBadQuery, q.Level)
	}
	if err != nil {
		return nil, fmt.Errorf("sqliteindex: search: %w", err)
	}
	return res, nil
}

// representative selects the metadata of a study's (series') first
// instance; NULL when the query omits metadata.
func representative(parent string, rep bool) string {
	if !rep {
		return `NULL`
	}
	return `(SELECT c.metadata FROM instances c WHERE c.` + parent + ` ORDER BY c.instance_pk LIMIT 1)`
}

// The key queries of a study search (a page of study_pk with the sort
// key): from the studies table, or driven by a fuzzy PatientName word's
// range in study_name_words, joined to the study row only when other
// conditions need it. Two words of one name may start with the query
// word: GROUP BY the sort key (which includes study_pk) removes the
// duplicates in the sorter that orders the page (one temporary B-tree;
// DISTINCT would add a second one over every matching row, 4× slower
// for SMITH at 1M). %s: the conditions.
const (
	studyKeys = `SELECT st.study_pk, st.study_date, st.study_time FROM studies st
			WHERE %s
			ORDER BY st.study_date DESC, st.study_time DESC, st.study_pk`
	wordKeys = `SELECT w.study_pk, w.study_date, w.study_time FROM study_name_words w
			WHERE %s
			GROUP BY w.study_date, w.study_time, w.study_pk
			ORDER BY w.study_date DESC, w.study_time DESC, w.study_pk`
	wordKeysJoin = `SELECT w.study_pk, w.study_date, w.study_time FROM study_name_words w
			JOIN studies st ON st.study_pk = w.study_pk
			WHERE %s
			GROUP BY w.study_date, w.study_time, w.study_pk
			ORDER BY w.study_date DESC, w.study_time DESC, w.study_pk`
)

func (x *Index) searchStudies(ctx context.Context, keys, where string, args []any, rep bool) ([]storage.Result, error) {
	// The computed attributes are columns of the study row (00003_counts).
	// The page is cut first as keys (study_pk and the sort key), which
	// the indexes of 00004 answer without reading a table row for a
	// study that is not returned; the rows and the representative are
	// read for the returned page only.
	rows, err := x.query(ctx, `SELECT st.study_uid, `+studyAttrCols+`,
		st.num_series, st.num_instances, st.modalities, st.sop_classes,
		`+representative("study_pk = st.study_pk", rep)+`
		FROM (`+strings.Replace(keys, "%s", where, 1)+`
			LIMIT ? OFFSET ?) k
		JOIN studies st ON st.study_pk = k.study_pk
		ORDER BY k.study_date DESC, k.study_time DESC, k.study_pk`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []storage.Result
	for rows.Next() {
		var (
			r          storage.Result
			mods, clss sql.NullString
			meta       []byte
		)
		s := &r.Study
		dest := append([]any{&s.StudyInstanceUID}, studyAttrDest(&s.Attrs)...)
		dest = append(dest, &s.NumberOfSeries, &s.NumberOfInstances, &mods, &clss, &meta)
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		s.ModalitiesInStudy = splitSorted(mods.String)
		s.SOPClassesInStudy = splitSorted(clss.String)
		if s.Representative, err = decompress(meta); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func splitSorted(s string) []string {
	if s == "" {
		return nil
	}
	v := strings.Split(s, ",")
	slices.Sort(v)
	return v
}

func (x *Index) searchSeries(ctx context.Context, where string, args []any, rep bool) ([]storage.Result, error) {
	rows, err := x.query(ctx, `SELECT st.study_uid, `+studyAttrCols+`, se.series_uid, `+seriesAttrCols+`,
		se.num_instances, `+representative("series_pk = se.series_pk", rep)+`
		FROM series se JOIN studies st ON st.study_pk = se.study_pk
		WHERE `+where+`
		ORDER BY `+seriesOrder+`
		LIMIT ? OFFSET ?`, args...)
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

func (x *Index) searchInstances(ctx context.Context, where string, args []any, meta bool) ([]storage.Result, error) {
	cols := instanceCols
	if !meta {
		cols = locateCols
	}
	rows, err := x.query(ctx, `SELECT `+cols+instanceFrom+`
		WHERE `+where+`
		ORDER BY (i.instance_number = ''), CAST(i.instance_number AS INTEGER), i.instance_pk
		LIMIT ? OFFSET ?`, args...)
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
