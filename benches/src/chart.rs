//! SVG charts of benchmark results, written by the command that writes their table (so the two
//! cannot disagree): horizontal bars per implementation, and lines of a figure against a count.
//!
//! plotters with its SVG backend only: text goes into the SVG as `<text>` for the viewer to draw
//! (plotters' built-in estimate lays it out), so building and running need no font file,
//! fontconfig or other C library.

use std::ops::Range;
use std::path::Path;

use plotters::coord::ranged1d::{AsRangedCoord, SegmentValue, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

/// One bar: a row label and its value; `ours` bars are drawn in the accent colour.
#[derive(Debug, Clone)]
pub struct Bar {
    /// The row label (an implementation).
    pub label: String,
    /// The bar's length.
    pub value: f64,
    /// Whether it is this workspace's row.
    pub ours: bool,
}

/// A horizontal bar chart.
#[derive(Debug, Clone)]
pub struct Bars<'a> {
    /// The title above the chart.
    pub title: &'a str,
    /// What the values are, under the axis (`ns per call`).
    pub unit: &'a str,
    /// The bars, top to bottom.
    pub bars: Vec<Bar>,
    /// A vertical reference line with its label (a floor), if any.
    pub reference: Option<(String, f64)>,
    /// A logarithmic value axis (for values that span orders of magnitude).
    pub log: bool,
    /// Where a linear axis ends: longer bars stop there, their label says how long they are
    /// (one outlier would otherwise squash every other bar to a sliver).
    pub cap: Option<f64>,
}

/// One line of a [`Lines`] chart: its legend and its points, in x order.
#[derive(Debug, Clone)]
pub struct Series {
    /// The legend entry.
    pub name: String,
    /// `(x, y)` points.
    pub points: Vec<(f64, f64)>,
}

/// A line chart: one figure against a count, one line per implementation or setting.
#[derive(Debug, Clone)]
pub struct Lines<'a> {
    /// The title above the chart.
    pub title: &'a str,
    /// The x axis' description (`processes`).
    pub x: &'a str,
    /// The y axis' description (`bytes per flight`).
    pub y: &'a str,
    /// The lines.
    pub series: Vec<Series>,
}

const WIDTH: u32 = 900;
const ACCENT: RGBColor = RGBColor(0x1f, 0x6f, 0xb4);
const PEER: RGBColor = RGBColor(0x9a, 0x9a, 0x9a);
const FLOOR: RGBColor = RGBColor(0xc0, 0x39, 0x2b);
const FONT: &str = "sans-serif";

/// Writes `chart` as an SVG file at `path`.
pub fn bars(path: &Path, chart: &Bars<'_>) -> Result<(), String> {
    let max = chart
        .bars
        .iter()
        .map(|bar| bar.value)
        .chain(chart.reference.iter().map(|(_, value)| *value))
        .filter(|value| value.is_finite())
        .fold(0.0, f64::max);
    let max = chart.cap.map_or(max, |cap| max.min(cap));
    let (lo, hi) = if chart.log {
        let min = chart
            .bars
            .iter()
            .map(|bar| bar.value)
            .filter(|value| *value > 0.0)
            .fold(f64::INFINITY, f64::min);
        // Whole decades, so that the axis reads 1, 10, 100, ..., starting a decade below the
        // shortest bar so that it shows.
        (
            10f64.powf((min / 10.0).log10().floor()),
            10f64.powf((max * 1.5).log10().ceil()),
        )
    } else {
        (0.0, max * 1.25)
    };
    let height = 90 + 28 * chart.bars.len() as u32;
    let root = SVGBackend::new(path, (WIDTH, height)).into_drawing_area();
    if chart.log {
        draw_bars(&root, chart, (lo..hi).log_scale())
    } else {
        draw_bars(&root, chart, lo..hi)
    }
    .and_then(|()| root.present().map_err(|err| err.to_string()))
    .map_err(|err| format!("{}: {err}", path.display()))
}

