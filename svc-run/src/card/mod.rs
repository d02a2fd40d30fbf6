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
    encode_png(&rasterise(svg)?)
}

fn rasterise(svg: &str) -> Result<tiny_skia::Pixmap, Error> {
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
    Ok(pixmap)
}

/// `pixmap` as a PNG. A card is opaque (its background covers every pixel), so it is written as
/// 8-bit RGB, each row with the Up filter, at the `png` crate's fast level: tiny-skia's own
/// encoder (RGBA, adaptive filters, level 6) took most of a render's time. Anything not opaque
/// goes through tiny-skia's encoder.
fn encode_png(pixmap: &tiny_skia::Pixmap) -> Result<Vec<u8>, Error> {
    let failed = |err: &dyn std::fmt::Display| Error::Render(format!("encoding the PNG: {err}"));
    if pixmap.pixels().iter().any(|pixel| pixel.alpha() != u8::MAX) {
        return pixmap.encode_png().map_err(|err| failed(&err));
    }
    // Opaque, so premultiplied RGB is the colour itself.
    let rgb: Vec<u8> = pixmap
        .data()
        .chunks_exact(4)
        .flat_map(|rgba| [rgba[0], rgba[1], rgba[2]])
        .collect();
    let mut out = Vec::with_capacity(rgb.len() / 4);
    let mut encoder = png::Encoder::new(&mut out, pixmap.width(), pixmap.height());
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Fast);
    encoder.set_filter(png::Filter::Up);
    let mut writer = encoder.write_header().map_err(|err| failed(&err))?;
    writer.write_image_data(&rgb).map_err(|err| failed(&err))?;
    writer.finish().map_err(|err| failed(&err))?;
    Ok(out)
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

/// Advances of printable ASCII (U+0020–U+007E) in Nanum Gothic, in thousandths of an em, from the
/// font's `hmtx` table (regular and bold have the same advances).
const ASCII_ADVANCE: [u16; 95] = [
    280, 424, 430, 606, 606, 1090, 727, 303, 363, 363, 606, 654, 303, 363, 303, 375, 606, 606, 606,
    606, 606, 606, 606, 606, 606, 606, 303, 303, 547, 654, 547, 545, 872, 727, 606, 672, 727, 576,
    503, 797, 727, 242, 363, 641, 484, 969, 727, 787, 577, 787, 622, 545, 545, 727, 666, 1029, 666,
    666, 545, 363, 966, 363, 654, 545, 242, 545, 606, 484, 606, 545, 363, 606, 606, 242, 269, 520,
    242, 908, 606, 606, 606, 606, 363, 424, 363, 606, 484, 848, 510, 464, 484, 303, 242, 303, 654,
];

/// One character's advance in ems: exact for ASCII and the punctuation the card writes, 0.94
/// (Hangul's advance, the widest common glyph) for everything else, so that text never
/// measures narrower than it draws.
fn char_em(c: char) -> f64 {
    let ascii = u32::from(c)
        .checked_sub(0x20)
        .and_then(|index| usize::try_from(index).ok())
        .and_then(|index| ASCII_ADVANCE.get(index));
    match (ascii, c) {
        (Some(advance), _) => f64::from(*advance) / 1000.0,
        (None, '’' | '‘') => 0.185,
        (None, '·') => 0.29,
        (None, '“' | '”') => 0.35,
        (None, '–') => 0.41,
        (None, '°') => 0.446,
        (None, '×') => 0.592,
        _ => 0.94,
    }
}

/// The width of `text` drawn at `size` px in the card's font.
fn text_width(text: &str, size: f64) -> f64 {
    text.chars().map(char_em).sum::<f64>() * size
}

