//! The recap card: an SVG built in code from a [`Recap`] (charts as shapes, text escaped), and
//! its PNG through `resvg`. The font (Nanum Gothic, OFL, Hangul and Latin) is embedded in the
//! binary and loaded into usvg's font database explicitly: no system font is ever used, so the
//! card looks the same on a bare machine.

use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};

use chrono::Datelike;

use crate::domain::periods::PeriodKind;
use crate::domain::recap::{Language, clock, period_label};
use crate::error::Error;
use crate::recap::Recap;

static REGULAR: &[u8] = include_bytes!("../../assets/fonts/NanumGothic.ttf");
static BOLD: &[u8] = include_bytes!("../../assets/fonts/NanumGothicBold.ttf");

/// The family every text element names.
pub const FONT_FAMILY: &str = "NanumGothic";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardFormat {
    Png,
    Svg,
}

impl CardFormat {
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Png => "image/png",
            Self::Svg => "image/svg+xml",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Png => "png",
            Self::Svg => "svg",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardSize {
    /// 1080×1920, for stories.
    Portrait,
    /// 1080×1080.
    Square,
}

impl CardSize {
    pub fn pixels(self) -> (u32, u32) {
        match self {
            Self::Portrait => (1080, 1920),
            Self::Square => (1080, 1080),
        }
    }
}

fn options() -> &'static usvg::Options<'static> {
    static OPTIONS: OnceLock<usvg::Options<'static>> = OnceLock::new();
    OPTIONS.get_or_init(|| {
        let mut db = usvg::fontdb::Database::new();
        db.load_font_data(REGULAR.to_vec());
        db.load_font_data(BOLD.to_vec());
        db.set_sans_serif_family(FONT_FAMILY);
        usvg::Options {
            font_family: FONT_FAMILY.to_owned(),
            fontdb: Arc::new(db),
            ..usvg::Options::default()
        }
    })
}

/// How many font faces the card's database holds (2: regular and bold).
pub fn font_faces() -> usize {
    options().fontdb.len()
}

/// `svg` rasterised to PNG at its own size.
pub fn png(svg: &str) -> Result<Vec<u8>, Error> {
    let tree = usvg::Tree::from_str(svg, options())
        .map_err(|err| Error::Render(format!("the card's SVG: {err}")))?;
    let size = tree.size().to_int_size();
    let mut pixmap = tiny_skia::Pixmap::new(size.width(), size.height())
        .ok_or_else(|| Error::Render("empty card size".into()))?;
    resvg::render(
        &tree,
        tiny_skia::Transform::identity(),
        &mut pixmap.as_mut(),
    );
    pixmap
        .encode_png()
        .map_err(|err| Error::Render(format!("encoding the PNG: {err}")))
}

/// Text made safe for XML character data and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters are not allowed in XML 1.0.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

/// `1,234.5` from metres.
fn km_grouped(metres: f64) -> String {
    let text = format!("{:.1}", metres / 1000.0);
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, "0"));
    let mut grouped = String::new();
    for (index, c) in whole.chars().enumerate() {
        if index > 0 && (whole.len() - index) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{grouped}.{fraction}")
}

fn hours(seconds: f64) -> String {
    if seconds >= 36_000.0 {
        format!("{:.0}h", seconds / 3600.0)
    } else {
        clock(seconds)
    }
}

struct Labels {
    title: &'static str,
    runs: &'static str,
    time: &'static str,
    elevation: &'static str,
    days: &'static str,
    badges: &'static str,
    records: &'static str,
    streak: &'static str,
    longest: &'static str,
    by_bucket: &'static str,
    calendar: &'static str,
    empty: &'static str,
    days_unit: &'static str,
}

fn labels(language: Language, kind: PeriodKind) -> Labels {
    match language {
        Language::Korean => Labels {
            title: "RUNMESH 리캡",
            runs: "달리기",
            time: "시간",
            elevation: "상승 고도",
            days: "활동일",
            badges: "배지",
            records: "개인 기록",
            streak: "최장 연속",
            longest: "최장 거리",
            by_bucket: match kind {
                PeriodKind::Year => "월별 거리",
                PeriodKind::Week => "요일별 거리",
                _ => "주별 거리",
            },
            calendar: "달린 날",
            empty: "이번엔 쉬어갔어요. 다음 기록을 기대해요!",
            days_unit: "일",
        },
        Language::English => Labels {
            title: "RUNMESH RECAP",
            runs: "Runs",
            time: "Time",
            elevation: "Elevation",
            days: "Active days",
            badges: "Badges",
            records: "PRs",
            streak: "Streak",
            longest: "Longest",
            by_bucket: match kind {
                PeriodKind::Year => "Distance by month",
                PeriodKind::Week => "Distance by day",
                _ => "Distance by week",
            },
            calendar: "Active days",
            empty: "A quiet one. Your next run starts a new streak!",
            days_unit: " d",
        },
    }
}

