package e2e

import (
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/suyashkumar/dicom/pkg/tag"
)

// listStudy is one generated study of the paging test and what its row
// must show.
type listStudy struct {
	uid                   string
	name, pid, date, desc string
	acc, mod              string
	series, instances     int
}

// makeStudies writes n studies from the corpus CT by UID rewriting. Each
// column gets its own permutation of the studies (so that sorting by one
// column gives an order no other column gives), and the studies have 1–2
// series of 1–3 instances.
func makeStudies(t testing.TB, n int) ([]listStudy, [][]byte) {
	t.Helper()
	tpl := loadTemplate(t, "study/s02_ct/ct_0001.dcm")
	perm := func(i, k int) int { return (i * k) % n } // k coprime with n
	var studies []listStudy
	var objs [][]byte
	for i := 0; i < n; i++ {
		s := listStudy{
			uid:    fmt.Sprintf("2.25.9%03d%030d", i, 4242),
			name:   fmt.Sprintf("PAGE^P%02d", perm(i, 7)),
			pid:    fmt.Sprintf("PID%02d", perm(i, 11)),
			date:   time.Date(2020, 1, 1+perm(i, 13), 0, 0, 0, 0, time.UTC).Format("20060102"),
			desc:   fmt.Sprintf("DESC %02d", perm(i, 17)),
			acc:    fmt.Sprintf("ACC%02d", perm(i, 19)),
			mod:    []string{"CT", "MR", "PT"}[perm(i, 23)%3],
			series: 1 + i%2,
		}
		for se := 1; se <= s.series; se++ {
			series := fmt.Sprintf("%s.%d", s.uid, se)
			for k := 1; k <= 1+i%3; k++ {
				tpl.setUIDs(s.uid, series, fmt.Sprintf("%s.%d", series, k))
				tpl.set(tag.PatientName, s.name)
				tpl.set(tag.PatientID, s.pid)
				tpl.set(tag.StudyDate, s.date)
				tpl.set(tag.StudyTime, fmt.Sprintf("%02d0000", 8+i%10))
				tpl.set(tag.StudyDescription, s.desc)
				tpl.set(tag.AccessionNumber, s.acc)
				tpl.set(tag.Modality, s.mod)
				tpl.set(tag.SeriesNumber, strconv.Itoa(se))
				tpl.set(tag.InstanceNumber, strconv.Itoa(k))
				objs = append(objs, tpl.bytes())
				s.instances++
			}
		}
		studies = append(studies, s)
	}
	return studies, objs
}

// listPage is what the study list shows.
type listPage struct {
	Rows     []listRow
	Status   string
	Page     string
	Prev     bool // enabled
	Next     bool
	SortKey  string
	SortWhat string
}

type listRow struct {
	UID   string
	Cells []string
}

// columns of the study table, in order (list.js COLUMNS).
var listColumns = []string{"name", "pid", "date", "desc", "acc", "mod", "series", "inst"}

func (b *browser) listPage() listPage {
	b.t.Helper()
	var p listPage
	b.eval("study list", `(() => {
		const th = document.querySelector('th[aria-sort=ascending], th[aria-sort=descending]');
		return {
			rows: [...document.querySelectorAll('#studies tbody tr')].map((r) => ({ uid: r.dataset.study, cells: [...r.cells].map((c) => c.innerText.trim()) })),
			status: document.querySelector('#list-status').innerText,
			page: document.querySelector('#page-info').innerText,
			prev: !document.querySelector('#prev').disabled,
			next: !document.querySelector('#next').disabled,
			sortKey: th ? th.dataset.key : '', sortWhat: th ? th.getAttribute('aria-sort') : '',
		};
	})()`, &p)
	return p
}