/// `text` cut to fit `width` at `size`, ending in `…` when cut.
fn cut_to_width(text: &str, size: f64, width: f64) -> String {
    if text_width(text, size) <= width {
        return text.to_owned();
    }
    let budget = width - text_width("…", size);
    let mut used = 0.0;
    let mut out = String::new();
    for c in text.chars() {
        used += char_em(c) * size;
        if used > budget {
            break;
        }
        out.push(c);
    }
    format!("{}…", out.trim_end())
}

/// `text` at the largest font size from `size` down to `min_size` at which it fits `width`; cut
/// with `…` at `min_size` when even that is too wide.
fn fit(text: &str, size: f64, min_size: f64, width: f64) -> (String, f64) {
    let natural = text_width(text, size);
    if natural <= width {
        return (text.to_owned(), size);
    }
    let shrunk = (size * width / natural).floor().max(min_size);
    if text_width(text, shrunk) <= width {
        return (text.to_owned(), shrunk);
    }
    (cut_to_width(text, min_size, width), min_size)
}

/// `text` broken at spaces into at most `lines` lines of `width` at `size`; the last one cut with
/// `…` when the text goes on.
fn wrap(text: &str, size: f64, width: f64, lines: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut words = text.split_whitespace();
    while let Some(word) = words.next() {
        let candidate = if current.is_empty() {
            word.to_owned()
        } else {
            format!("{current} {word}")
        };
        if text_width(&candidate, size) <= width || current.is_empty() {
            current = candidate;
            continue;
        }
        if out.len() + 1 == lines {
            // The last line: what does not fit is cut.
            let rest: Vec<&str> = std::iter::once(word).chain(words.by_ref()).collect();
            current = format!("{current} {}", rest.join(" "));
            break;
        }
        out.push(std::mem::take(&mut current));
        current = word.to_owned();
    }
    if !current.is_empty() {
        out.push(current);
    }
    out.into_iter()
        .map(|line| cut_to_width(&line, size, width))
        .collect()
}

