//! The dashboards' small charts: inline SVG drawn on the server, no script, no external asset.
//!
//! Two shapes: [`columns`], counts per time bucket over a [`Window`] (stacked when there are
//! several series), and [`bars`], counts per category with their share. Each chart is a
//! `<figure>` whose `<svg>` has a `<title>` and a `<desc>` (named by `aria-labelledby`), a
//! `<title>` on every bar (the browser's tooltip), and the numbers in text beside it: the
//! legend's totals, and for columns every non-empty bucket in a table under "The numbers".
//! Counts of any size scale to the chart's height; an empty chart says so.

use maud::{Markup, html};
use warifu_store::Bucket;

use super::dashboard::{grouped, heads, time_ms};

/// The colour of a good outcome (approvals, deliveries).
pub const GOOD: &str = "c-good";
/// The colour of a bad outcome (declines, returns).
pub const BAD: &str = "c-bad";
/// The colour of anything else in between.
pub const NEUTRAL: &str = "c-neutral";
/// Colours for series that are neither good nor bad, in turn.
pub const PALETTE: [&str; 4] = ["c0", "c1", "c2", "c3"];

/// The drawing's width and the plot's margins, in SVG units.
const WIDTH: f64 = 600.0;
const LEFT: f64 = 48.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 8.0;
const PLOT_H: f64 = 120.0;
const BOTTOM: f64 = 20.0;
/// A bar chart's label column, bar length and row height.
const LABEL_W: f64 = 170.0;
const BAR_W: f64 = 320.0;
const ROW_H: f64 = 22.0;

/// The last `buckets` time buckets of `bucket_ms` each, the last one holding now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// The first bucket's start, Unix milliseconds.
    pub start_ms: i64,
    /// A bucket's width in milliseconds.
    pub bucket_ms: i64,
    /// How many buckets.
    pub buckets: usize,
}

impl Window {
    /// The dashboards' window: the last three hours by the minute, up to `now_ms`.
    pub fn recent(now_ms: i64) -> Window {
        Window::last(now_ms, 60_000, 180)
    }

    /// The `buckets` buckets of `bucket_ms` (at least 1 ms) up to and including `now_ms`'s.
    pub fn last(now_ms: i64, bucket_ms: i64, buckets: usize) -> Window {
        let bucket_ms = bucket_ms.max(1);
        let buckets = buckets.max(1);
        let back = i64::try_from(buckets - 1).unwrap_or(i64::MAX);
        Window {
            start_ms: now_ms
                .div_euclid(bucket_ms)
                .saturating_mul(bucket_ms)
                .saturating_sub(back.saturating_mul(bucket_ms)),
            bucket_ms,
            buckets,
        }
    }

    /// Per bucket, the count of the rows whose key `keep` accepts (rows outside are ignored).
    pub fn counts(&self, rows: &[Bucket], keep: impl Fn(&str) -> bool) -> Vec<u64> {
        let mut out = vec![0u64; self.buckets];
        for r in rows.iter().filter(|r| keep(&r.key)) {
            let i = r
                .start_ms
                .saturating_sub(self.start_ms)
                .div_euclid(self.bucket_ms);
            if let Some(n) = usize::try_from(i).ok().and_then(|i| out.get_mut(i)) {
                *n = n.saturating_add(r.count);
            }
        }
        out
    }

    /// The window's length and its buckets' in words: `3 h`, `minute`.
    fn words(&self) -> (String, String) {
        let span = |ms: i64| match ms {
            ms if ms % 3_600_000 == 0 => format!("{} h", ms / 3_600_000),
            ms if ms % 60_000 == 0 => format!("{} min", ms / 60_000),
            ms => format!("{} s", ms as f64 / 1000.0),
        };
        let total = self
            .bucket_ms
            .saturating_mul(i64::try_from(self.buckets).unwrap_or(i64::MAX));
        let bucket = match self.bucket_ms {
            60_000 => "minute".to_owned(),
            3_600_000 => "hour".to_owned(),
            ms => span(ms),
        };
        (span(total), bucket)
    }
}