/// The card's SVG for `recap`.
pub fn svg(recap: &Recap, size: CardSize) -> String {
    let (width, height) = size.pixels();
    let portrait = size == CardSize::Portrait;
    let labels = labels(recap.language, recap.period.kind);
    let mut out = String::with_capacity(64 * 1024);
    let _ = write!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="{FONT_FAMILY}">"##
    );
    out.push_str(
        r##"<defs><linearGradient id="bg" x1="0" y1="0" x2="0.35" y2="1"><stop offset="0" stop-color="#0b1026"/><stop offset="0.55" stop-color="#1e1b4b"/><stop offset="1" stop-color="#3b0764"/></linearGradient><linearGradient id="bar" x1="0" y1="1" x2="0" y2="0"><stop offset="0" stop-color="#f97316"/><stop offset="1" stop-color="#facc15"/></linearGradient><radialGradient id="glow" cx="0.85" cy="0.1" r="0.6"><stop offset="0" stop-color="#f97316" stop-opacity="0.35"/><stop offset="1" stop-color="#f97316" stop-opacity="0"/></radialGradient></defs>"##,
    );
    let _ = write!(
        out,
        r##"<rect width="{width}" height="{height}" fill="url(#bg)"/><rect width="{width}" height="{height}" fill="url(#glow)"/>"##
    );

    let margin = 80.0;
    let inner = f64::from(width) - 2.0 * margin;
    // Header: brand, period, name.
    let mut y = if portrait { 150.0 } else { 110.0 };
    let _ = write!(
        out,
        r##"<text x="{margin}" y="{y}" font-size="30" font-weight="bold" fill="#f97316" letter-spacing="6">{}</text>"##,
        escape(labels.title)
    );
    y += if portrait { 80.0 } else { 64.0 };
    let _ = write!(
        out,
        r##"<text x="{margin}" y="{y}" font-size="{}" font-weight="bold" fill="#ffffff">{}</text>"##,
        if portrait { 64 } else { 52 },
        escape(&period_label(&recap.period, recap.language))
    );
    y += if portrait { 64.0 } else { 52.0 };
    let name = if recap.display_name.is_empty() {
        "runmesh".to_owned()
    } else {
        truncate(&recap.display_name, 28)
    };
    let _ = write!(
        out,
        r##"<text id="name" x="{margin}" y="{y}" font-size="{}" fill="#c7d2fe">{}</text>"##,
        if portrait { 44 } else { 38 },
        escape(&name)
    );

    // The distance.
    y += if portrait { 250.0 } else { 190.0 };
    let big = if portrait { 220 } else { 170 };
    let number = km_grouped(recap.totals.distance_m);
    let _ = write!(
        out,
        r##"<text x="{margin}" y="{y}" font-size="{big}" font-weight="bold" fill="#ffffff">{number}<tspan font-size="{}" fill="#f97316" dx="16">km</tspan></text>"##,
        big / 3
    );

    // Four figures.
    y += if portrait { 120.0 } else { 100.0 };
    let figures = [
        (labels.runs, recap.totals.runs.to_string()),
        (labels.time, hours(recap.totals.moving_s)),
        (
            labels.elevation,
            format!("{:.0} m", recap.totals.elevation_m),
        ),
        (labels.days, recap.totals.active_days.to_string()),
    ];
    let column = inner / 4.0;
    for (index, (label, value)) in figures.iter().enumerate() {
        #[allow(clippy::cast_precision_loss)]
        let x = margin + column * index as f64;
        let _ = write!(
            out,
            r##"<text x="{x}" y="{y}" font-size="52" font-weight="bold" fill="#ffffff">{}</text><text x="{x}" y="{}" font-size="28" fill="#a5b4fc">{}</text>"##,
            escape(value),
            y + 44.0,
            escape(label)
        );
    }

    if recap.totals.runs == 0 {
        y += if portrait { 260.0 } else { 200.0 };
        let _ = write!(
            out,
            r##"<text x="{margin}" y="{y}" font-size="44" fill="#e0e7ff">{}</text>"##,
            escape(labels.empty)
        );
    } else {
        // Bars.
        y += if portrait { 130.0 } else { 110.0 };
        let buckets = if recap.period.kind == PeriodKind::Week {
            &recap.by_weekday
        } else {
            &recap.by_bucket
        };
        let chart_h = if portrait { 300.0 } else { 210.0 };
        let _ = write!(
            out,
            r##"<text x="{margin}" y="{y}" font-size="30" fill="#a5b4fc">{}</text>"##,
            escape(labels.by_bucket)
        );
        y += 30.0;
        bars(&mut out, buckets, margin, y, inner, chart_h);
        y += chart_h + 20.0;
        if portrait {
            // Heat map.
            y += 90.0;
            let _ = write!(
                out,
                r##"<text x="{margin}" y="{y}" font-size="30" fill="#a5b4fc">{}</text>"##,
                escape(labels.calendar)
            );
            y += 30.0;
            let bottom = f64::from(height) - 340.0;
            heat_map(&mut out, recap, margin, y, inner, bottom - y);
        }
    }

    // Chips: badges, records, streak, longest.
    let chip_y = f64::from(height) - if portrait { 300.0 } else { 190.0 };
    let longest = recap.longest.as_ref().map_or_else(
        || "–".to_owned(),
        |run| format!("{} km", km_grouped(run.distance_m)),
    );
    let chips = [
        (labels.badges, recap.badges.len().to_string()),
        (labels.records, recap.records.len().to_string()),
        (
            labels.streak,
            format!("{}{}", recap.longest_streak_days, labels.days_unit),
        ),
        (labels.longest, longest),
    ];
    let chip_w = (inner - 3.0 * 20.0) / 4.0;
    for (index, (label, value)) in chips.iter().enumerate() {
        #[allow(clippy::cast_precision_loss)]
        let x = margin + (chip_w + 20.0) * index as f64;
        let _ = write!(
            out,
            r##"<rect x="{x}" y="{chip_y}" width="{chip_w}" height="130" rx="24" fill="#ffffff" fill-opacity="0.08" stroke="#ffffff" stroke-opacity="0.15"/><text x="{}" y="{}" font-size="44" font-weight="bold" fill="#facc15" text-anchor="middle">{}</text><text x="{}" y="{}" font-size="26" fill="#c7d2fe" text-anchor="middle">{}</text>"##,
            x + chip_w / 2.0,
            chip_y + 62.0,
            escape(value),
            x + chip_w / 2.0,
            chip_y + 104.0,
            escape(label)
        );
    }

    // The narrative's first line and the footer.
    if portrait && let Some(line) = recap.narrative.first() {
        let _ = write!(
            out,
            r##"<text x="{margin}" y="{}" font-size="32" fill="#e0e7ff">{}</text>"##,
            f64::from(height) - 110.0,
            escape(&truncate(line, 44))
        );
    }
    let _ = write!(
        out,
        r##"<text x="{}" y="{}" font-size="26" fill="#6366f1" text-anchor="end">runmesh</text></svg>"##,
        f64::from(width) - margin,
        f64::from(height) - if portrait { 50.0 } else { 24.0 }
    );
    out
}

