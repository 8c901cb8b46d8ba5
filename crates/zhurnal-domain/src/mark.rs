//! Отметки: values, weights, the weighted average and the suggested period mark.
//!
//! The rules that vary by region or school (weights of work types, the rounding threshold, the
//! minimum number of marks) are parameters, never constants: see `RoundingRule`.

use serde::{Deserialize, Serialize};
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum MarkError {
    #[error("отметка «{0}» не распознана: допустимы 1–5, «зач» или «незач»")]
    Unrecognised(String),
    #[error("по этому предмету ставится зачёт/незачёт, а не отметка «{0}»")]
    PointsOnPassFail(String),
    #[error("по этому предмету ставятся отметки 1–5, а не «{0}»")]
    PassFailOnPoints(String),
    #[error("в 1 классе обучение безотметочное: отметки не ставятся")]
    MarkFreeGrade,
    #[error("вес работы должен быть от 1 до 10, указан {0}")]
    WeightOutOfRange(i64),
}

/// How a subject is assessed (система оценивания).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Grading {
    /// Пятибалльная шкала.
    FivePoint,
    /// Зачёт / незачёт.
    PassFail,
}

impl Grading {
    pub fn code(self) -> &'static str {
        match self {
            Self::FivePoint => "five_point",
            Self::PassFail => "pass_fail",
        }
    }
    pub fn from_code(code: &str) -> Option<Self> {
        match code {
            "five_point" => Some(Self::FivePoint),
            "pass_fail" => Some(Self::PassFail),
            _ => None,
        }
    }
}

/// Текущая отметка: one mark in a lesson cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum MarkValue {
    /// 1…5.
    Points(u8),
    /// Зачёт.
    Pass,
    /// Незачёт.
    Fail,
}

impl MarkValue {
    /// Parses what a teacher types or the API sends: `5`, `4`, `зач`, `незач`, `pass`, `fail`.
    pub fn parse(input: &str) -> Result<Self, MarkError> {
        let t = input.trim().to_lowercase();
        match t.as_str() {
            "1" | "2" | "3" | "4" | "5" => Ok(Self::Points(t.as_bytes()[0] - b'0')),
            "зач" | "зачёт" | "зачет" | "pass" => Ok(Self::Pass),
            "незач" | "незачёт" | "незачет" | "fail" => Ok(Self::Fail),
            _ => Err(MarkError::Unrecognised(input.trim().to_string())),
        }
    }

    /// Parses and checks the value fits the subject's grading and the class's grade.
    pub fn parse_for(input: &str, grading: Grading, grade: u8) -> Result<Self, MarkError> {
        if grade == 1 {
            return Err(MarkError::MarkFreeGrade);
        }
        let v = Self::parse(input)?;
        match (grading, v) {
            (Grading::FivePoint, Self::Pass | Self::Fail) => {
                Err(MarkError::PassFailOnPoints(input.trim().to_string()))
            }
            (Grading::PassFail, Self::Points(_)) => {
                Err(MarkError::PointsOnPassFail(input.trim().to_string()))
            }
            _ => Ok(v),
        }
    }

    /// The stored code: `1`…`5`, `pass`, `fail`.
    pub fn code(self) -> String {
        match self {
            Self::Points(p) => p.to_string(),
            Self::Pass => "pass".into(),
            Self::Fail => "fail".into(),
        }
    }

    /// What the journal prints.
    pub fn display(self) -> String {
        match self {
            Self::Points(p) => p.to_string(),
            Self::Pass => "зач".into(),
            Self::Fail => "незач".into(),
        }
    }

    /// Points take part in the average; зачёт/незачёт do not.
    pub fn points(self) -> Option<u8> {
        match self {
            Self::Points(p) => Some(p),
            _ => None,
        }
    }
}

impl From<MarkValue> for String {
    fn from(v: MarkValue) -> Self {
        v.code()
    }
}

impl TryFrom<String> for MarkValue {
    type Error = MarkError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

/// Check a work-type weight at the edge.
pub fn parse_weight(w: i64) -> Result<u8, MarkError> {
    if (1..=10).contains(&w) { Ok(w as u8) } else { Err(MarkError::WeightOutOfRange(w)) }
}

/// A mark as the average sees it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WeightedMark {
    pub value: MarkValue,
    pub weight: u8,
}

