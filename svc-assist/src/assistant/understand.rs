//! What a question asks, without a model: its intent (knowledge, own data, calculation, race,
//! crew), the specific thing asked, and the numbers in it (distances, times, heart rates).

use super::calc::{FIVE_K_M, HALF_MARATHON_M, MARATHON_M, MILE_M, TEN_K_M};

/// The question's intent; numbers match `runmesh.assist.v1.Intent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    Knowledge = 1,
    OwnData = 2,
    Calculation = 3,
    Race = 4,
    Crew = 5,
}

/// The specific question.
#[derive(Debug, Clone, PartialEq)]
pub enum Ask {
    /// Answer from the knowledge base.
    Knowledge,
    /// Distance and runs in a period (the period is resolved separately).
    Totals,
    /// The longest run in a period (or ever).
    LongestRun,
    /// The most recent run (in a period, when named), or the last long run.
    LastRun {
        long: bool,
    },
    /// Personal records, optionally at one distance.
    Records {
        distance: Option<f64>,
    },
    /// This week against last week and the 10% rule.
    WeeklyChange,
    Badges,
    Rank,
    Challenges,
    /// Pace (and speed) for a target time over a distance.
    TargetPace {
        meters: f64,
        seconds: f64,
    },
    /// Finish time at a pace over a distance.
    FinishTime {
        meters: f64,
        pace: f64,
    },
    /// Speed ↔ pace.
    PaceFromSpeed {
        kmh: f64,
    },
    SpeedFromPace {
        pace: f64,
    },
    /// Riegel prediction; `from` is `None` to use the runner's personal record.
    Predict {
        from: Option<(f64, f64)>,
        target: f64,
    },
    /// VDOT training paces; `from` `None` uses the runner's best record.
    TrainingPaces {
        from: Option<(f64, f64)>,
    },
    HrZones {
        max: Option<u32>,
        rest: Option<u32>,
        age: Option<u32>,
    },
    /// The 10% rule with given volumes.
    Volume {
        last_km: f64,
        this_km: Option<f64>,
    },
    Splits {
        meters: f64,
        seconds: f64,
    },
    /// The runner's registrations.
    MyRegistrations,
    /// When a race's registration opens (by name words).
    RaceOpening {
        name: String,
    },
    /// Races opening soon (in a region, when named).
    RacesOpeningSoon {
        region: Option<String>,
    },
    MyCrews,
    Meetups,
}

impl Ask {
    pub fn intent(&self) -> Intent {
        match self {
            Self::Knowledge => Intent::Knowledge,
            Self::Totals
            | Self::LongestRun
            | Self::LastRun { .. }
            | Self::Records { .. }
            | Self::WeeklyChange
            | Self::Badges
            | Self::Rank
            | Self::Challenges => Intent::OwnData,
            Self::TargetPace { .. }
            | Self::FinishTime { .. }
            | Self::PaceFromSpeed { .. }
            | Self::SpeedFromPace { .. }
            | Self::Predict { .. }
            | Self::TrainingPaces { .. }
            | Self::HrZones { .. }
            | Self::Volume { .. }
            | Self::Splits { .. } => Intent::Calculation,
            Self::MyRegistrations | Self::RaceOpening { .. } | Self::RacesOpeningSoon { .. } => {
                Intent::Race
            }
            Self::MyCrews | Self::Meetups => Intent::Crew,
        }
    }

    /// Whether answering reads the runner's data (sent to a model only when allowed).
    pub fn personal(&self) -> bool {
        match self {
            Self::Predict { from, .. } | Self::TrainingPaces { from } => from.is_none(),
            other => {
                !matches!(other.intent(), Intent::Knowledge | Intent::Calculation)
                    && !matches!(
                        other,
                        Self::RacesOpeningSoon { .. } | Self::RaceOpening { .. }
                    )
            }
        }
    }
}

fn any(q: &str, words: &[&str]) -> bool {
    words.iter().any(|w| q.contains(w))
}

/// Whether the question is about the asker's own things.
fn mine(q: &str) -> bool {
    // `q` is lowercased and padded with a space on each side, so " 나 " is the word alone (not
    // the end of "얼마나 ").
    any(
        q,
        &[
            " my ", " i ", " i'", "did i", "have i", "am i", " me ", " me?", " mine", " 내 ",
            " 내가", " 나의", " 제 ", " 제가", " 나 ", " 저의", " 내꺼",
        ],
    )
}