/// One series of a column chart: its name, colour and count per bucket.
#[derive(Debug, Clone)]
pub struct Series {
    /// What it counts (shown in the legend and tooltips).
    pub name: String,
    /// Its colour: [`GOOD`], [`BAD`], [`NEUTRAL`] or one of [`PALETTE`].
    pub tone: &'static str,
    /// The count per bucket of the window.
    pub counts: Vec<u64>,
}

/// One bar of a bar chart: a category, its count and colour.
#[derive(Debug, Clone)]
pub struct Bar {
    /// The category.
    pub label: String,
    /// How many.
    pub count: u64,
    /// Its colour.
    pub tone: &'static str,
}

/// The total per key of `rows` (largest first), each bar coloured by `tone`.
pub fn totals(rows: &[Bucket], tone: impl Fn(&str) -> &'static str) -> Vec<Bar> {
    let mut by_key: std::collections::BTreeMap<&str, u64> = Default::default();
    for r in rows {
        let n = by_key.entry(r.key.as_str()).or_default();
        *n = n.saturating_add(r.count);
    }
    let mut bars: Vec<Bar> = by_key
        .into_iter()
        .map(|(k, n)| Bar {
            label: k.to_owned(),
            count: n,
            tone: tone(k),
        })
        .collect();
    bars.sort_by_key(|b| core::cmp::Reverse(b.count));
    bars
}

/// The colour of an authorization outcome: approved, a decline code, or anything else.
pub fn outcome_tone(key: &str) -> &'static str {
    match key {
        "approved" => GOOD,
        k if warifu_store::DeclineCode::parse(k).is_some() => BAD,
        _ => NEUTRAL,
    }
}

fn num(x: f64) -> String {
    format!("{x:.1}")
}

/// `HH:MM` of a time.
fn clock(ms: i64) -> String {
    time_ms(ms).get(11..16).unwrap_or("?").to_owned()
}

/// The figure around a chart: caption, the drawing (with its title and description) and
/// what follows it.
fn figure(id: &str, title: &str, desc: &str, height: f64, plot: Markup, after: Markup) -> Markup {
    let (t, d) = (format!("{id}-title"), format!("{id}-desc"));
    html! {
        figure.chart id=(id) {
            figcaption { strong { (title) } br; span.muted { (desc) } }
            svg role="img" aria-labelledby=(format!("{t} {d}")) xmlns="http://www.w3.org/2000/svg"
                viewBox=(format!("0 0 {WIDTH} {}", num(height))) width=(WIDTH) height=(num(height)) {
                title id=(t) { (title) }
                desc id=(d) { (desc) }
                (plot)
            }
            (after)
        }
    }
}