fn truncate(text: &str, chars: usize) -> String {
    if text.chars().count() <= chars {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(chars.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

fn bars(
    out: &mut String,
    buckets: &[crate::domain::recap::Bucket],
    x0: f64,
    y0: f64,
    w: f64,
    h: f64,
) {
    let max = buckets
        .iter()
        .map(|b| b.distance_m)
        .fold(0.0_f64, f64::max)
        .max(1.0);
    #[allow(clippy::cast_precision_loss)]
    let slot = w / buckets.len().max(1) as f64;
    let bar_w = (slot * 0.7).max(2.0);
    let label_every = if buckets.len() > 12 { 2 } else { 1 };
    for (index, bucket) in buckets.iter().enumerate() {
        #[allow(clippy::cast_precision_loss)]
        let x = x0 + slot * index as f64 + (slot - bar_w) / 2.0;
        let bar_h = (bucket.distance_m / max * (h - 40.0)).max(4.0);
        let fill = if bucket.distance_m > 0.0 {
            "url(#bar)"
        } else {
            "#ffffff\" fill-opacity=\"0.12"
        };
        let _ = write!(
            out,
            r##"<rect x="{x:.1}" y="{:.1}" width="{bar_w:.1}" height="{bar_h:.1}" rx="6" fill="{fill}"/>"##,
            y0 + h - 40.0 - bar_h
        );
        if index % label_every == 0 {
            let _ = write!(
                out,
                r##"<text x="{:.1}" y="{:.1}" font-size="22" fill="#818cf8" text-anchor="middle">{}</text>"##,
                x + bar_w / 2.0,
                y0 + h - 8.0,
                escape(&short_label(&bucket.label))
            );
        }
    }
}

/// `12` from `2026-12`, `W49` from `2026-W49`, `Mon` from `mon`.
fn short_label(label: &str) -> String {
    if let Some((_, week)) = label.split_once("-W") {
        return format!("W{week}");
    }
    if let Some((_, month)) = label.split_once('-') {
        return month.trim_start_matches('0').to_owned();
    }
    let mut chars = label.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// A year: weeks as columns, Monday on top; a month or a week: a calendar (weeks as rows).
fn heat_map(out: &mut String, recap: &Recap, x0: f64, y0: f64, w: f64, max_h: f64) {
    let Some(first) = recap.calendar.first() else {
        return;
    };
    let offset = i64::from(first.date.weekday().num_days_from_monday());
    #[allow(clippy::cast_possible_wrap)]
    let weeks = (recap.calendar.len() as i64 + offset + 6) / 7;
    let year = recap.period.kind == PeriodKind::Year;
    #[allow(clippy::cast_precision_loss)]
    let weeks_f = weeks.max(1) as f64;
    let cell = if year {
        (w / weeks_f).min(max_h / 7.0)
    } else {
        (w / 7.0).min(max_h / weeks_f).min(110.0)
    };
    let gap = (cell * 0.18).max(2.0);
    let max = recap
        .calendar
        .iter()
        .map(|day| day.distance_m)
        .fold(0.0_f64, f64::max)
        .max(1.0);
    for (index, day) in recap.calendar.iter().enumerate() {
        #[allow(clippy::cast_possible_wrap)]
        let position = index as i64 + offset;
        #[allow(clippy::cast_precision_loss)]
        let (column, row) = if year {
            ((position / 7) as f64, (position % 7) as f64)
        } else {
            ((position % 7) as f64, (position / 7) as f64)
        };
        let (fill, opacity) = if day.runs == 0 {
            ("#ffffff", 0.08)
        } else {
            ("#f97316", 0.35 + 0.65 * (day.distance_m / max))
        };
        let _ = write!(
            out,
            r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" rx="{:.1}" fill="{fill}" fill-opacity="{opacity:.2}"/>"##,
            x0 + column * cell,
            y0 + row * cell,
            cell - gap,
            cell - gap,
            (cell - gap) / 4.0
        );
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn lit(options: &usvg::Options<'_>) -> usize {
        let svg = r##"<svg xmlns="http://www.w3.org/2000/svg" width="400" height="80"><text x="10" y="60" font-family="NanumGothic" font-size="48" fill="#ffffff">김달리기 Kim</text></svg>"##;
        let tree = usvg::Tree::from_str(svg, options).unwrap();
        let mut pixmap = tiny_skia::Pixmap::new(400, 80).unwrap();
        resvg::render(
            &tree,
            tiny_skia::Transform::identity(),
            &mut pixmap.as_mut(),
        );
        pixmap.pixels().iter().filter(|p| p.alpha() > 128).count()
    }

    #[test]
    fn hangul_renders_with_the_embedded_font_and_not_without_it() {
        assert_eq!(font_faces(), 2);
        assert!(lit(options()) > 1_000);
        // usvg's own default: an empty font database draws nothing.
        assert_eq!(lit(&usvg::Options::default()), 0);
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            escape("<Kim & \"Lee\">'s\u{1}"),
            "&lt;Kim &amp; &quot;Lee&quot;&gt;&apos;s"
        );
        assert_eq!(km_grouped(1_234_567.0), "1,234.6");
        assert_eq!(km_grouped(999.0), "1.0");
        assert_eq!(short_label("2026-W09"), "W09");
        assert_eq!(short_label("2026-03"), "3");
        assert_eq!(short_label("mon"), "Mon");
    }
}