/// Distances named in the text, in order.
pub fn distances(q: &str) -> Vec<f64> {
    let mut found: Vec<(usize, f64)> = Vec::new();
    let named: [(&str, f64); 14] = [
        ("half marathon", HALF_MARATHON_M),
        ("half-marathon", HALF_MARATHON_M),
        ("하프", HALF_MARATHON_M),
        ("marathon", MARATHON_M),
        ("마라톤", MARATHON_M),
        ("풀코스", MARATHON_M),
        ("full", MARATHON_M),
        ("10k", TEN_K_M),
        ("5k", FIVE_K_M),
        ("15k", 15_000.0),
        ("mile", MILE_M),
        ("마일", MILE_M),
        ("half", HALF_MARATHON_M),
        ("풀", MARATHON_M),
    ];
    let mut taken: Vec<(usize, usize)> = Vec::new();
    for (word, meters) in named {
        let mut start = 0;
        while let Some(pos) = q[start..].find(word) {
            let at = start + pos;
            let end = at + word.len();
            if !taken.iter().any(|(a, b)| at < *b && end > *a) {
                // "10k" inside "10km" is a number with a unit, read below.
                let followed_by_m = q[end..].starts_with('m');
                if !(word.ends_with('k') && followed_by_m) {
                    taken.push((at, end));
                    found.push((at, meters));
                }
            }
            start = end;
        }
    }
    // "<number> km" / "<number>km" / "<number> 킬로".
    let bytes: Vec<char> = q.chars().collect();
    let text: String = bytes.iter().collect();
    let mut index = 0;
    let char_positions: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
    while index < bytes.len() {
        if bytes[index].is_ascii_digit() {
            let start = index;
            while index < bytes.len() && (bytes[index].is_ascii_digit() || bytes[index] == '.') {
                index += 1;
            }
            let number: String = bytes[start..index].iter().collect();
            let mut rest = index;
            while rest < bytes.len() && bytes[rest] == ' ' {
                rest += 1;
            }
            let tail: String = bytes[rest..bytes.len().min(rest + 2)].iter().collect();
            let byte_at = char_positions.get(start).copied().unwrap_or(0);
            if (tail.starts_with("km") || tail.starts_with("킬로") || tail == "k ")
                && let Ok(value) = number.parse::<f64>()
                && !taken.iter().any(|(a, b)| byte_at >= *a && byte_at < *b)
            {
                found.push((byte_at, value * 1000.0));
            }
        } else {
            index += 1;
        }
    }
    found.sort_by_key(|(at, _)| *at);
    found.into_iter().map(|(_, m)| m).collect()
}

