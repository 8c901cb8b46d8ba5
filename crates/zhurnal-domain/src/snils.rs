//! СНИЛС — the insurance number every child and adult has; the school enters it so the ESIA
//! account can be matched to the registered person.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A СНИЛС with a verified checksum. Held as its 11 digits; never logged (its `Debug` is masked).
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Snils(String);

#[derive(Debug, Error, PartialEq, Eq)]
pub enum SnilsError {
    #[error("СНИЛС должен состоять из 11 цифр (формат XXX-XXX-XXX YY), получено {0} цифр")]
    WrongLength(usize),
    #[error("СНИЛС содержит недопустимый символ «{0}»: допустимы цифры, дефис и пробел")]
    BadCharacter(char),
    #[error("контрольное число СНИЛС не сходится: ожидалось {expected:02}, указано {given:02}")]
    Checksum { expected: u32, given: u32 },
}

impl Snils {
    /// Parses `XXX-XXX-XXX YY`, `XXXXXXXXXXX` or any mix of digits, hyphens and spaces.
    pub fn parse(input: &str) -> Result<Self, SnilsError> {
        let mut digits = String::with_capacity(11);
        for c in input.trim().chars() {
            match c {
                '0'..='9' => digits.push(c),
                '-' | ' ' => {}
                other => return Err(SnilsError::BadCharacter(other)),
            }
        }
        if digits.len() != 11 {
            return Err(SnilsError::WrongLength(digits.len()));
        }
        let d: Vec<u32> = digits.chars().filter_map(|c| c.to_digit(10)).collect();
        let number: u64 = digits[..9].parse().unwrap_or(0);
        let given = d[9] * 10 + d[10];
        // The checksum is only defined for numbers above 001-001-998 (Pension Fund rule).
        if number > 1_001_998 {
            let expected = Self::checksum(&d[..9]);
            if expected != given {
                return Err(SnilsError::Checksum { expected, given });
            }
        }
        Ok(Snils(digits))
    }

    /// Builds a valid СНИЛС from its first nine digits (used by the demo and generators).
    pub fn from_number(number: u32) -> Self {
        let body = format!("{:09}", number % 1_000_000_000);
        let d: Vec<u32> = body.chars().filter_map(|c| c.to_digit(10)).collect();
        let sum = Self::checksum(&d);
        Snils(format!("{body}{sum:02}"))
    }

    fn checksum(first_nine: &[u32]) -> u32 {
        let sum: u32 = first_nine.iter().enumerate().map(|(i, d)| d * (9 - i as u32)).sum();
        match sum {
            s if s < 100 => s,
            100 | 101 => 0,
            s => {
                let r = s % 101;
                if r == 100 { 0 } else { r }
            }
        }
    }

    /// The 11 digits, the canonical form used for keyed hashing.
    pub fn digits(&self) -> &str {
        &self.0
    }

    /// `XXX-XXX-XXX YY`, as ESIA and paper forms print it.
    pub fn formatted(&self) -> String {
        let s = &self.0;
        format!("{}-{}-{} {}", &s[0..3], &s[3..6], &s[6..9], &s[9..11])
    }

    /// `***-***-*89 01`: what a screen shows to anyone but the school admin.
    pub fn masked(&self) -> String {
        let s = &self.0;
        format!("***-***-*{} {}", &s[7..9], &s[9..11])
    }
}

impl std::fmt::Debug for Snils {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Snils({})", self.masked())
    }
}

impl TryFrom<String> for Snils {
    type Error = SnilsError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Snils::parse(&value)
    }
}

impl From<Snils> for String {
    fn from(value: Snils) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_well_known_valid_snils_is_accepted_in_both_forms() {
        // 112-233-445 95 is the textbook example of a valid СНИЛС.
        assert_eq!(
            Snils::parse("112-233-445 95").map(|s| s.formatted()),
            Ok("112-233-445 95".into())
        );
        assert!(Snils::parse("11223344595").is_ok());
    }

    #[test]
    fn a_wrong_checksum_is_rejected_with_the_expected_value() {
        assert_eq!(
            Snils::parse("112-233-445 96"),
            Err(SnilsError::Checksum { expected: 95, given: 96 })
        );
    }

    #[test]
    fn letters_and_wrong_lengths_are_rejected() {
        assert_eq!(Snils::parse("112-233-44a 95"), Err(SnilsError::BadCharacter('a')));
        assert_eq!(Snils::parse("123"), Err(SnilsError::WrongLength(3)));
    }

    #[test]
    fn debug_never_shows_the_full_number() {
        let s = Snils::parse("112-233-445 95").expect("valid");
        assert!(!format!("{s:?}").contains("112"));
    }

    proptest::proptest! {
        #[test]
        fn generated_numbers_always_parse_back(n in 1_002_000u32..999_999_999) {
            let s = Snils::from_number(n);
            proptest::prop_assert_eq!(Snils::parse(&s.formatted()), Ok(s));
        }

        #[test]
        fn parsing_never_panics(input in "\\PC{0,30}") {
            let _ = Snils::parse(&input);
        }
    }
}
