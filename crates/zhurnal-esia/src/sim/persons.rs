//! The simulator's people: the JSON fixture format, the built-in personas and SNILS check
//! digits.

use std::collections::HashSet;
use std::path::Path;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::EsiaError;

/// One seeded person. The JSON fixture file is an array of these:
///
/// ```json
/// [{"id": "parent", "title": "Родитель двоих детей", "oid": "1000000002",
///   "last_name": "Кузнецов", "first_name": "Дмитрий", "middle_name": "Сергеевич",
///   "birth_date": "1988-07-02", "gender": "M", "snils": "123-456-789 64",
///   "trusted": true, "email": "d.kuznetsov@example.ru", "mobile": "+7(900)0000002",
///   "kids": ["child13", "teen15"]}]
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimPerson {
    /// Persona key, used by `login_hint` and the picker, e.g. `parent`.
    pub id: String,
    /// What the persona is for, shown in the picker.
    pub title: String,
    /// ESIA object id (digits).
    pub oid: String,
    /// Фамилия.
    pub last_name: String,
    /// Имя.
    pub first_name: String,
    /// Отчество.
    #[serde(default)]
    pub middle_name: Option<String>,
    /// `YYYY-MM-DD` in the fixture; sent as `dd.MM.yyyy`.
    pub birth_date: NaiveDate,
    /// `M` or `F`.
    pub gender: String,
    /// `XXX-XXX-XXX YY`.
    #[serde(default)]
    pub snils: Option<String>,
    /// Confirmed account (`urn:esia:sbj:is_tru`, `trusted` in `/rs/prns`).
    pub trusted: bool,
    /// `EML` contact.
    #[serde(default)]
    pub email: Option<String>,
    /// `MBT` contact.
    #[serde(default)]
    pub mobile: Option<String>,
    /// Ids of other persons who are this person's children (appear in `/kids`).
    #[serde(default)]
    pub kids: Vec<String>,
}

/// The two SNILS check digits for the first nine digits (Pension Fund rule: weights 9…1;
/// a sum below 100 is the check number, 100 and 101 give 00, larger sums are taken mod 101
/// with 100 again giving 00).
pub fn snils_check_digits(nine: &[u8; 9]) -> u8 {
    let sum: u32 = nine.iter().enumerate().map(|(i, d)| u32::from(*d) * (9 - i as u32)).sum();
    let check = match sum {
        0..=99 => sum,
        100 | 101 => 0,
        _ => match sum % 101 {
            100 => 0,
            r => r,
        },
    };
    check as u8
}

/// `XXX-XXX-XXX YY` with valid check digits, from nine digits written `XXX-XXX-XXX`.
pub fn snils_with_check(nine: &str) -> Option<String> {
    let digits: Vec<u8> = nine
        .chars()
        .filter(|c| *c != '-')
        .map(|c| c.to_digit(10).map(|d| d as u8))
        .collect::<Option<_>>()?;
    let arr: [u8; 9] = digits.try_into().ok()?;
    Some(format!("{nine} {:02}", snils_check_digits(&arr)))
}

/// True for `XXX-XXX-XXX YY` with correct check digits.
pub fn snils_is_valid(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 14 || b[3] != b'-' || b[7] != b'-' || b[11] != b' ' {
        return false;
    }
    snils_with_check(&s[..11]).as_deref() == Some(s)
}

fn base(
    id: &str,
    title: &str,
    oid: &str,
    [last, first, middle]: [&str; 3],
    (y, m, d): (i32, u32, u32),
    gender: &str,
) -> SimPerson {
    SimPerson {
        id: id.into(),
        title: title.into(),
        oid: oid.into(),
        last_name: last.into(),
        first_name: first.into(),
        middle_name: Some(middle.into()),
        birth_date: NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default(),
        gender: gender.into(),
        snils: None,
        trusted: true,
        email: None,
        mobile: None,
        kids: Vec::new(),
    }
}

fn some(s: &str) -> Option<String> {
    Some(s.to_owned())
}

/// The built-in personas of `esia-protocol.md` §6.4, all with valid SNILS check digits.
pub fn default_persons() -> Vec<SimPerson> {
    vec![
        SimPerson {
            snils: snils_with_check("112-233-445"),
            email: some("a.smirnova@example.ru"),
            mobile: some("+7(900)0000001"),
            ..base(
                "teacher",
                "Учитель: взрослый, учётная запись подтверждена",
                "1000000001",
                ["Смирнова", "Анна", "Викторовна"],
                (1986, 3, 14),
                "F",
            )
        },
        SimPerson {
            snils: snils_with_check("123-456-789"),
            email: some("d.kuznetsov@example.ru"),
            mobile: some("+7(900)0000002"),
            kids: vec!["child13".into(), "teen15".into()],
            ..base(
                "parent",
                "Родитель двоих детей (child13, teen15), учётная запись подтверждена",
                "1000000002",
                ["Кузнецов", "Дмитрий", "Сергеевич"],
                (1988, 7, 2),
                "M",
            )
        },
        SimPerson {
            trusted: false,
            email: some("e.popova@example.ru"),
            ..base(
                "unconfirmed",
                "Неподтверждённая (упрощённая) учётная запись: вход должен быть отклонён",
                "1000000003",
                ["Попова", "Елена", "Андреевна"],
                (1996, 1, 20),
                "F",
            )
        },
        SimPerson {
            snils: snils_with_check("234-567-890"),
            mobile: some("+7(900)0000004"),
            ..base(
                "teen15",
                "Ученица 15 лет: собственная подтверждённая учётная запись",
                "1000000004",
                ["Кузнецова", "Мария", "Дмитриевна"],
                (2011, 5, 20),
                "F",
            )
        },
        SimPerson {
            snils: snils_with_check("345-678-901"),
            trusted: false,
            ..base(
                "child13",
                "Ребёнок до 14 лет: учётная запись создана родителем, не подтверждена",
                "1000000005",
                ["Кузнецов", "Иван", "Дмитриевич"],
                (2016, 9, 1),
                "M",
            )
        },
    ]
}