/// Durations named in the text, in seconds, in order: `h:mm:ss`, `mm:ss`, "sub-4"/"서브4",
/// "3시간 30분", "50분", "3 hours 30 minutes", "45 min".
pub fn durations(q: &str) -> Vec<f64> {
    let chars: Vec<char> = q.chars().collect();
    let mut found = Vec::new();
    let mut i = 0;
    let number_at = |i: usize| -> (String, usize) {
        let mut j = i;
        while j < chars.len() && (chars[j].is_ascii_digit() || chars[j] == '.') {
            j += 1;
        }
        (chars[i..j].iter().collect(), j)
    };
    while i < chars.len() {
        if !chars[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        // Clock form.
        let mut j = i;
        let mut parts: Vec<f64> = Vec::new();
        loop {
            let (number, end) = number_at(j);
            let Ok(value) = number.parse::<f64>() else {
                break;
            };
            parts.push(value);
            j = end;
            if j + 1 < chars.len() && chars[j] == ':' && chars[j + 1].is_ascii_digit() {
                j += 1;
            } else {
                break;
            }
        }
        if parts.len() >= 2 {
            let seconds = parts.iter().fold(0.0, |acc, p| acc * 60.0 + p);
            found.push(seconds);
            i = j;
            continue;
        }
        // Unit form: hours and minutes (and seconds).
        let mut total = 0.0;
        let mut k = i;
        let mut matched = false;
        loop {
            let (number, end) = number_at(k);
            let Ok(value) = number.parse::<f64>() else {
                break;
            };
            let mut u = end;
            while u < chars.len() && chars[u] == ' ' {
                u += 1;
            }
            let unit: String = chars[u..chars.len().min(u + 7)].iter().collect();
            let (factor, length) = if unit.starts_with("시간") {
                (3600.0, 2)
            } else if unit.starts_with("hours") {
                (3600.0, 5)
            } else if unit.starts_with("hour") {
                (3600.0, 4)
            } else if unit.starts_with("hrs") {
                (3600.0, 3)
            } else if unit.starts_with("h ") || unit == "h" {
                (3600.0, 1)
            } else if unit.starts_with("minutes") {
                (60.0, 7)
            } else if unit.starts_with("minute") {
                (60.0, 6)
            } else if unit.starts_with("min") {
                (60.0, 3)
            } else if unit.starts_with('분') {
                (60.0, 1)
            } else if unit.starts_with('초') {
                (1.0, 1)
            } else if unit.starts_with("seconds") || unit.starts_with("sec") {
                (1.0, if unit.starts_with("seconds") { 7 } else { 3 })
            } else {
                break;
            };
            total += value * factor;
            matched = true;
            k = u + length;
            while k < chars.len() && (chars[k] == ' ' || chars[k] == ',') {
                k += 1;
            }
            if k >= chars.len() || !chars[k].is_ascii_digit() {
                break;
            }
        }
        if matched {
            found.push(total);
            i = k.max(i + 1);
            continue;
        }
        i = number_at(i).1.max(i + 1);
    }
    // "sub-4", "sub 3:30" handled above for clock forms; "sub-4"/"서브4"/"서브 4" as hours.
    for marker in ["sub-", "sub ", "서브 ", "서브"] {
        if let Some(pos) = q.find(marker) {
            let rest = &q[pos + marker.len()..];
            let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
            let after = &rest[digits.len()..];
            if let Ok(hours) = digits.parse::<f64>()
                && !after.starts_with(':')
                && hours > 0.0
                && hours < 10.0
            {
                found.insert(0, hours * 3600.0);
                break;
            }
        }
    }
    found
}

/// A number following one of `labels` (e.g. "max hr 190", "최대심박 190", "age 40").
fn number_after(q: &str, labels: &[&str]) -> Option<u32> {
    for label in labels {
        if let Some(pos) = q.find(label) {
            let rest = &q[pos + label.len()..];
            let digits: String = rest
                .chars()
                .skip_while(|c| !c.is_ascii_digit())
                .take_while(char::is_ascii_digit)
                .collect();
            let gap = rest
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(usize::MAX);
            if gap <= 12
                && let Ok(value) = digits.parse()
            {
                return Some(value);
            }
        }
    }
    None
}

/// "<number> km/h".
fn speed(q: &str) -> Option<f64> {
    if let Some(pos) = q.find("시속") {
        let digits: String = q[pos + "시속".len()..]
            .trim_start()
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        if let Ok(value) = digits.parse() {
            return Some(value);
        }
    }
    let pos = q.find("km/h").or_else(|| q.find("kph"))?;
    let before = q[..pos].trim_end();
    let digits: String = before
        .chars()
        .rev()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    digits.parse().ok()
}

/// Reads the question.
pub fn understand(question: &str) -> Ask {
    let q = format!(" {} ", question.to_lowercase());
    let q = q.as_str();
    let distances = distances(q);
    let durations = durations(q);
    // Korean often leaves the subject out: a question about what was run is about the asker.
    let own = mine(q)
        || any(
            q,
            &[
                "달렸",
                "뛰었",
                "달린 ",
                "뛴 ",
                "달리기 어땠",
                "달리기는 어땠",
                "내 기록",
            ],
        )
        || (any(q, &["달리기", "러닝"])
            && any(
                q,
                &[
                    "올해",
                    "작년",
                    "이번 달",
                    "이번달",
                    "지난달",
                    "지난 달",
                    "이번 주",
                    "이번주",
                    "지난주",
                    "지난 주",
                    "오늘",
                    "어제",
                ],
            ));

    // Crews.
    if any(q, &["meetup", "group run", "단체런", "모임", "번개"]) {
        return Ask::Meetups;
    }
    if any(q, &["crew", "크루", "club"]) && (own || any(q, &["which", "어느", "무슨"])) {
        return Ask::MyCrews;
    }

    // Races and registrations.
    let registration_words = any(
        q,
        &[
            "registration",
            "register",
            "sign up",
            "신청",
            "접수",
            "entry",
            "bib",
            "배번",
            "waitlist",
            "대기",
        ],
    );
    let opening = any(q, &["open", "열려", "열리", "오픈", "시작", "언제", "when"]);
    let how_it_works = any(
        q,
        &[
            "how does",
            "how do",
            "what happens",
            "how it works",
            "어떻게",
            "뭐야",
            "무엇",
            "what is",
        ],
    );
    if registration_words
        && own
        && any(
            q,
            &[
                "status",
                "상태",
                "position",
                "순번",
                "my registrations",
                "내 신청",
                "registered",
                "신청했",
                "신청한",
            ],
        )
    {
        return Ask::MyRegistrations;
    }
    if any(
        q,
        &[
            "opening soon",
            "open soon",
            "곧 열리",
            "곧 접수",
            "upcoming race",
            "races open",
            "다가오는 대회",
            "접수 예정",
        ],
    ) {
        return Ask::RacesOpeningSoon { region: region(q) };
    }
    if registration_words && opening && !how_it_works {
        let name = race_name(question);
        if !name.is_empty() {
            return Ask::RaceOpening { name };
        }
        return Ask::RacesOpeningSoon { region: region(q) };
    }

    // Heart-rate zones.
    if any(q, &["zone", "존", "karvonen", "카르보넨", "심박 구간"]) {
        let max = number_after(
            q,
            &[
                "max hr",
                "max heart rate",
                "maximum heart rate",
                "최대심박",
                "최대 심박",
                "max ",
            ],
        );
        let rest = number_after(q, &["resting", "rest hr", "rest ", "안정시", "안정 시"]);
        let age = number_after(q, &["age", "나이", "i'm", "i am"])
            .or_else(|| number_after(q, &[""]).filter(|_| any(q, &["살", "세 ", "years old"])));
        if max.is_some() || age.is_some() {
            return Ask::HrZones { max, rest, age };
        }
    }

    // Calculations with given numbers.
    if let Some(kmh) = speed(q) {
        return Ask::PaceFromSpeed { kmh };
    }
    let predict = any(
        q,
        &[
            "predict",
            "예상",
            "예측",
            "riegel",
            "리겔",
            "could i run",
            "can i run",
        ],
    );
    if any(q, &["vdot", "브이닷", "training pace", "훈련 페이스"]) {
        let from = match (distances.first(), durations.first()) {
            (Some(&m), Some(&s)) => Some((m, s)),
            _ => None,
        };
        return Ask::TrainingPaces { from };
    }
    if predict && !distances.is_empty() {
        return match (distances.as_slice(), durations.first()) {
            ([from, target, ..], Some(&seconds)) => Ask::Predict {
                from: Some((*from, seconds)),
                target: *target,
            },
            ([target], _) => Ask::Predict {
                from: None,
                target: *target,
            },
            ([_, target, ..], None) => Ask::Predict {
                from: None,
                target: *target,
            },
            ([], _) => Ask::Knowledge,
        };
    }
    if any(q, &["split", "스플릿", "구간 기록", "구간기록"])
        && let (Some(&meters), Some(&seconds)) = (distances.first(), durations.first())
    {
        return Ask::Splits { meters, seconds };
    }
    if any(q, &["10%", "10 %", "10 percent", "10퍼센트", "10프로"]) {
        let numbers = km_numbers(q);
        if let Some(&last_km) = numbers.first() {
            return Ask::Volume {
                last_km,
                this_km: numbers.get(1).copied(),
            };
        }
        return Ask::WeeklyChange;
    }
    if let (Some(&meters), Some(&seconds)) = (distances.first(), durations.first()) {
        let pace_given = any(
            q,
            &[
                "/km",
                "per km",
                "km당",
                "페이스로",
                "pace of",
                "at a pace",
                "at ",
            ],
        ) && seconds < 1200.0;
        if pace_given {
            return Ask::FinishTime {
                meters,
                pace: seconds,
            };
        }
        return Ask::TargetPace { meters, seconds };
    }
    if any(q, &["/km", "per km", "km당"])
        && any(q, &["speed", "속도", "km/h", "시속"])
        && let Some(&pace) = durations.first()
    {
        return Ask::SpeedFromPace { pace };
    }

    // The runner's own data.
    let run_words = any(
        q,
        &[
            " run",
            "ran",
            "running",
            "km",
            "distance",
            "mileage",
            "달렸",
            "달린",
            "달리기",
            "뛰었",
            "뛴",
            "러닝",
            "거리",
        ],
    );
    if any(q, &["badge", "achievement", "배지", "뱃지", "업적"]) {
        return Ask::Badges;
    }
    if any(q, &["rank", "leaderboard", "순위", "랭킹", "등수"]) {
        return Ask::Rank;
    }
    if any(q, &["challenge", "챌린지"]) && own {
        return Ask::Challenges;
    }
    if any(
        q,
        &[
            "personal record",
            "personal best",
            " pr ",
            " pr?",
            " prs",
            " pb",
            "개인기록",
            "개인 기록",
            "최고기록",
            "최고 기록",
            "best time",
            "fastest",
        ],
    ) && (own || any(q, &["개인"]))
    {
        return Ask::Records {
            distance: distances.first().copied(),
        };
    }
    if own && predict {
        return Ask::Predict {
            from: None,
            target: distances.first().copied().unwrap_or(MARATHON_M),
        };
    }
    if (own || any(q, &["this week", "이번 주"]))
        && any(q, &["last week", "지난주", "지난 주"])
        && any(q, &["this week", "이번 주", "이번주"])
    {
        return Ask::WeeklyChange;
    }
    if own
        && any(
            q,
            &[
                "longest",
                "farthest",
                "가장 긴",
                "가장 길게",
                "제일 긴",
                "최장",
                "가장 멀리",
                "제일 멀리",
            ],
        )
    {
        return Ask::LongestRun;
    }
    if own
        && any(
            q,
            &[
                "last long run",
                "latest long run",
                "마지막 장거리",
                "최근 장거리",
                "지난 장거리",
                "마지막 롱런",
                "최근 롱런",
            ],
        )
    {
        return Ask::LastRun { long: true };
    }
    if own
        && any(
            q,
            &[
                "how far",
                "how many km",
                "how many kilometers",
                "how much did i run",
                "how many runs",
                "total",
                "몇 km",
                "몇km",
                "몇 키로",
                "몇키로",
                "얼마나",
                "몇 번",
                "총",
            ],
        )
        && run_words
    {
        return Ask::Totals;
    }
    if own
        && (any(
            q,
            &[
                "last run",
                "latest run",
                "recent run",
                "마지막 달리기",
                "최근 달리기",
                "how was my run",
                "my run on",
                "my run last",
                "달리기 어땠",
                "달리기는 어땠",
            ],
        ) || (run_words
            && super::dates::resolve(q, chrono::NaiveDate::MIN)
                .is_some_and(|p| p.kind == super::dates::PeriodKind::Day)))
    {
        return Ask::LastRun { long: false };
    }
    if own
        && run_words
        && any(
            q,
            &[
                "this month",
                "this week",
                "this year",
                "이번 달",
                "이번 주",
                "올해",
                "지난달",
                "지난주",
                "last month",
                "last week",
            ],
        )
    {
        return Ask::Totals;
    }
    Ask::Knowledge
}

/// Numbers followed by km, in order.
fn km_numbers(q: &str) -> Vec<f64> {
    distances(q).into_iter().map(|m| m / 1000.0).collect()
}

const REGIONS: &[(&str, &str)] = &[
    ("seoul", "Seoul"),
    ("서울", "Seoul"),
    ("busan", "Busan"),
    ("부산", "Busan"),
    ("incheon", "Incheon"),
    ("인천", "Incheon"),
    ("daegu", "Daegu"),
    ("대구", "Daegu"),
    ("daejeon", "Daejeon"),
    ("대전", "Daejeon"),
    ("gwangju", "Gwangju"),
    ("광주", "Gwangju"),
    ("chuncheon", "Chuncheon"),
    ("춘천", "Chuncheon"),
    ("jeju", "Jeju"),
    ("제주", "Jeju"),
    ("gyeongju", "Gyeongju"),
    ("경주", "Gyeongju"),
];

/// The region a question names, as the race catalog spells it.
pub fn region(q: &str) -> Option<String> {
    let q = q.to_lowercase();
    REGIONS
        .iter()
        .find(|(word, _)| q.contains(word))
        .map(|(_, name)| (*name).to_owned())
}

/// The words of a race's name in a question: what precedes "registration"/"신청"/"접수", with
/// question words removed. Empty when nothing names a race.
pub fn race_name(question: &str) -> String {
    let lower = question.to_lowercase();
    let cut = ["신청", "접수", "registration", "register", "entry", "sign"]
        .iter()
        .filter_map(|w| lower.find(w))
        .min()
        .unwrap_or(lower.len());
    let head = &lower[..cut];
    let stop: &[&str] = &[
        "when", "does", "do", "is", "the", "for", "open", "opens", "will", "what", "time", "to",
        "언제", "은", "는", "의", "대회", "a", "i", "can", "how",
    ];
    let mut words: Vec<String> = head
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty() && !stop.contains(w))
        .map(|w| {
            // Korean particles at the end of a word.
            w.trim_end_matches(['은', '는', '의', '이', '가'])
                .to_owned()
        })
        .filter(|w| !w.is_empty())
        .collect();
    // After "for": "when does registration for the Seoul Marathon open?".
    if words.is_empty()
        && let Some(pos) = lower.find(" for ")
    {
        let tail = &lower[pos + 5..];
        words = tail
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty() && !stop.contains(w))
            .map(str::to_owned)
            .collect();
    }
    words.join(" ")
}