/// Counts per bucket of `window`, the series stacked: `unit` names what is counted
/// (`orders`). `id` must be unique on the page.
pub fn columns(id: &str, title: &str, unit: &str, window: &Window, series: &[Series]) -> Markup {
    let (span, per) = window.words();
    let n = window.buckets;
    let stack: Vec<u64> = (0..n)
        .map(|i| {
            series
                .iter()
                .map(|s| s.counts.get(i).copied().unwrap_or(0))
                .fold(0u64, u64::saturating_add)
        })
        .collect();
    let total = stack.iter().copied().fold(0u64, u64::saturating_add);
    let peak = stack.iter().copied().max().unwrap_or(0);
    let desc = if total == 0 {
        format!("No {unit} in the last {span}.")
    } else {
        format!(
            "{} {unit} in the last {span}; at most {} in one {per}.",
            grouped(total),
            grouped(peak)
        )
    };
    let slot = (WIDTH - LEFT - RIGHT) / n as f64;
    let bar_w = (slot * 0.8).max(0.5);
    let base = TOP + PLOT_H;
    let height = |v: u64| {
        if peak == 0 || v == 0 {
            0.0
        } else {
            v as f64 / peak as f64 * PLOT_H
        }
    };
    let at = |i: usize| {
        let i = i64::try_from(i).unwrap_or(i64::MAX);
        window
            .start_ms
            .saturating_add(window.bucket_ms.saturating_mul(i))
    };
    // Each non-zero count's rectangle (x, y, height, series), stacked from the base; a
    // rectangle is at least 1 unit high, so the smallest count stays visible.
    let mut rects = Vec::new();
    for i in 0..n {
        let x = LEFT + slot * i as f64 + (slot - bar_w) / 2.0;
        let (mut below, mut y) = (0u64, base);
        for s in series {
            let v = s.counts.get(i).copied().unwrap_or(0);
            if v > 0 {
                below = below.saturating_add(v);
                let top = (base - height(below)).min(y - 1.0).max(TOP);
                rects.push((x, top, y - top, s, v, i));
                y = top;
            }
        }
    }
    let plot = html! {
        line.axis x1=(LEFT) y1=(base) x2=(WIDTH - RIGHT) y2=(base) {}
        text x=(LEFT - 4.0) y=(num(base)) text-anchor="end" { "0" }
        @if peak > 0 {
            line.grid x1=(LEFT) y1=(TOP) x2=(WIDTH - RIGHT) y2=(TOP) {}
            text x=(LEFT - 4.0) y=(num(TOP + 10.0)) text-anchor="end" { (grouped(peak)) }
        } @else {
            text x=(num(LEFT + (WIDTH - LEFT - RIGHT) / 2.0)) y=(num(TOP + PLOT_H / 2.0)) text-anchor="middle" { "nothing yet" }
        }
        text x=(LEFT) y=(num(base + BOTTOM - 4.0)) { (clock(window.start_ms)) }
        text x=(WIDTH - RIGHT) y=(num(base + BOTTOM - 4.0)) text-anchor="end" { "now (UTC)" }
        @for (x, y, h, s, v, i) in &rects {
            rect class=(s.tone) x=(num(*x)) y=(num(*y)) width=(num(bar_w)) height=(num(*h)) {
                title { (clock(at(*i))) " UTC · " (s.name) ": " (grouped(*v)) }
            }
        }
    };
    let mut cols = vec![format!("{} (UTC)", capitalized(&per))];
    cols.extend(series.iter().map(|s| s.name.clone()));
    let cols: Vec<&str> = cols.iter().map(String::as_str).collect();
    let after = html! {
        p.legend {
            @for s in series {
                span.key {
                    span class=(format!("swatch {}", s.tone)) {}
                    (s.name) " " (grouped(s.counts.iter().copied().fold(0u64, u64::saturating_add)))
                }
                " "
            }
        }
        @if total > 0 {
            details {
                summary { "The numbers" }
                table {
                    (heads(&cols))
                    tbody {
                        @for (i, _) in stack.iter().enumerate().filter(|(_, sum)| **sum > 0) {
                            tr {
                                td { (time_ms(at(i))) }
                                @for s in series { td.num { (grouped(s.counts.get(i).copied().unwrap_or(0))) } }
                            }
                        }
                    }
                }
            }
        }
    };
    figure(id, title, &desc, TOP + PLOT_H + BOTTOM, plot, after)
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// Counts per category, each with its share of the total: `unit` names what is counted.
/// `id` must be unique on the page.
pub fn bars(id: &str, title: &str, unit: &str, bars: &[Bar]) -> Markup {
    let total = bars.iter().map(|b| b.count).fold(0u64, u64::saturating_add);
    let peak = bars.iter().map(|b| b.count).max().unwrap_or(0);
    let share = |v: u64| {
        if total == 0 {
            0.0
        } else {
            v as f64 / total as f64 * 100.0
        }
    };
    let desc = if total == 0 {
        format!("No {unit} yet.")
    } else {
        let parts: Vec<String> = bars
            .iter()
            .map(|b| format!("{} {} ({:.0} %)", b.label, grouped(b.count), share(b.count)))
            .collect();
        format!("{} {unit}: {}.", grouped(total), parts.join(", "))
    };
    let rows = bars.len().max(1);
    let height = ROW_H * rows as f64 + 4.0;
    let plot = html! {
        @if total == 0 {
            text x=(LABEL_W) y=(num(ROW_H - 6.0)) { "nothing yet" }
        }
        @for (i, b) in bars.iter().enumerate() {
            @let y = 2.0 + ROW_H * i as f64;
            @let len = if b.count == 0 || peak == 0 { 0.0 } else { (b.count as f64 / peak as f64 * BAR_W).max(1.0) };
            text x=(LABEL_W - 6.0) y=(num(y + ROW_H - 7.0)) text-anchor="end" { (b.label) }
            @if len > 0.0 {
                rect class=(b.tone) x=(LABEL_W) y=(num(y + 3.0)) width=(num(len)) height=(num(ROW_H - 6.0)) {
                    title { (b.label) ": " (grouped(b.count)) " " (unit) }
                }
            }
            text x=(num(LABEL_W + len + 6.0)) y=(num(y + ROW_H - 7.0)) {
                (grouped(b.count)) " (" (format!("{:.0}", share(b.count))) " %)"
            }
        }
    };
    figure(id, title, &desc, height, plot, html! {})
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    fn bucket(start_ms: i64, key: &str, count: u64) -> Bucket {
        Bucket {
            start_ms,
            key: key.into(),
            count,
        }
    }

    #[test]
    fn windows_count_their_own_buckets() {
        let w = Window::last(10 * MIN + 5, MIN, 3);
        assert_eq!(w.start_ms, 8 * MIN);
        let rows = [
            bucket(7 * MIN, "a", 9),
            bucket(8 * MIN, "a", 1),
            bucket(10 * MIN, "a", 2),
            bucket(10 * MIN, "b", 4),
            bucket(11 * MIN, "a", 9),
        ];
        assert_eq!(w.counts(&rows, |_| true), [1, 0, 6]);
        assert_eq!(w.counts(&rows, |k| k == "b"), [0, 0, 4]);
        let t = totals(&rows, outcome_tone);
        assert_eq!(
            (t[0].label.as_str(), t[0].count, t[0].tone),
            ("a", 21, NEUTRAL)
        );
        assert_eq!(outcome_tone("approved"), GOOD);
        assert_eq!(outcome_tone("insufficient_credit"), BAD);
    }

    #[test]
    fn empty_charts_say_so() {
        let w = Window::last(0, MIN, 180);
        let s = columns("c", "Orders per minute", "orders", &w, &[]).into_string();
        assert!(
            s.contains("<title id=\"c-title\">Orders per minute</title>"),
            "{s}"
        );
        assert!(s.contains("No orders in the last 3 h."), "{s}");
        assert!(!s.contains("<rect"), "{s}");
        let s = bars("b", "Declines", "decisions", &[]).into_string();
        assert!(
            s.contains("No decisions yet.") && !s.contains("<rect"),
            "{s}"
        );
    }

    #[test]
    fn big_counts_scale_and_names_are_escaped() {
        let w = Window::last(100 * MIN, MIN, 4);
        let big = u64::MAX / 2;
        let series = [
            Series {
                name: "<b>".into(),
                tone: GOOD,
                counts: vec![big, 0, 1, big],
            },
            Series {
                name: "declined".into(),
                tone: BAD,
                counts: vec![big, 0, 0, 0],
            },
        ];
        let s = columns("c", "T", "orders", &w, &series).into_string();
        assert!(s.contains("&lt;b&gt;") && !s.contains("<b>"), "{s}");
        assert_eq!(s.matches("<rect").count(), 4, "{s}");
        // The stacked column is at most the plot's height, the small one still visible.
        for h in s
            .split("height=\"")
            .skip(2)
            .filter_map(|h| h.split('"').next())
        {
            let h: f64 = h.parse().expect("a number");
            assert!((1.0..=PLOT_H).contains(&h), "{h} in {s}");
        }
        assert!(s.contains(&grouped(u64::MAX)), "the total saturates: {s}");
        let b = bars(
            "b",
            "T",
            "orders",
            &[
                Bar {
                    label: "approved".into(),
                    count: big,
                    tone: GOOD,
                },
                Bar {
                    label: "blocked".into(),
                    count: 1,
                    tone: BAD,
                },
            ],
        )
        .into_string();
        assert!(b.contains("(100 %)") && b.contains("(0 %)"), "{b}");
    }
}