/// Средневзвешенный балл: Σ(mark × weight) / Σ(weight) over point marks; `None` with no marks.
pub fn weighted_average(marks: &[WeightedMark]) -> Option<f64> {
    let (sum, weights) = marks
        .iter()
        .filter_map(|m| {
            m.value.points().map(|p| (f64::from(p) * f64::from(m.weight), f64::from(m.weight)))
        })
        .fold((0.0, 0.0), |(s, w), (ms, mw)| (s + ms, w + mw));
    (weights > 0.0).then(|| sum / weights)
}

/// Итоговая/четвертная: the value of a period, annual or final mark.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum PeriodMarkValue {
    Points(u8),
    Pass,
    Fail,
    /// осв — освобождён.
    Exempt,
    /// н/а — не аттестован.
    NotAttested,
}

impl PeriodMarkValue {
    pub fn parse(input: &str) -> Result<Self, MarkError> {
        match input.trim().to_lowercase().as_str() {
            "осв" | "exempt" => Ok(Self::Exempt),
            "н/а" | "на" | "not_attested" => Ok(Self::NotAttested),
            _ => MarkValue::parse(input).map(|v| match v {
                MarkValue::Points(p) => Self::Points(p),
                MarkValue::Pass => Self::Pass,
                MarkValue::Fail => Self::Fail,
            }),
        }
    }
    pub fn code(self) -> String {
        match self {
            Self::Points(p) => p.to_string(),
            Self::Pass => "pass".into(),
            Self::Fail => "fail".into(),
            Self::Exempt => "exempt".into(),
            Self::NotAttested => "not_attested".into(),
        }
    }
    pub fn display(self) -> String {
        match self {
            Self::Points(p) => p.to_string(),
            Self::Pass => "зач".into(),
            Self::Fail => "незач".into(),
            Self::Exempt => "осв".into(),
            Self::NotAttested => "н/а".into(),
        }
    }
    pub fn points(self) -> Option<u8> {
        match self {
            Self::Points(p) => Some(p),
            _ => None,
        }
    }
}

impl From<PeriodMarkValue> for String {
    fn from(v: PeriodMarkValue) -> Self {
        v.code()
    }
}

impl TryFrom<String> for PeriodMarkValue {
    type Error = MarkError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

/// The school's rule for suggesting a period mark from the weighted average
/// («Положение о текущем контроле»): no federal rule exists, so both numbers are settings.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoundingRule {
    /// Fractional part from which the mark rounds up: 0.5 means 4.50 → 5, 0.6 means 4.60 → 5.
    pub round_up_from: f64,
    /// Fewer marks than this in the period → no suggestion (н/а risk is shown instead).
    pub min_marks: usize,
}

impl Default for RoundingRule {
    fn default() -> Self {
        Self { round_up_from: 0.5, min_marks: 3 }
    }
}

impl RoundingRule {
    /// Suggested period mark for an average, or `None` when there are too few marks.
    pub fn suggest(&self, average: f64, mark_count: usize) -> Option<u8> {
        if mark_count < self.min_marks || !average.is_finite() {
            return None;
        }
        // Averages are shown with two decimals; round there first so 4.4999999 reads as 4.50.
        let avg = (average * 100.0).round() / 100.0;
        let floor = avg.floor();
        let frac = avg - floor;
        let up = frac + 1e-9 >= self.round_up_from;
        let mark = if up { floor + 1.0 } else { floor };
        Some(mark.clamp(1.0, 5.0) as u8)
    }

    /// Human explanation of the rule, shown next to every suggestion.
    pub fn describe(&self) -> String {
        format!(
            "дробная часть от {:.2} округляется вверх (например, {:.2} → {}), не менее {} отметок за период",
            self.round_up_from,
            4.0 + self.round_up_from,
            5,
            self.min_marks
        )
    }
}

/// Everything the diary shows about how an average and a suggested mark were derived.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AverageExplanation {
    /// e.g. `(5×2 + 3×1) / (2 + 1)`.
    pub formula: String,
    pub weighted_sum: f64,
    pub total_weight: f64,
    pub average: Option<f64>,
    pub mark_count: usize,
    pub suggested: Option<u8>,
    pub rule: String,
}