fn draw_bars<X>(
    root: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    chart: &Bars<'_>,
    x: X,
) -> Result<(), String>
where
    X: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
{
    let error = |err: DrawingAreaErrorKind<_>| err.to_string();
    root.fill(&WHITE).map_err(error)?;
    let rows = chart.bars.len();
    let labels: Vec<&str> = chart.bars.iter().map(|bar| bar.label.as_str()).collect();
    let mut area = ChartBuilder::on(root)
        .caption(chart.title, (FONT, 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(330)
        // Integer ranges are inclusive in plotters: `rows` values, `rows` segments.
        .build_cartesian_2d(x, (0..rows.max(1) - 1).into_segmented())
        .map_err(error)?;
    let row_label = |value: &SegmentValue<usize>| match value {
        // Row 0 at the top: the y axis counts from the bottom.
        SegmentValue::CenterOf(i) if *i < rows => labels[rows - 1 - *i].to_owned(),
        _ => String::new(),
    };
    area.configure_mesh()
        .disable_y_mesh()
        .y_labels(rows)
        .y_label_formatter(&row_label)
        .x_desc(chart.unit)
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .draw()
        .map_err(error)?;
    let (start, end) = (area.x_range().start, area.x_range().end);
    let shown = |bar: &Bar| bar.value.min(end);
    area.draw_series(chart.bars.iter().enumerate().map(|(i, bar)| {
        let row = rows - 1 - i;
        let colour = if bar.ours { ACCENT } else { PEER };
        let mut rect = Rectangle::new(
            [
                (start, SegmentValue::Exact(row)),
                (shown(bar), SegmentValue::Exact(row + 1)),
            ],
            colour.filled(),
        );
        rect.set_margin(4, 4, 0, 0);
        rect
    }))
    .map_err(error)?;
    area.draw_series(chart.bars.iter().enumerate().map(|(i, bar)| {
        // A capped bar's label goes inside its end, in white, with an arrow.
        let (text, colour, anchor) = if bar.value > end {
            (format!("{} →  ", number(bar.value)), WHITE, end * 0.85)
        } else {
            (format!(" {}", number(bar.value)), BLACK, bar.value)
        };
        Text::new(
            text,
            (anchor, SegmentValue::CenterOf(rows - 1 - i)),
            (FONT, 12).into_font().color(&colour),
        )
    }))
    .map_err(error)?;
    if let Some((label, value)) = &chart.reference {
        let line = [
            (*value, SegmentValue::Exact(0)),
            (*value, SegmentValue::Exact(rows)),
        ];
        area.draw_series(std::iter::once(PathElement::new(
            line,
            FLOOR.stroke_width(2),
        )))
        .map_err(error)?
        .label(format!("{label}: {}", number(*value)))
        .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], FLOOR.stroke_width(2)));
        area.configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .label_font((FONT, 13))
            .draw()
            .map_err(error)?;
    }
    Ok(())
}

/// Writes `chart` as an SVG file at `path`.
pub fn lines(path: &Path, chart: &Lines<'_>) -> Result<(), String> {
    let points = || chart.series.iter().flat_map(|s| s.points.iter().copied());
    let range = |get: fn((f64, f64)) -> f64| -> Range<f64> {
        let max = points().map(get).fold(0.0, f64::max);
        0.0..(max * 1.1).max(1.0)
    };
    let root = SVGBackend::new(path, (WIDTH, 480)).into_drawing_area();
    draw_lines(&root, chart, range(|p| p.0), range(|p| p.1))
        .and_then(|()| root.present().map_err(|err| err.to_string()))
        .map_err(|err| format!("{}: {err}", path.display()))
}

fn draw_lines(
    root: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    chart: &Lines<'_>,
    x: Range<f64>,
    y: Range<f64>,
) -> Result<(), String> {
    let error = |err: DrawingAreaErrorKind<_>| err.to_string();
    root.fill(&WHITE).map_err(error)?;
    let mut area: ChartContext<'_, _, Cartesian2d<RangedCoordf64, RangedCoordf64>> =
        ChartBuilder::on(root)
            .caption(chart.title, (FONT, 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(x, y)
            .map_err(error)?;
    area.configure_mesh()
        .x_desc(chart.x)
        .y_desc(chart.y)
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .draw()
        .map_err(error)?;
    for (i, series) in chart.series.iter().enumerate() {
        let colour = Palette99::pick(i).to_rgba();
        area.draw_series(LineSeries::new(
            series.points.iter().copied(),
            colour.stroke_width(2),
        ))
        .map_err(error)?
        .label(series.name.as_str())
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], colour.stroke_width(2)));
    }
    area.configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font((FONT, 13))
        .draw()
        .map_err(error)?;
    Ok(())
}

/// A value as the tables print it: three significant digits at most, no exponent.
fn number(value: f64) -> String {
    if !value.is_finite() {
        "n/a".into()
    } else if value.abs() >= 100.0 {
        format!("{value:.0}")
    } else if value.abs() >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}