/// Checks a set of persons: unique non-empty ids, unique numeric oids, known kid ids, valid
/// SNILS, gender `M`/`F`.
pub fn validate_persons(persons: &[SimPerson]) -> Result<(), EsiaError> {
    let mut ids = HashSet::new();
    let mut oids = HashSet::new();
    for p in persons {
        let bad = |what: &str| Err(EsiaError::Config(format!("person {:?}: {what}", p.id)));
        if p.id.is_empty() || !ids.insert(p.id.as_str()) {
            return bad("id empty or duplicated");
        }
        if p.oid.is_empty() || !p.oid.bytes().all(|b| b.is_ascii_digit()) || !oids.insert(&p.oid) {
            return bad("oid must be unique digits");
        }
        if p.last_name.is_empty() || p.first_name.is_empty() {
            return bad("last_name and first_name are required");
        }
        if p.gender != "M" && p.gender != "F" {
            return bad("gender must be M or F");
        }
        if let Some(s) = &p.snils
            && !snils_is_valid(s)
        {
            return bad("snils must be XXX-XXX-XXX YY with valid check digits");
        }
    }
    for p in persons {
        for k in &p.kids {
            if !ids.contains(k.as_str()) || k == &p.id {
                return Err(EsiaError::Config(format!("person {:?}: unknown kid {k:?}", p.id)));
            }
        }
    }
    Ok(())
}

/// Reads a JSON array of [`SimPerson`] and validates it.
pub fn load_persons(path: &Path) -> Result<Vec<SimPerson>, EsiaError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| EsiaError::Config(format!("cannot read {}: {e}", path.display())))?;
    let persons: Vec<SimPerson> = serde_json::from_str(&text)
        .map_err(|e| EsiaError::Config(format!("{}: {e}", path.display())))?;
    validate_persons(&persons)?;
    Ok(persons)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn snils_check_digits_follow_the_rule() {
        // Widely published example.
        assert_eq!(snils_with_check("112-233-445").as_deref(), Some("112-233-445 95"));
        // 165 mod 101 = 64.
        assert_eq!(snils_with_check("123-456-789").as_deref(), Some("123-456-789 64"));
        // Sum exactly 100 → 00; sum 101 → 00.
        assert_eq!(snils_check_digits(&[9, 2, 0, 0, 0, 0, 0, 0, 3]), 0);
        assert_eq!(snils_check_digits(&[9, 2, 0, 0, 0, 0, 0, 0, 4]), 0);
        assert_eq!(snils_check_digits(&[9, 2, 0, 0, 0, 0, 0, 0, 2]), 99);
        assert_eq!(snils_check_digits(&[1, 1, 1, 1, 1, 1, 1, 1, 1]), 45);
        assert_eq!(snils_check_digits(&[0, 0, 0, 0, 0, 0, 0, 9, 9]), 27);
        // 9·9+8·9+…+1·9 = 405 → 405 mod 101 = 1.
        assert_eq!(snils_check_digits(&[9; 9]), 1);
        assert!(snils_is_valid("112-233-445 95"));
        assert!(!snils_is_valid("112-233-445 96"));
        assert!(!snils_is_valid("11223344595"));
        assert!(!snils_is_valid("112-233-44a 95"));
        assert_eq!(snils_with_check("12-34"), None);
    }

    #[test]
    fn default_persons_are_valid_and_cover_the_cases() {
        let ps = default_persons();
        validate_persons(&ps).unwrap();
        let parent = ps.iter().find(|p| p.id == "parent").unwrap();
        assert_eq!(parent.kids.len(), 2);
        assert!(ps.iter().any(|p| !p.trusted));
        assert!(ps.iter().all(|p| p.snils.as_deref().is_none_or(snils_is_valid)));
    }

    #[test]
    fn fixture_file_round_trips_and_is_validated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("persons.json");
        std::fs::write(&path, serde_json::to_string(&default_persons()).unwrap()).unwrap();
        assert_eq!(load_persons(&path).unwrap(), default_persons());

        let mut dup = default_persons();
        dup[1].oid = dup[0].oid.clone();
        std::fs::write(&path, serde_json::to_string(&dup).unwrap()).unwrap();
        assert!(matches!(load_persons(&path), Err(EsiaError::Config(_))));

        let mut bad_kid = default_persons();
        bad_kid[0].kids = vec!["nobody".into()];
        assert!(validate_persons(&bad_kid).is_err());
        let mut bad_snils = default_persons();
        bad_snils[0].snils = Some("112-233-445 00".into());
        assert!(validate_persons(&bad_snils).is_err());

        std::fs::write(&path, r#"[{"id": "x", "unknown": 1}]"#).unwrap();
        assert!(load_persons(&path).is_err());
        assert!(load_persons(&dir.path().join("missing.json")).is_err());
    }
}