/// Distance in km for a small label: `87.5`, `190`.
fn km_short(metres: f64) -> String {
    let km = metres / 1000.0;
    if km >= 100.0 {
        format!("{km:.0}")
    } else {
        format!("{km:.1}")
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
    weekdays: [&'static str; 7],
    months: [&'static str; 12],
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
            weekdays: ["월", "화", "수", "목", "금", "토", "일"],
            months: [
                "1월", "2월", "3월", "4월", "5월", "6월", "7월", "8월", "9월", "10월", "11월",
                "12월",
            ],
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
            weekdays: ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
            months: [
                "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
            ],
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
    let (period, period_size) = fit(
        &period_label(&recap.period, recap.language),
        if portrait { 64.0 } else { 52.0 },
        36.0,
        inner,
    );
    let _ = write!(
        out,
        r##"<text x="{margin}" y="{y}" font-size="{period_size}" font-weight="bold" fill="#ffffff">{}</text>"##,
        escape(&period)
    );
    y += if portrait { 64.0 } else { 52.0 };
    let name = if recap.display_name.trim().is_empty() {
        "runmesh"
    } else {
        recap.display_name.trim()
    };
    let (name, name_size) = fit(name, if portrait { 44.0 } else { 38.0 }, 30.0, inner);
    let _ = write!(
        out,
        r##"<text id="name" x="{margin}" y="{y}" font-size="{name_size}" fill="#c7d2fe">{}</text>"##,
        escape(&name)
    );

    // The distance, as large as fits.
    y += if portrait { 250.0 } else { 190.0 };
    let number = km_grouped(recap.totals.distance_m);
    let mut big = if portrait { 220.0 } else { 170.0 };
    let wide = text_width(&number, big) + 16.0 + text_width("km", big / 3.0);
    if wide > inner {
        big = (big * inner / wide).floor();
    }
    let _ = write!(
        out,
        r##"<text x="{margin}" y="{y}" font-size="{big}" font-weight="bold" fill="#ffffff">{number}<tspan font-size="{}" fill="#f97316" dx="16">km</tspan></text>"##,
        (big / 3.0).round()
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
        let (value, value_size) = fit(value, 52.0, 30.0, column - 16.0);
        let (label, label_size) = fit(label, 28.0, 20.0, column - 16.0);
        let _ = write!(
            out,
            r##"<text x="{x}" y="{y}" font-size="{value_size}" font-weight="bold" fill="#ffffff">{}</text><text x="{x}" y="{}" font-size="{label_size}" fill="#a5b4fc">{}</text>"##,
            escape(&value),
            y + 44.0,
            escape(&label)
        );
    }

    // The heat map's area on portrait cards: from below the chart to above the chips.
    let bottom = f64::from(height) - 340.0;
    if recap.totals.runs == 0 {
        y += if portrait { 200.0 } else { 180.0 };
        for line in wrap(labels.empty, 44.0, inner, 2) {
            let _ = write!(
                out,
                r##"<text x="{margin}" y="{y}" font-size="44" fill="#e0e7ff">{}</text>"##,
                escape(&line)
            );
            y += 60.0;
        }
        if portrait {
            // The period's days, none run: what there is to fill.
            y += 70.0;
            heat_map_section(&mut out, recap, &labels, margin, y, inner, bottom);
        }
    } else {
        // Bars.
        y += if portrait { 130.0 } else { 110.0 };
        let buckets = if recap.period.kind == PeriodKind::Week {
            &recap.by_weekday
        } else {
            &recap.by_bucket
        };
        let mut chart_h = if portrait { 300.0 } else { 210.0 };
        if portrait && recap.period.kind == PeriodKind::Year {
            // A year's heat map is as tall as 53 week columns allow: the bars take the rest.
            let map_top = y + 30.0 + chart_h + 20.0 + 90.0 + 30.0;
            chart_h += (bottom - map_top - year_map_height(inner)).max(0.0);
        }
        let _ = write!(
            out,
            r##"<text x="{margin}" y="{y}" font-size="30" fill="#a5b4fc">{}</text>"##,
            escape(labels.by_bucket)
        );
        y += 30.0;
        bars(&mut out, buckets, margin, y, inner, chart_h);
        y += chart_h + 20.0;
        if portrait {
            y += 90.0;
            heat_map_section(&mut out, recap, &labels, margin, y, inner, bottom);
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
        let (value, value_size) = fit(value, 44.0, 26.0, chip_w - 24.0);
        let (label, label_size) = fit(label, 26.0, 18.0, chip_w - 20.0);
        let _ = write!(
            out,
            r##"<rect x="{x}" y="{chip_y}" width="{chip_w}" height="130" rx="24" fill="#ffffff" fill-opacity="0.08" stroke="#ffffff" stroke-opacity="0.15"/><text x="{}" y="{}" font-size="{value_size}" font-weight="bold" fill="#facc15" text-anchor="middle">{}</text><text x="{}" y="{}" font-size="{label_size}" fill="#c7d2fe" text-anchor="middle">{}</text>"##,
            x + chip_w / 2.0,
            chip_y + 62.0,
            escape(&value),
            x + chip_w / 2.0,
            chip_y + 104.0,
            escape(&label)
        );
    }

    // The narrative's first sentence (two lines when it needs them) and the footer.
    if portrait && let Some(line) = recap.narrative.first() {
        let (lines, size) = if text_width(line, 32.0) <= inner {
            (vec![line.clone()], 32)
        } else {
            (wrap(line, 30.0, inner, 2), 30)
        };
        let mut line_y = f64::from(height) - if lines.len() > 1 { 125.0 } else { 110.0 };
        for line in lines {
            let _ = write!(
                out,
                r##"<text x="{margin}" y="{line_y}" font-size="{size}" fill="#e0e7ff">{}</text>"##,
                escape(&line)
            );
            line_y += 40.0;
        }
    }
    let _ = write!(
        out,
        r##"<text x="{}" y="{}" font-size="26" fill="#6366f1" text-anchor="end">runmesh</text></svg>"##,
        f64::from(width) - margin,
        f64::from(height) - if portrait { 50.0 } else { 24.0 }
    );
    out
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
    // Room above the tallest bar for its value.
    let headroom = 36.0;
    let value_size = 24.0_f64.min((slot * 0.9 / (4.0 * char_em('0'))).floor());
    for (index, bucket) in buckets.iter().enumerate() {
        #[allow(clippy::cast_precision_loss)]
        let x = x0 + slot * index as f64 + (slot - bar_w) / 2.0;
        let bar_h = (bucket.distance_m / max * (h - 40.0 - headroom)).max(4.0);
        let top = y0 + h - 40.0 - bar_h;
        let fill = if bucket.distance_m > 0.0 {
            "url(#bar)"
        } else {
            "#ffffff\" fill-opacity=\"0.12"
        };
        let _ = write!(
            out,
            r##"<rect x="{x:.1}" y="{top:.1}" width="{bar_w:.1}" height="{bar_h:.1}" rx="6" fill="{fill}"/>"##,
        );
        if bucket.distance_m > 0.0 && buckets.len() <= 12 {
            let _ = write!(
                out,
                r##"<text x="{:.1}" y="{:.1}" font-size="{value_size}" font-weight="bold" fill="#fde68a" text-anchor="middle">{}</text>"##,
                x + bar_w / 2.0,
                top - 10.0,
                km_short(bucket.distance_m)
            );
        }
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

/// Month labels over a year's heat map.
const YEAR_LABELS_H: f64 = 30.0;
/// Weekday labels over a month's or week's calendar.
const WEEKDAYS_H: f64 = 36.0;

/// How tall a year's heat map is in `w`: month labels and 7 rows of 53 week columns' cells.
fn year_map_height(w: f64) -> f64 {
    YEAR_LABELS_H + 7.0 * (w / 53.0)
}

/// The heat map's title at `y` and the map under it, down to `bottom` at most.
fn heat_map_section(
    out: &mut String,
    recap: &Recap,
    labels: &Labels,
    x0: f64,
    y: f64,
    w: f64,
    bottom: f64,
) {
    let _ = write!(
        out,
        r##"<text x="{x0}" y="{y}" font-size="30" fill="#a5b4fc">{}</text>"##,
        escape(labels.calendar)
    );
    let top = y + 30.0;
    if recap.period.kind == PeriodKind::Year {
        year_map(out, recap, labels, x0, top, w, bottom - top);
    } else {
        calendar(out, recap, labels, x0, top, w, bottom - top);
    }
}

/// A day's fill: faint when not run, orange growing with the distance.
fn day_fill(day: &crate::domain::recap::Day, max: f64) -> (&'static str, f64) {
    if day.runs == 0 {
        ("#ffffff", 0.08)
    } else {
        ("#f97316", 0.35 + 0.65 * (day.distance_m / max))
    }
}

fn longest_day(recap: &Recap) -> f64 {
    recap
        .calendar
        .iter()
        .map(|day| day.distance_m)
        .fold(0.0_f64, f64::max)
        .max(1.0)
}

/// A year: 53 week columns, Monday on top, each month's name over the week it starts in.
fn year_map(out: &mut String, recap: &Recap, labels: &Labels, x0: f64, y0: f64, w: f64, h: f64) {
    let Some(first) = recap.calendar.first() else {
        return;
    };
    let offset = i64::from(first.date.weekday().num_days_from_monday());
    let cell = (w / 53.0).min((h - YEAR_LABELS_H) / 7.0);
    let gap = (cell * 0.18).max(2.0);
    let max = longest_day(recap);
    let grid_top = y0 + YEAR_LABELS_H;
    for (index, day) in recap.calendar.iter().enumerate() {
        #[allow(clippy::cast_possible_wrap)]
        let position = index as i64 + offset;
        #[allow(clippy::cast_precision_loss)]
        let (column, row) = ((position / 7) as f64, (position % 7) as f64);
        if day.date.day() == 1 {
            let month = usize::try_from(day.date.month0()).unwrap_or(0);
            let _ = write!(
                out,
                r##"<text x="{:.1}" y="{:.1}" font-size="20" fill="#818cf8">{}</text>"##,
                x0 + column * cell,
                grid_top - 10.0,
                labels.months.get(month).copied().unwrap_or_default()
            );
        }
        let (fill, opacity) = day_fill(day, max);
        let _ = write!(
            out,
            r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" rx="{:.1}" fill="{fill}" fill-opacity="{opacity:.2}"/>"##,
            x0 + column * cell,
            grid_top + row * cell,
            cell - gap,
            cell - gap,
            (cell - gap) / 4.0
        );
    }
}

/// A month or a week as a calendar: weekday names over 7 columns across the card, a row per
/// week, each day with its number and, when run, its kilometres.
fn calendar(out: &mut String, recap: &Recap, labels: &Labels, x0: f64, y0: f64, w: f64, h: f64) {
    let Some(first) = recap.calendar.first() else {
        return;
    };
    let offset = i64::from(first.date.weekday().num_days_from_monday());
    #[allow(clippy::cast_possible_wrap)]
    let weeks = (recap.calendar.len() as i64 + offset + 6) / 7;
    #[allow(clippy::cast_precision_loss)]
    let weeks_f = weeks.max(1) as f64;
    let cell_w = w / 7.0;
    let cell_h = ((h - WEEKDAYS_H) / weeks_f).min(110.0);
    let gap = (cell_h * 0.14).clamp(4.0, 10.0);
    let (box_w, box_h) = (cell_w - gap, cell_h - gap);
    for (column, name) in labels.weekdays.iter().enumerate() {
        #[allow(clippy::cast_precision_loss)]
        let x = x0 + cell_w * column as f64 + box_w / 2.0;
        let _ = write!(
            out,
            r##"<text x="{x:.1}" y="{:.1}" font-size="22" fill="#818cf8" text-anchor="middle">{name}</text>"##,
            y0 + 22.0
        );
    }
    let grid_top = y0 + WEEKDAYS_H;
    let max = longest_day(recap);
    let number_size = (box_h * 0.34).clamp(14.0, 24.0);
    let km_size = (box_h * 0.42).clamp(16.0, 34.0);
    for (index, day) in recap.calendar.iter().enumerate() {
        #[allow(clippy::cast_possible_wrap)]
        let position = index as i64 + offset;
        #[allow(clippy::cast_precision_loss)]
        let (column, row) = ((position % 7) as f64, (position / 7) as f64);
        let (x, y) = (x0 + column * cell_w, grid_top + row * cell_h);
        let (fill, opacity) = day_fill(day, max);
        let _ = write!(
            out,
            r##"<rect x="{x:.1}" y="{y:.1}" width="{box_w:.1}" height="{box_h:.1}" rx="{:.1}" fill="{fill}" fill-opacity="{opacity:.2}"/><text x="{:.1}" y="{:.1}" font-size="{number_size:.0}" fill="#c7d2fe" fill-opacity="0.8">{}</text>"##,
            (box_h / 5.0).min(14.0),
            x + 10.0,
            y + number_size + 4.0,
            day.date.day()
        );
        if day.runs > 0 {
            let (km, size) = fit(&km_short(day.distance_m), km_size, 14.0, box_w - 16.0);
            let _ = write!(
                out,
                r##"<text x="{:.1}" y="{:.1}" font-size="{size:.0}" font-weight="bold" fill="#ffffff" text-anchor="end">{km}</text>"##,
                x + box_w - 10.0,
                y + box_h - 8.0
            );
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use chrono::{NaiveDate, TimeZone};

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
    fn text_is_measured_fitted_and_wrapped() {
        // Hangul at 0.94 em, ASCII from the font's advances.
        assert!((text_width("김하늘", 100.0) - 282.0).abs() < 1e-9);
        assert!((text_width("km", 100.0) - 142.8).abs() < 1e-9);
        let (text, size) = fit("김하늘", 44.0, 30.0, 1000.0);
        assert_eq!(text, "김하늘");
        assert!((size - 44.0).abs() < 1e-9);
        let long = "가".repeat(40);
        let (text, size) = fit(&long, 44.0, 30.0, 920.0);
        assert!((size - 30.0).abs() < 1e-9);
        assert!(text.ends_with('…') && text_width(&text, size) <= 920.0);
        let (text, size) = fit(&"가".repeat(25), 44.0, 30.0, 920.0);
        assert!(!text.ends_with('…') && size < 44.0 && text_width(&text, size) <= 920.0);

        let sentence = "이번 달에는 기록된 달리기가 없어요. 가벼운 한 번이면 다시 시작이에요!";
        let lines = wrap(sentence, 32.0, 920.0, 2);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines.join(" "), sentence);
        assert!(lines.iter().all(|line| text_width(line, 32.0) <= 920.0));
        let lines = wrap(&"tempo ".repeat(100), 32.0, 920.0, 2);
        assert_eq!(lines.len(), 2);
        assert!(lines[1].ends_with('…'));
        assert!(lines.iter().all(|line| text_width(line, 32.0) <= 920.0));
        assert_eq!(wrap("short", 32.0, 920.0, 2), vec!["short".to_owned()]);
    }

    fn sample(
        kind: PeriodKind,
        day: NaiveDate,
        language: Language,
        km: &[f64],
        name: &str,
    ) -> Recap {
        use crate::domain::recap::{RecapPeriod, RunFact, figures};
        let period = RecapPeriod::of(kind, day).unwrap();
        let tz = chrono_tz::Asia::Seoul;
        let runs: Vec<RunFact> = km
            .iter()
            .enumerate()
            .map(|(index, km)| RunFact {
                id: uuid::Uuid::from_u128(index as u128 + 1),
                owner: "runner".to_owned(),
                title: format!("Run {index}"),
                start: tz
                    .from_local_datetime(
                        &(period.from + chrono::Duration::days(index as i64 * 3))
                            .and_hms_opt(7, 0, 0)
                            .unwrap(),
                    )
                    .unwrap()
                    .with_timezone(&chrono::Utc),
                distance_m: km * 1000.0,
                moving_s: km * 330.0,
                elevation_m: km * 12.0,
            })
            .collect();
        let figures = figures(&period, tz, &runs);
        Recap {
            period,
            time_zone: tz,
            owner_id: "runner".to_owned(),
            crew_id: String::new(),
            display_name: name.to_owned(),
            in_progress: false,
            totals: figures.totals,
            previous: figures.totals,
            longest: figures.longest,
            fastest: Vec::new(),
            records: Vec::new(),
            badges: Vec::new(),
            challenges: Vec::new(),
            races: Vec::new(),
            longest_streak_days: figures.longest_streak_days,
            calendar: figures.calendar,
            by_bucket: figures.by_bucket,
            by_weekday: figures.by_weekday,
            by_hour: figures.by_hour,
            rank: None,
            crews: Vec::new(),
            members: Vec::new(),
            language,
            narrative: vec![
                "올해 121번 달려 12,345.6 km, 118일을 달렸어요. 지난해보다 거리가 1,234% 늘었고 \
                 가장 긴 달리기는 100.0 km였어요."
                    .to_owned(),
            ],
        }
    }

    /// Every text of the card, as drawn (glyph outlines), inside the card's margins and clear of
    /// every other text.
    fn assert_texts_fit(svg: &str, size: CardSize, what: &str) {
        let tree = usvg::Tree::from_str(svg, options()).unwrap();
        let (width, height) = size.pixels();
        let mut boxes = Vec::new();
        fn walk(group: &usvg::Group, boxes: &mut Vec<tiny_skia::Rect>) {
            for node in group.children() {
                match node {
                    usvg::Node::Group(group) => walk(group, boxes),
                    usvg::Node::Text(text) => boxes.push(text.abs_bounding_box()),
                    _ => {}
                }
            }
        }
        walk(tree.root(), &mut boxes);
        assert!(boxes.len() > 10, "{what}: only {} texts drawn", boxes.len());
        for rect in &boxes {
            assert!(
                rect.left() >= 40.0
                    && rect.right() <= width as f32 - 40.0
                    && rect.bottom() <= height as f32,
                "{what}: a text at {rect:?} runs off a {width}x{height} card"
            );
        }
        for (index, a) in boxes.iter().enumerate() {
            for b in &boxes[index + 1..] {
                let apart = a.right() <= b.left()
                    || b.right() <= a.left()
                    || a.bottom() <= b.top()
                    || b.bottom() <= a.top();
                assert!(apart, "{what}: texts at {a:?} and {b:?} overlap");
            }
        }
    }

    #[test]
    fn long_names_narratives_and_figures_stay_on_the_card() {
        let day = NaiveDate::from_ymd_opt(2025, 2, 10).unwrap();
        let long_name = "서울 한강 새벽 러닝 크루 마라톤 준비반 2025 봄 시즌 참가자 모임";
        let many: Vec<f64> = (0..121).map(|i| 5.0 + f64::from(i % 90)).collect();
        for (kind, km) in [
            (PeriodKind::Month, vec![10.0, 21.1, 8.0, 6.0, 42.4]),
            (PeriodKind::Year, many.clone()),
            (PeriodKind::Week, vec![10.0, 12.0]),
            (PeriodKind::Month, Vec::new()),
        ] {
            for language in [Language::Korean, Language::English] {
                let mut recap = sample(kind, day, language, &km, long_name);
                for size in [CardSize::Portrait, CardSize::Square] {
                    let what = format!("{kind:?} {language:?} {size:?} ({} runs)", km.len());
                    assert_texts_fit(&svg(&recap, size), size, &what);
                }
                // Too wide at 32 px, narrow enough at 30 px on one line.
                recap.narrative = vec![
                    "이번 달에는 기록된 달리기가 없어요. 가벼운 한 번이면 다시 시작이에요!"
                        .to_owned(),
                ];
                let what = format!("{kind:?} {language:?} with a 40-character narrative");
                assert_texts_fit(&svg(&recap, CardSize::Portrait), CardSize::Portrait, &what);
            }
        }
    }

    #[test]
    fn the_png_decodes_to_the_rendered_pixels() {
        let day = NaiveDate::from_ymd_opt(2025, 2, 10).unwrap();
        let recap = sample(
            PeriodKind::Month,
            day,
            Language::Korean,
            &[10.0, 42.2],
            "김하늘",
        );
        for size in [CardSize::Portrait, CardSize::Square] {
            let svg = svg(&recap, size);
            let rendered = rasterise(&svg).unwrap();
            let png = png(&svg).unwrap();
            // The header says RGB (colour type 2) at the card's size.
            assert_eq!(&png[12..16], b"IHDR");
            assert_eq!(png[25], 2);
            let decoded = tiny_skia::Pixmap::decode_png(&png).unwrap();
            assert_eq!((decoded.width(), decoded.height()), size.pixels());
            assert!(decoded.data() == rendered.data(), "{size:?}: pixels differ");
        }
        // Not opaque: tiny-skia's own RGBA encoder, still lossless.
        let mut clear = tiny_skia::Pixmap::new(4, 3).unwrap();
        clear.fill(tiny_skia::Color::from_rgba8(200, 100, 50, 128));
        let decoded = tiny_skia::Pixmap::decode_png(&encode_png(&clear).unwrap()).unwrap();
        assert_eq!(decoded.data(), clear.data());
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