// TestViewerListPaging: 30 studies, 25 a page; the next page shows the
// other 5; every row shows its counts; every column sorts the page both
// ways without leaving it.
func TestViewerListPaging(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	b := newBrowser(t, 1366, 900)
	srv := startPACS(t)
	studies, objs := makeStudies(t, 30)
	stow(t, srv.Root, objs)
	byUID := map[string]listStudy{}
	for _, s := range studies {
		byUID[s.uid] = s
	}

	b.must(20*time.Second, "study list", chromedp.Navigate(srv.URL+"/"),
		poll(`document.querySelectorAll('#studies tbody tr').length === 25 && !document.querySelector('#next').disabled`, 15*time.Second))
	p1 := b.listPage()
	if len(p1.Rows) != 25 || p1.Status != "Studies 1–25+" || p1.Page != "Page 1" || p1.Prev || !p1.Next {
		t.Errorf("page 1: %d rows, status %q, %q, prev %v next %v", len(p1.Rows), p1.Status, p1.Page, p1.Prev, p1.Next)
	}
	checkRows := func(what string, rows []listRow) {
		for _, r := range rows {
			s, ok := byUID[r.UID]
			if !ok {
				t.Errorf("%s: unknown study %s", what, r.UID)
				continue
			}
			want := []string{
				"PAGE, " + s.name[len("PAGE^"):], s.pid,
				s.date[:4] + "-" + s.date[4:6] + "-" + s.date[6:], s.desc, s.acc, s.mod,
				strconv.Itoa(s.series), strconv.Itoa(s.instances),
			}
			got := slices.Clone(r.Cells)
			if len(got) == len(want) {
				got[2] = got[2][:min(10, len(got[2]))] // date without the time
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s: row %s shows %q, want %q", what, r.UID, r.Cells, want)
			}
		}
	}
	checkRows("page 1", p1.Rows)
	b.screenshot("list-page1")

	// Sorting: each column, ascending then descending, within the page.
	uids := func(rows []listRow) []string {
		var u []string
		for _, r := range rows {
			u = append(u, r.UID)
		}
		return u
	}
	pageSet := slices.Sorted(slices.Values(uids(p1.Rows)))
	orders := map[string]bool{}
	for ci, key := range listColumns {
		for _, dir := range []string{"ascending", "descending"} {
			b.must(5*time.Second, "sort by "+key, chromedp.Click(chromedp.CSS(`th[data-key=`+key+`]`)))
			p := b.listPage()
			if p.SortKey != key || p.SortWhat != dir {
				t.Errorf("sort %s: header says %s %s", key, p.SortKey, p.SortWhat)
			}
			if got := slices.Sorted(slices.Values(uids(p.Rows))); !slices.Equal(got, pageSet) {
				t.Errorf("sort %s %s changed the rows of the page", key, dir)
			}
			var vals []string
			for _, r := range p.Rows {
				vals = append(vals, r.Cells[ci])
			}
			cmp := func(a, b string) int {
				if key == "series" || key == "inst" {
					x, _ := strconv.Atoi(a)
					y, _ := strconv.Atoi(b)
					return x - y
				}
				if a < b {
					return -1
				} else if a > b {
					return 1
				}
				return 0
			}
			sorted := slices.IsSortedFunc(vals, cmp)
			if dir == "descending" {
				sorted = slices.IsSortedFunc(vals, func(a, b string) int { return cmp(b, a) })
			}
			if !sorted {
				t.Errorf("sort by %s %s: column values %q", key, dir, vals)
			}
			orders[fmt.Sprint(uids(p.Rows))] = true
		}
	}
	// name, pid, date, desc, acc: a distinct order each way.
	if len(orders) < 10 {
		t.Errorf("only %d distinct row orders over 16 sorts", len(orders))
	}

	// Next page: the other 5 studies.
	b.must(20*time.Second, "next page", chromedp.Click(chromedp.CSS(`#next`)),
		poll(`document.querySelector('#page-info').innerText === 'Page 2' && document.querySelectorAll('#studies tbody tr').length === 5`, 15*time.Second))
	p2 := b.listPage()
	if len(p2.Rows) != 5 || p2.Status != "Studies 26–30" || !p2.Prev || p2.Next {
		t.Errorf("page 2: %d rows, status %q, prev %v next %v", len(p2.Rows), p2.Status, p2.Prev, p2.Next)
	}
	checkRows("page 2", p2.Rows)
	all := append(uids(p1.Rows), uids(p2.Rows)...)
	slices.Sort(all)
	if len(slices.Compact(slices.Clone(all))) != 30 || len(all) != 30 {
		t.Errorf("the two pages show %d rows, %d distinct studies; want the 30 studies once each", len(all), len(slices.Compact(all)))
	}
	var loc string
	b.eval("location", `location.pathname + location.search`, &loc)
	if loc != "/?offset=25" {
		t.Errorf("page 2 URL %q", loc)
	}
	b.screenshot("list-page2")

	// Back to page 1: the same 25 studies.
	b.must(20*time.Second, "previous page", chromedp.Click(chromedp.CSS(`#prev`)),
		poll(`document.querySelector('#page-info').innerText === 'Page 1' && document.querySelectorAll('#studies tbody tr').length === 25`, 15*time.Second))
	if got := slices.Sorted(slices.Values(uids(b.listPage().Rows))); !slices.Equal(got, pageSet) {
		t.Error("page 1 again shows other studies")
	}
	b.checkClean()
}