/// Whether a question touches health (answers add a caution and point to a professional).
pub fn medical(question: &str) -> bool {
    let q = question.to_lowercase();
    any(
        &q,
        &[
            "pain",
            "hurt",
            "injur",
            "chest",
            "dizz",
            "faint",
            "doctor",
            "swell",
            "fracture",
            "heart disease",
            "asthma",
            "sick",
            "통증",
            "아파",
            "아프",
            "부상",
            "가슴",
            "어지러",
            "병원",
            "의사",
            "부어",
            "골절",
            "쓰러",
            "천식",
            "질환",
            "족저근막",
            "정강이",
            "무릎",
            "아킬레스",
            "shin",
            "knee",
            "achilles",
            "plantar",
            "heat stroke",
            "열사병",
        ],
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn the_done_when_questions() {
        assert_eq!(understand("이번 달에 몇 km 달렸어?"), Ask::Totals);
        assert_eq!(
            understand("What pace do I need for a sub-4 marathon?"),
            Ask::TargetPace {
                meters: MARATHON_M,
                seconds: 14_400.0
            }
        );
        assert_eq!(
            understand("How far was my longest run this year?"),
            Ask::LongestRun
        );
        assert_eq!(
            understand("서울 마라톤 신청은 언제 열려?"),
            Ask::RaceOpening {
                name: "서울 마라톤".into()
            }
        );
        assert_eq!(understand("What is a tempo run?"), Ask::Knowledge);
    }

    #[test]
    fn numbers_are_read() {
        assert_eq!(durations("3:30:00 marathon"), [12_600.0]);
        assert_eq!(durations("5km in 25:00"), [1500.0]);
        assert_eq!(durations("3시간 30분"), [12_600.0]);
        assert_eq!(durations("서브4 마라톤"), [14_400.0]);
        assert_eq!(
            distances(" 10km then a half marathon"),
            [10_000.0, HALF_MARATHON_M]
        );
        assert_eq!(distances("5k race"), [5000.0]);
        assert_eq!(
            race_name("When does registration for the Seoul Marathon open?"),
            "seoul marathon"
        );
    }

    #[test]
    fn intents() {
        assert_eq!(
            understand("지난주 화요일 달리기 어땠어?"),
            Ask::LastRun { long: false }
        );
        assert!(matches!(
            understand("If I ran 5K in 25:00, what would my marathon time be predicted?"),
            Ask::Predict { from: Some(_), .. }
        ));
        assert!(matches!(
            understand("My max heart rate is 190, what are my zones?"),
            Ask::HrZones { max: Some(190), .. }
        ));
        assert!(matches!(
            understand("최대심박 185 안정시 55 심박존 알려줘"),
            Ask::HrZones {
                max: Some(185),
                rest: Some(55),
                ..
            }
        ));
        assert_eq!(
            understand("What's my registration status?"),
            Ask::MyRegistrations
        );
        assert_eq!(understand("내 크루 다음 단체런 언제야?"), Ask::Meetups);
        assert_eq!(understand("How does the waitlist work?"), Ask::Knowledge);
        assert_eq!(
            understand("What are my personal records?"),
            Ask::Records { distance: None }
        );
    }

    #[test]
    fn korean_questions_without_a_subject() {
        assert_eq!(
            understand("마라톤 준비할 때 장거리 달리기는 얼마나 길게 해?"),
            Ask::Knowledge
        );
        assert_eq!(
            understand("올해 가장 긴 달리기는 몇 km였어?"),
            Ask::LongestRun
        );
        assert_eq!(
            understand("시속 10 km는 페이스가 얼마야?"),
            Ask::PaceFromSpeed { kmh: 10.0 }
        );
        assert_eq!(understand("How do I do hill repeats?"), Ask::Knowledge);
        assert_eq!(understand("이번 주에 얼마나 달렸어?"), Ask::Totals);
    }
}