impl AverageExplanation {
    pub fn explain(marks: &[WeightedMark], rule: &RoundingRule) -> Self {
        let pts: Vec<(u8, u8)> =
            marks.iter().filter_map(|m| m.value.points().map(|p| (p, m.weight))).collect();
        let weighted_sum: f64 = pts.iter().map(|(p, w)| f64::from(*p) * f64::from(*w)).sum();
        let total_weight: f64 = pts.iter().map(|(_, w)| f64::from(*w)).sum();
        let average = weighted_average(marks);
        let formula = if pts.is_empty() {
            "нет отметок".to_string()
        } else {
            let num: Vec<String> = pts.iter().map(|(p, w)| format!("{p}×{w}")).collect();
            let den: Vec<String> = pts.iter().map(|(_, w)| w.to_string()).collect();
            format!("({}) / ({})", num.join(" + "), den.join(" + "))
        };
        Self {
            formula,
            weighted_sum,
            total_weight,
            average,
            mark_count: pts.len(),
            suggested: average.and_then(|a| rule.suggest(a, pts.len())),
            rule: rule.describe(),
        }
    }
}

/// One line of the target planner: "N marks of value V and weight W bring the average to X".
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TargetStep {
    pub count: usize,
    pub value: u8,
    pub weight: u8,
    pub resulting_average: f64,
}

/// Планировщик цели: the fewest marks of `value` with `weight` that lift the average so the
/// rule suggests `target`; `None` when unreachable within `max_marks`.
pub fn plan_target(
    marks: &[WeightedMark],
    rule: &RoundingRule,
    target: u8,
    value: u8,
    weight: u8,
    max_marks: usize,
) -> Option<TargetStep> {
    let mut all: Vec<WeightedMark> = marks.to_vec();
    for count in 0..=max_marks {
        if count > 0 {
            all.push(WeightedMark { value: MarkValue::Points(value), weight });
        }
        let n = all.iter().filter(|m| m.value.points().is_some()).count();
        if let Some(avg) = weighted_average(&all)
            && rule.suggest(avg, n).is_some_and(|s| s >= target)
        {
            return Some(TargetStep { count, value, weight, resulting_average: avg });
        }
    }
    None
}

/// Средний балл as the diary prints it: two decimals with a decimal comma (4,50).
pub fn format_average(average: f64) -> String {
    format!("{average:.2}").replace('.', ",")
}

/// «пятёрка», «четвёрка»… in the form that goes with `count` («две пятёрки», «пять пятёрок»).
fn mark_noun(value: u8, count: usize) -> &'static str {
    let forms = match value {
        5 => ["пятёрка", "пятёрки", "пятёрок"],
        4 => ["четвёрка", "четвёрки", "четвёрок"],
        3 => ["тройка", "тройки", "троек"],
        2 => ["двойка", "двойки", "двоек"],
        _ => ["единица", "единицы", "единиц"],
    };
    let (m10, m100) = (count % 10, count % 100);
    if m10 == 1 && m100 != 11 {
        forms[0]
    } else if (2..=4).contains(&m10) && !(12..=14).contains(&m100) {
        forms[1]
    } else {
        forms[2]
    }
}

/// A feminine count word (отметка is feminine): «одна», «две» … «десять», digits beyond.
fn count_word(count: usize) -> String {
    const WORDS: [&str; 11] = [
        "ноль",
        "одна",
        "две",
        "три",
        "четыре",
        "пять",
        "шесть",
        "семь",
        "восемь",
        "девять",
        "десять",
    ];
    WORDS.get(count).map_or_else(|| count.to_string(), |w| (*w).to_string())
}

impl TargetStep {
    /// «две пятёрки веса 2 поднимут средний балл до 4,50».
    pub fn describe(&self) -> String {
        if self.count == 0 {
            return format!(
                "цель уже достигнута: средний балл {}",
                format_average(self.resulting_average)
            );
        }
        let verb = if self.count % 10 == 1 && self.count % 100 != 11 {
            "поднимет"
        } else {
            "поднимут"
        };
        format!(
            "{} {} веса {} {verb} средний балл до {}",
            count_word(self.count),
            mark_noun(self.value, self.count),
            self.weight,
            format_average(self.resulting_average)
        )
    }
}

