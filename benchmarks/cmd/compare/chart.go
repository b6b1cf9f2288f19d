package main

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/workpool-go/workpool/benchmarks"
)

// points are ratios with their confidence intervals, one per contender.
type points struct {
	plotter.XYs
	lo, hi []float64
}

func (p points) XError(i int) (float64, float64) { return p.lo[i], p.hi[i] }

var (
	workpoolColor = color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}
	peerColor     = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}
	refColor      = color.Gray{Y: 0x80}
)

// writeChart draws one panel per scenario: each contender's median ratio
// to the channel pool (log scale) with its 95% interval.
func writeChart(path string, res *results) error {
	const cols = 2
	rows := (len(benchmarks.Scenarios) + cols - 1) / cols
	grid := make([][]*plot.Plot, rows)
	for i := range grid {
		grid[i] = make([]*plot.Plot, cols)
	}
	for i, s := range benchmarks.Scenarios {
		p, err := panel(res, s)
		if err != nil {
			return err
		}
		grid[i/cols][i%cols] = p
	}
	for i := len(benchmarks.Scenarios); i < rows*cols; i++ {
		grid[i/cols][i%cols] = plot.New()
	}
	img := vgimg.New(12*vg.Inch, vg.Length(rows)*3.4*vg.Inch)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: rows, Cols: cols, PadX: vg.Millimeter * 4, PadY: vg.Millimeter * 4,
		PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 4}
	canvases := plot.Align(grid, tiles, dc)
	for r := range grid {
		for c := range grid[r] {
			grid[r][c].Draw(canvases[r][c])
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func panel(res *results, s benchmarks.Scenario) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = s.Title
	p.X.Label.Text = fmt.Sprintf("%s, × %s (log scale; lower is better)", s.Metric, benchmarks.Reference)
	var names []string
	var ours, peers points
	var labels plotter.XYLabels
	lo, hi := 1.0, 1.0
	cs := benchmarks.Contenders()
	for i := len(cs) - 1; i >= 0; i-- { // NominalY puts the first name at the bottom
		c := cs[i]
		r, ok := res.ratio(s.Name, c.Name, s.Metric)
		if !ok {
			continue
		}
		y := float64(len(names))
		names = append(names, c.Name)
		dst := &peers
		if strings.HasPrefix(c.Name, "workpool") {
			dst = &ours
		}
		l, h := 0.0, 0.0
		if r.ok {
			l, h = r.center-r.lo, r.hi-r.center
		}
		dst.XYs = append(dst.XYs, plotter.XY{X: r.center, Y: y})
		dst.lo, dst.hi = append(dst.lo, l), append(dst.hi, h)
		labels.XYs = append(labels.XYs, plotter.XY{X: r.center + h, Y: y})
		v, _ := res.median(s.Name, c.Name, s.Metric)
		labels.Labels = append(labels.Labels, fmt.Sprintf("%.2f× (%s)", r.center, fmtUnit(v.center, s.Metric)))
		lo, hi = math.Min(lo, r.center-l), math.Max(hi, r.center+h)
	}
	if len(names) == 0 {
		return p, nil
	}
	p.NominalY(names...)
	p.X.Scale = plot.LogScale{}
	p.X.Min, p.X.Max = lo/1.3, hi*3.5
	p.X.Tick.Marker = ratioTicks{}
	p.Add(plotter.NewGrid())

	ref, err := plotter.NewLine(plotter.XYs{{X: 1, Y: -0.5}, {X: 1, Y: float64(len(names)) - 0.5}})
	if err != nil {
		return nil, err
	}
	ref.Color, ref.Dashes = refColor, []vg.Length{vg.Points(3), vg.Points(3)}
	p.Add(ref)
	for _, set := range []struct {
		pts points
		c   color.Color
	}{{peers, peerColor}, {ours, workpoolColor}} {
		if len(set.pts.XYs) == 0 {
			continue
		}
		sc, err := plotter.NewScatter(set.pts)
		if err != nil {
			return nil, err
		}
		sc.GlyphStyle.Color, sc.GlyphStyle.Radius, sc.GlyphStyle.Shape = set.c, vg.Points(3.5), draw.CircleGlyph{}
		eb, err := plotter.NewXErrorBars(set.pts)
		if err != nil {
			return nil, err
		}
		eb.LineStyle.Color = set.c
		p.Add(eb, sc)
	}
	lb, err := plotter.NewLabels(labels)
	if err != nil {
		return nil, err
	}
	for i := range lb.TextStyle {
		lb.TextStyle[i].XAlign, lb.TextStyle[i].YAlign = draw.XLeft, draw.YCenter
	}
	lb.Offset = vg.Point{X: vg.Points(6)}
	p.Add(lb)
	return p, nil
}

// ratioTicks marks 1-2-5 steps, which a log axis spanning less than a
// decade or two needs to be readable.
type ratioTicks struct{}

func (ratioTicks) Ticks(min, max float64) []plot.Tick {
	steps := []float64{1, 2, 5}
	if max/min > 100 {
		steps = []float64{1} // over more than two decades 1-2-5 crowds the axis
	}
	var ts []plot.Tick
	for e := math.Floor(math.Log10(min)); e <= math.Ceil(math.Log10(max)); e++ {
		for _, m := range steps {
			v := m * math.Pow(10, e)
			if v < min || v > max {
				continue
			}
			ts = append(ts, plot.Tick{Value: v, Label: strings.TrimSuffix(fmt.Sprintf("%g×", v), ".0")})
		}
	}
	return ts
}