/// Планировщик цели for the diary: for each available work-type weight, the fewest marks of
/// `value` that make the rule suggest at least `target`, fewest first (ties: lighter work
/// first, as it is easier to get). Weights that cannot reach the target within `max_marks`
/// are left out; an empty answer means the target is out of reach.
pub fn plan_options(
    marks: &[WeightedMark],
    rule: &RoundingRule,
    target: u8,
    value: u8,
    weights: &[u8],
    max_marks: usize,
) -> Vec<TargetStep> {
    let mut ws: Vec<u8> = weights.to_vec();
    ws.sort_unstable();
    ws.dedup();
    let mut out: Vec<TargetStep> = ws
        .into_iter()
        .filter_map(|w| plan_target(marks, rule, target, value, w, max_marks))
        .collect();
    out.sort_by_key(|s| (s.count, s.weight));
    if out.first().is_some_and(|s| s.count == 0) {
        out.truncate(1);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(v: u8, w: u8) -> WeightedMark {
        WeightedMark { value: MarkValue::Points(v), weight: w }
    }

    #[test]
    fn weighted_average_follows_the_published_examples() {
        // (5·2 + 3·1)/3 = 4.33 (МЭШ example) and (5·3 + 5·1 + 4·5)/9 = 4.44.
        let a = weighted_average(&[m(5, 2), m(3, 1)]).expect("marks");
        assert!((a - 4.3333).abs() < 1e-3);
        let b = weighted_average(&[m(5, 3), m(5, 1), m(4, 5)]).expect("marks");
        assert!((b - 4.4444).abs() < 1e-3);
    }

    #[test]
    fn pass_fail_marks_do_not_enter_the_average() {
        let marks = [m(4, 1), WeightedMark { value: MarkValue::Pass, weight: 1 }];
        assert_eq!(weighted_average(&marks), Some(4.0));
        assert_eq!(weighted_average(&[WeightedMark { value: MarkValue::Fail, weight: 1 }]), None);
    }

    #[test]
    fn rounding_threshold_is_a_setting() {
        let half = RoundingRule { round_up_from: 0.5, min_marks: 1 };
        let strict = RoundingRule { round_up_from: 0.6, min_marks: 1 };
        assert_eq!(half.suggest(4.50, 3), Some(5));
        assert_eq!(half.suggest(4.49, 3), Some(4));
        assert_eq!(strict.suggest(4.50, 3), Some(4));
        assert_eq!(strict.suggest(4.60, 3), Some(5));
        // 4.4999999 displays as 4.50 and must round the way it reads.
        assert_eq!(half.suggest(4.499_999_9, 3), Some(5));
    }

    #[test]
    fn too_few_marks_give_no_suggestion() {
        let rule = RoundingRule { round_up_from: 0.5, min_marks: 3 };
        assert_eq!(rule.suggest(5.0, 2), None);
        assert_eq!(rule.suggest(5.0, 3), Some(5));
    }

    #[test]
    fn explanation_shows_the_formula_and_suggestion() {
        let e = AverageExplanation::explain(&[m(5, 2), m(3, 1), m(4, 1)], &RoundingRule::default());
        assert_eq!(e.formula, "(5×2 + 3×1 + 4×1) / (2 + 1 + 1)");
        assert_eq!(e.suggested, Some(4));
        assert_eq!(e.mark_count, 3);
    }

    #[test]
    fn target_planner_finds_the_fewest_marks() {
        let rule = RoundingRule { round_up_from: 0.5, min_marks: 1 };
        // 4,4,4 weight 1: two 5s of weight 2 give (12+20)/7 = 4.57 → 5; one gives 22/5 = 4.4 → 4.
        let step =
            plan_target(&[m(4, 1), m(4, 1), m(4, 1)], &rule, 5, 5, 2, 10).expect("reachable");
        assert_eq!(step.count, 2);
        assert!((step.resulting_average - 4.571).abs() < 1e-2);
        // Already there: zero marks needed.
        assert_eq!(plan_target(&[m(5, 1)], &rule, 5, 5, 1, 10).map(|s| s.count), Some(0));
        // 4s can never lift an average to 5.
        assert_eq!(plan_target(&[m(3, 1)], &rule, 5, 4, 1, 20), None);
    }

    #[test]
    fn mark_parsing_respects_subject_grading_and_grade_one() {
        assert_eq!(MarkValue::parse_for("5", Grading::FivePoint, 5), Ok(MarkValue::Points(5)));
        assert_eq!(MarkValue::parse_for("зач", Grading::PassFail, 5), Ok(MarkValue::Pass));
        assert!(matches!(
            MarkValue::parse_for("5", Grading::PassFail, 5),
            Err(MarkError::PointsOnPassFail(_))
        ));
        assert!(matches!(
            MarkValue::parse_for("зач", Grading::FivePoint, 5),
            Err(MarkError::PassFailOnPoints(_))
        ));
        assert_eq!(MarkValue::parse_for("5", Grading::FivePoint, 1), Err(MarkError::MarkFreeGrade));
        assert!(matches!(MarkValue::parse("6"), Err(MarkError::Unrecognised(_))));
        assert_eq!(PeriodMarkValue::parse("осв"), Ok(PeriodMarkValue::Exempt));
        assert_eq!(PeriodMarkValue::parse("н/а"), Ok(PeriodMarkValue::NotAttested));
    }

    proptest::proptest! {
        #[test]
        fn the_average_lies_between_the_lowest_and_highest_mark(
            marks in proptest::collection::vec((1u8..=5, 1u8..=10), 1..40)
        ) {
            let ms: Vec<WeightedMark> = marks.iter().map(|(v, w)| m(*v, *w)).collect();
            let avg = weighted_average(&ms).unwrap_or(0.0);
            let lo = marks.iter().map(|(v, _)| *v).min().unwrap_or(1);
            let hi = marks.iter().map(|(v, _)| *v).max().unwrap_or(5);
            proptest::prop_assert!(avg >= f64::from(lo) - 1e-9 && avg <= f64::from(hi) + 1e-9);
            let s = RoundingRule { round_up_from: 0.5, min_marks: 1 }.suggest(avg, ms.len());
            proptest::prop_assert!(s.is_some_and(|s| s >= lo && s <= hi));
        }
    }

    #[test]
    fn the_planner_names_the_fewest_marks_in_russian() {
        // 4, 4, 5 (weights 1, 1, 2): average 4,50 → with 0.6 rounding suggests 4.
        let rule = RoundingRule { round_up_from: 0.6, min_marks: 3 };
        let marks = [m(4, 1), m(4, 1), m(3, 2)];
        // (4 + 4 + 6) / 4 = 3,50; to be suggested 5 needs an average ≥ 4,60.
        let options = plan_options(&marks, &rule, 5, 5, &[1, 2, 3], 20);
        assert!(!options.is_empty());
        for o in &options {
            let mut all = marks.to_vec();
            all.extend(std::iter::repeat_n(m(5, o.weight), o.count));
            let avg = weighted_average(&all).expect("marks");
            assert!(rule.suggest(avg, all.len()) == Some(5), "{o:?}");
            // One fewer is not enough.
            all.pop();
            let fewer = weighted_average(&all).expect("marks");
            assert!(rule.suggest(fewer, all.len()) != Some(5), "{o:?} is not the fewest");
        }
        assert!(options.windows(2).all(|w| w[0].count <= w[1].count));
        let two = TargetStep { count: 2, value: 5, weight: 2, resulting_average: 4.5 };
        assert_eq!(two.describe(), "две пятёрки веса 2 поднимут средний балл до 4,50");
        let one = TargetStep { count: 1, value: 4, weight: 3, resulting_average: 4.0 };
        assert_eq!(one.describe(), "одна четвёрка веса 3 поднимет средний балл до 4,00");
        let five = TargetStep { count: 5, value: 5, weight: 1, resulting_average: 4.6 };
        assert_eq!(five.describe(), "пять пятёрок веса 1 поднимут средний балл до 4,60");
        let done = plan_options(&[m(5, 1), m(5, 1), m(5, 1)], &rule, 5, 5, &[1, 3], 20);
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].count, 0);
        assert!(done[0].describe().starts_with("цель уже достигнута"));
        assert!(plan_options(&[m(2, 10)], &rule, 5, 5, &[1], 3).is_empty(), "out of reach");
    }
}
