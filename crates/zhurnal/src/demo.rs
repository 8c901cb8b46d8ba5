//! The demo region: two schools with a timetable, a term of lessons, marks and attendance up to
//! "today", and the personas the ESIA simulator offers at login.
//!
//! Everything is derived from a fixed seed and the given date, so the same day always yields the
//! same batch (re-seeding changes nothing) and tests can rely on the shape: 25 classes of grades
//! 1–11 in the main school, about 600 students, no marks in grade 1 (безотметочное обучение),
//! one student who transferred out in October, a teacher with lessons every weekday.

use std::collections::{BTreeMap, HashSet};

use chrono::{Datelike, Duration, NaiveDate, NaiveTime, Weekday};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};
use zhurnal_domain::Snils;
use zhurnal_store::batch::*;

/// What the demo seeds and whom the simulator lets in.
#[derive(Clone, Debug)]
pub struct DemoData {
    pub batch: Batch,
    /// СНИЛС of every registered person by external id (encrypted by the seeder).
    pub snils: Vec<(String, Snils)>,
    pub personas: Vec<Persona>,
    pub school_external_id: String,
    pub region_external_id: String,
    /// External ids of accounts the seeder marks dormant (no login since spring), so the
    /// security officer's pages and the ministry report show something real.
    pub dormant: Vec<String>,
}

/// A person the ESIA simulator knows, with the same data the school registered (or not).
#[derive(Clone, Debug)]
pub struct Persona {
    pub id: String,
    pub title: String,
    /// `None` for someone the journal has never heard of.
    pub external_id: Option<String>,
    pub last_name: String,
    pub first_name: String,
    pub middle_name: Option<String>,
    pub birth_date: NaiveDate,
    /// `M` or `F`.
    pub gender: String,
    pub snils: Option<Snils>,
    /// Confirmed ESIA account.
    pub trusted: bool,
    pub email: Option<String>,
    pub mobile: Option<String>,
    /// Persona ids of this person's children in ESIA.
    pub kids: Vec<String>,
}

/// The public id of a demo person: stable across runs so links in the README keep working.
pub fn uid_for(external_id: &str) -> String {
    let digest = Sha256::digest(format!("zhurnal-demo/{external_id}").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    // RFC 9562 version 8 (custom) and the RFC variant bits.
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

pub const REGION: &str = "demo-region";
pub const MAIN_SCHOOL: &str = "demo-school-1";

/// Generates the demo for the school year containing `today` (from 1 September).
pub fn generate(today: NaiveDate) -> DemoData {
    let mut g = Gen::new(today);
    g.b.regions
        .push(BRegion {
            external_id: REGION.into(), name: "Демонстрационная область".into()
        });
    g.b.municipalities.push(BMunicipality {
        external_id: "demo-muni".into(),
        region: REGION.into(),
        name: "Городской округ Демоград".into(),
    });
    g.b.municipalities.push(BMunicipality {
        external_id: "demo-muni-2".into(),
        region: REGION.into(),
        name: "Берёзовский муниципальный район".into(),
    });

    let y = g.start_year;
    let parent1 = g.new_family(Some((ymd(y - 38, 4, 17), ymd(y - 40, 1, 29))));
    let mut forced = BTreeMap::new();
    // student-teen-1 (15) and student-child-1 (9) are siblings, children of parent-1.
    forced.insert(
        (9, 'А'),
        Forced { family: parent1, birth: ymd(y - 15, 9, 20), male: true, departed: false },
    );
    forced.insert(
        (3, 'А'),
        Forced { family: parent1, birth: ymd(y - 9, 10, 3), male: false, departed: false },
    );
    // departed-1: 14, transferred to another school in October.
    let departed_family = g.new_family(None);
    forced.insert(
        (8, 'А'),
        Forced { family: departed_family, birth: ymd(y - 14, 3, 10), male: true, departed: true },
    );

    let main_classes: Vec<(u8, char)> = [
        (1, "АБВ"),
        (2, "АБ"),
        (3, "АБ"),
        (4, "АБВ"),
        (5, "АБВ"),
        (6, "АБВ"),
        (7, "АБВ"),
        (8, "АБ"),
        (9, "АБ"),
        (10, "А"),
        (11, "А"),
    ]
    .iter()
    .flat_map(|(grade, letters)| letters.chars().map(move |l| (*grade, l)))
    .collect();
    let main = g.school(
        SchoolSpec {
            ext: MAIN_SCHOOL.into(),
            muni: "demo-muni".into(),
            name: "МБОУ «Средняя общеобразовательная школа № 1 г. Демограда»".into(),
            short: "СОШ № 1".into(),
            classes: main_classes,
            class_size: (22, 26),
        },
        &forced,
    );
    let second = g.school(
        SchoolSpec {
            ext: "demo-school-2".into(),
            muni: "demo-muni-2".into(),
            name: "МБОУ «Основная общеобразовательная школа с. Берёзовка»".into(),
            short: "ООШ с. Берёзовка".into(),
            classes: (1..=9).map(|grade| (grade, 'А')).collect(),
            class_size: (12, 16),
        },
        &BTreeMap::new(),
    );
    let _ = second;

    // Staff outside the teaching load.
    let admin =
        g.staff("demo-school-1-admin", "Волкова", "Светлана", "Игоревна", ymd(1974, 2, 11), false);
    g.role(&admin, "school-admin", MAIN_SCHOOL);
    let admin2 =
        g.staff("demo-school-2-admin", "Орлов", "Виктор", "Павлович", ymd(1969, 8, 2), true);
    g.role(&admin2, "school-admin", "demo-school-2");
    let muni =
        g.staff("demo-muni-officer", "Фролова", "Ирина", "Андреевна", ymd(1980, 5, 23), false);
    g.role(&muni, "municipal-officer", "demo-muni");
    let regional =
        g.staff("demo-regional-admin", "Богданов", "Олег", "Сергеевич", ymd(1977, 11, 5), true);
    g.role(&regional, "regional-admin", REGION);
    let security =
        g.staff("demo-security-officer", "Жукова", "Марина", "Викторовна", ymd(1985, 6, 14), false);
    g.role(&security, "security-officer", REGION);

    // Personas: the simulator shows them in this order.
    let teacher1 = main.math_teacher.clone();
    let class9 = main.class_by_name(9, 'А');
    let class3 = main.class_by_name(3, 'А');
    let class8 = main.class_by_name(8, 'А');
    let class6 = main.class_by_name(6, 'Б');
    let teen = class9.students[0].clone();
    let child = class3.students[0].clone();
    let departed = class8.students[0].clone();
    let parents = g.families[parent1].parents.clone();
    let unconfirmed = g.families[class6.families[0]].parents[0].clone();
    let mut personas = vec![
        g.persona(
            "teacher-1",
            &format!("Учитель математики ({})", main.short),
            &teacher1,
            true,
            vec![],
        ),
        g.persona(
            "class-teacher-1",
            &format!("Классный руководитель {}", class9.name),
            class9.class_teacher.as_str(),
            true,
            vec![],
        ),
        g.persona(
            "school-admin-1",
            "Заместитель директора (администратор школы)",
            &admin,
            true,
            vec![],
        ),
        g.persona(
            "parent-1",
            &format!("Родитель: сын в {}, дочь в {}", class9.name, class3.name),
            &parents[0],
            true,
            vec!["student-teen-1".into(), "student-child-1".into()],
        ),
        g.persona(
            "student-teen-1",
            &format!("Ученик {}, 15 лет", class9.name),
            &teen,
            true,
            vec![],
        ),
        g.persona(
            "student-child-1",
            &format!("Ученица {}, 9 лет (детская учётная запись)", class3.name),
            &child,
            false,
            vec![],
        ),
        g.persona(
            "unconfirmed-1",
            "Родитель с неподтверждённой учётной записью",
            &unconfirmed,
            false,
            vec![],
        ),
        g.persona("departed-1", "Выбывший ученик (перевёлся в октябре)", &departed, true, vec![]),
        g.persona("regional-admin-1", "Региональный администратор", &regional, true, vec![]),
        g.persona(
            "security-officer-1",
            "Специалист по информационной безопасности региона",
            &security,
            true,
            vec![],
        ),
    ];
    personas.push(Persona {
        id: "stranger-1".into(),
        title: "Человек, которого нет в журнале".into(),
        external_id: None,
        last_name: "Посторонний".into(),
        first_name: "Пётр".into(),
        middle_name: Some("Петрович".into()),
        birth_date: ymd(1990, 1, 1),
        gender: "M".into(),
        snils: Some(Snils::from_number(987_654_321)),
        trusted: true,
        email: Some("stranger@example.org".into()),
        mobile: None,
        kids: vec![],
    });

    // Security area: a few parents who have not logged in since spring (never personas).
    let persona_ids: Vec<&str> = personas.iter().filter_map(|p| p.external_id.as_deref()).collect();
    let dormant =
        g.b.persons
            .iter()
            .map(|p| p.external_id.clone())
            .filter(|e| e.starts_with("demo-parent-") && !persona_ids.contains(&e.as_str()))
            .take(3)
            .collect();

    DemoData {
        batch: g.b,
        snils: g.snils,
        personas,
        school_external_id: MAIN_SCHOOL.into(),
        region_external_id: REGION.into(),
        dormant,
    }
}

/// One school of a generated region (`zhurnal generate`): the demo school's curriculum,
/// timetable, families, lessons, marks and attendance at another size, with external ids and
/// СНИЛС numbers unique to school `index`.
pub struct RegionSchool {
    pub batch: Batch,
    pub snils: Vec<(String, Snils)>,
    pub school_external_id: String,
    /// The school's administrator (завуч), external id.
    pub admin: String,
}

/// Class letters of a generated school: up to 20 parallel classes per grade.
const LETTERS: &[char] = &[
    'А', 'Б', 'В', 'Г', 'Д', 'Е', 'Ж', 'З', 'И', 'К', 'Л', 'М', 'Н', 'О', 'П', 'Р', 'С', 'Т', 'У',
    'Ф',
];
/// Average class size of a generated school (classes of 22–26).
pub const REGION_CLASS_SIZE: usize = 24;
/// The most students one generated school holds (20 classes in each of 11 grades).
pub const REGION_MAX_SCHOOL_STUDENTS: usize = 20 * 11 * REGION_CLASS_SIZE;

/// Generates school `index` of a synthetic region with about `students` students (classes of
/// 22–26 spread over grades 1–11), its teachers, parents and administrator. СНИЛС numbers
/// start at `snils_base` and grow by at most 40 per person.
pub fn region_school(
    today: NaiveDate,
    index: u32,
    municipality: &str,
    students: usize,
    snils_base: u32,
) -> RegionSchool {
    let mut g = Gen::new(today);
    g.rng = StdRng::seed_from_u64(
        0x005a_4855_524e_414c ^ (u64::from(index) + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15),
    );
    g.next_snils = snils_base;
    let ext = format!("bench-school-{index}");
    g.family_prefix = format!("{ext}-p");
    let n_classes = (students / REGION_CLASS_SIZE).clamp(1, 20 * 11);
    let classes =
        (0..n_classes).map(|i| ((i % 11) as u8 + 1, LETTERS[(i / 11) % LETTERS.len()])).collect();
    let number = index + 1;
    g.school(
        SchoolSpec {
            ext: ext.clone(),
            muni: municipality.into(),
            name: format!("МБОУ «Средняя общеобразовательная школа № {number}»"),
            short: format!("СОШ № {number}"),
            classes,
            class_size: (22, 26),
        },
        &BTreeMap::new(),
    );
    let admin = g.staff(
        &format!("{ext}-admin"),
        "Волкова",
        "Светлана",
        "Игоревна",
        ymd(1974, 2, 11),
        false,
    );
    g.role(&admin, "school-admin", &ext);
    RegionSchool { batch: g.b, snils: g.snils, school_external_id: ext, admin }
}

fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("the demo's calendar dates are valid")
}

struct SchoolSpec {
    ext: String,
    muni: String,
    name: String,
    short: String,
    classes: Vec<(u8, char)>,
    class_size: (usize, usize),
}

/// A student placed by hand (a persona) as the first student of a class.
struct Forced {
    family: usize,
    birth: NaiveDate,
    male: bool,
    departed: bool,
}

struct Family {
    last: &'static str,
    /// Index into the male first names: the children's patronymic.
    father_name: usize,
    parents: Vec<String>,
    children: usize,
}

struct ClassOut {
    ext: String,
    name: String,
    grade: u8,
    students: Vec<String>,
    families: Vec<usize>,
    class_teacher: String,
}

struct SchoolOut {
    short: String,
    classes: Vec<ClassOut>,
    math_teacher: String,
}

impl SchoolOut {
    fn class_by_name(&self, grade: u8, letter: char) -> &ClassOut {
        let name = format!("{grade}{letter}");
        self.classes
            .iter()
            .find(|c| c.grade == grade && c.name == name)
            .expect("the demo school has this class")
    }
}

/// A teacher and the subjects they can take.
struct Teacher {
    ext: String,
    pool: &'static str,
    load: u32,
}

struct Req {
    subject: &'static str,
    pool: &'static str,
    hours: u32,
    groups: bool,
}

/// (assignment external id, teacher index): two entries for a class split into groups.
type Staffing = Vec<(String, usize)>;
/// (class index, staffing, weekly hours, subject code).
type Planned = (usize, Staffing, u32, &'static str);
/// (class external id, class index, staffing, weekday, lesson number, subject code).
type Slot = (String, usize, Staffing, u8, u8, &'static str);

struct Gen {
    rng: StdRng,
    today: NaiveDate,
    start_year: i32,
    b: Batch,
    snils: Vec<(String, Snils)>,
    next_snils: u32,
    families: Vec<Family>,
    persons: BTreeMap<String, usize>,
    /// Prefix of the parents' external ids (`demo-parent-`; per school in a generated region).
    family_prefix: String,
}

const MALE_LAST: &[&str] = &[
    "Иванов",
    "Смирнов",
    "Кузнецов",
    "Попов",
    "Васильев",
    "Петров",
    "Соколов",
    "Михайлов",
    "Новиков",
    "Фёдоров",
    "Морозов",
    "Волков",
    "Алексеев",
    "Лебедев",
    "Семёнов",
    "Егоров",
    "Павлов",
    "Козлов",
    "Степанов",
    "Николаев",
    "Орлов",
    "Андреев",
    "Макаров",
    "Никитин",
    "Захаров",
    "Зайцев",
    "Соловьёв",
    "Борисов",
    "Яковлев",
    "Григорьев",
    "Романов",
    "Воробьёв",
    "Сергеев",
    "Кузьмин",
    "Фролов",
    "Александров",
    "Дмитриев",
    "Королёв",
    "Гусев",
    "Киселёв",
    "Ильин",
    "Максимов",
    "Поляков",
    "Сорокин",
    "Виноградов",
    "Ковалёв",
    "Белов",
    "Медведев",
    "Антонов",
    "Тарасов",
    "Жуков",
    "Баранов",
    "Филиппов",
    "Комаров",
    "Давыдов",
    "Беляев",
    "Герасимов",
    "Богданов",
    "Осипов",
    "Сидоров",
];
const MALE_FIRST: &[&str] = &[
    "Александр",
    "Дмитрий",
    "Максим",
    "Сергей",
    "Андрей",
    "Алексей",
    "Артём",
    "Илья",
    "Кирилл",
    "Михаил",
    "Никита",
    "Матвей",
    "Роман",
    "Егор",
    "Арсений",
    "Иван",
    "Денис",
    "Евгений",
    "Даниил",
    "Тимофей",
    "Владимир",
    "Павел",
    "Глеб",
    "Марк",
    "Лев",
];
/// Patronymics from `MALE_FIRST`, same order.
const PATRONYMIC_M: &[&str] = &[
    "Александрович",
    "Дмитриевич",
    "Максимович",
    "Сергеевич",
    "Андреевич",
    "Алексеевич",
    "Артёмович",
    "Ильич",
    "Кириллович",
    "Михайлович",
    "Никитич",
    "Матвеевич",
    "Романович",
    "Егорович",
    "Арсеньевич",
    "Иванович",
    "Денисович",
    "Евгеньевич",
    "Даниилович",
    "Тимофеевич",
    "Владимирович",
    "Павлович",
    "Глебович",
    "Маркович",
    "Львович",
];
const PATRONYMIC_F: &[&str] = &[
    "Александровна",
    "Дмитриевна",
    "Максимовна",
    "Сергеевна",
    "Андреевна",
    "Алексеевна",
    "Артёмовна",
    "Ильинична",
    "Кирилловна",
    "Михайловна",
    "Никитична",
    "Матвеевна",
    "Романовна",
    "Егоровна",
    "Арсеньевна",
    "Ивановна",
    "Денисовна",
    "Евгеньевна",
    "Данииловна",
    "Тимофеевна",
    "Владимировна",
    "Павловна",
    "Глебовна",
    "Марковна",
    "Львовна",
];
const FEMALE_FIRST: &[&str] = &[
    "Анна",
    "Мария",
    "Елена",
    "Дарья",
    "Алина",
    "Ирина",
    "Екатерина",
    "Арина",
    "Полина",
    "Ольга",
    "Юлия",
    "Татьяна",
    "Наталья",
    "Виктория",
    "Елизавета",
    "Анастасия",
    "Софья",
    "Ксения",
    "Валерия",
    "Вероника",
    "Алиса",
    "Ева",
    "Варвара",
    "Милана",
    "Василиса",
];

/// (code, name, grading)
const SUBJECTS: &[(&str, &str, &str)] = &[
    ("rus", "Русский язык", "five_point"),
    ("litread", "Литературное чтение", "five_point"),
    ("lit", "Литература", "five_point"),
    ("eng", "Английский язык", "five_point"),
    ("math", "Математика", "five_point"),
    ("alg", "Алгебра", "five_point"),
    ("geom", "Геометрия", "five_point"),
    ("prob", "Вероятность и статистика", "five_point"),
    ("inf", "Информатика", "five_point"),
    ("world", "Окружающий мир", "five_point"),
    ("hist", "История", "five_point"),
    ("soc", "Обществознание", "five_point"),
    ("geo", "География", "five_point"),
    ("bio", "Биология", "five_point"),
    ("phys", "Физика", "five_point"),
    ("chem", "Химия", "five_point"),
    ("music", "Музыка", "five_point"),
    ("art", "Изобразительное искусство", "five_point"),
    ("tech", "Труд (технология)", "five_point"),
    ("pe", "Физическая культура", "five_point"),
    ("obzr", "Основы безопасности и защиты Родины", "five_point"),
    ("orkse", "Основы религиозных культур и светской этики", "pass_fail"),
];

/// Виды работ with their weights for the weighted average.
const WORK_TYPES: &[(&str, &str, u8)] = &[
    ("answer", "Ответ на уроке", 1),
    ("homework", "Домашняя работа", 1),
    ("independent", "Самостоятельная работа", 2),
    ("test", "Контрольная работа", 3),
];

/// Weekly hours by grade (учебный план), `pool` is who teaches it.
fn curriculum(grade: u8) -> Vec<Req> {
    let r = |subject, pool, hours| Req { subject, pool, hours, groups: subject == "eng" };
    match grade {
        1 => vec![
            r("rus", "primary", 5),
            r("litread", "primary", 4),
            r("math", "primary", 4),
            r("world", "primary", 2),
            r("music", "music", 1),
            r("art", "primary", 1),
            r("tech", "primary", 1),
            r("pe", "pe", 2),
        ],
        2..=4 => {
            let mut v = vec![
                r("rus", "primary", 5),
                r("litread", "primary", 4),
                r("math", "primary", 4),
                r("world", "primary", 2),
                r("eng", "eng", 2),
                r("music", "music", 1),
                r("art", "primary", 1),
                r("tech", "primary", 1),
                r("pe", "pe", 2),
            ];
            if grade == 4 {
                v.push(r("orkse", "primary", 1));
            }
            v
        }
        5 | 6 => {
            let mut v = vec![
                r("rus", "rus", if grade == 5 { 5 } else { 6 }),
                r("lit", "rus", 3),
                r("eng", "eng", 3),
                r("math", "math", 5),
                r("hist", "hist", 2),
                r("bio", "bio", 1),
                r("geo", "geo", 1),
                r("music", "music", 1),
                r("art", "music", 1),
                r("tech", "tech", 2),
                r("pe", "pe", 2),
            ];
            if grade == 6 {
                v.push(r("soc", "hist", 1));
            }
            v
        }
        7..=9 => {
            let mut v = vec![
                r("rus", "rus", if grade == 7 { 4 } else { 3 }),
                r("lit", "rus", if grade == 9 { 3 } else { 2 }),
                r("eng", "eng", 3),
                r("alg", "math", 3),
                r("geom", "math", 2),
                r("prob", "math", 1),
                r("inf", "inf", 1),
                r("hist", "hist", 2),
                r("soc", "hist", 1),
                r("geo", "geo", 2),
                r("bio", "bio", if grade == 7 { 1 } else { 2 }),
                r("phys", "phys", if grade == 9 { 3 } else { 2 }),
                r("pe", "pe", 2),
            ];
            if grade >= 8 {
                v.push(r("chem", "chem", 2));
                v.push(r("obzr", "obzr", 1));
            }
            if grade <= 8 {
                v.push(r("tech", "tech", if grade == 7 { 2 } else { 1 }));
            }
            if grade == 7 {
                v.push(r("music", "music", 1));
            }
            v
        }
        _ => vec![
            r("rus", "rus", 2),
            r("lit", "rus", 3),
            r("eng", "eng", 3),
            r("alg", "math", 4),
            r("geom", "math", 3),
            r("prob", "math", 1),
            r("inf", "inf", 1),
            r("hist", "hist", 2),
            r("soc", "hist", 2),
            r("geo", "geo", 1),
            r("bio", "bio", 1),
            r("phys", "phys", 2),
            r("chem", "chem", 1),
            r("obzr", "obzr", 1),
            r("pe", "pe", 2),
        ],
    }
}

fn max_lessons_per_day(grade: u8) -> u8 {
    match grade {
        1..=4 => 5,
        5 | 6 => 6,
        _ => 7,
    }
}

/// Темы уроков (a few per subject; a topic spans several lessons).
fn topics(subject: &str) -> &'static [&'static str] {
    match subject {
        "rus" => &[
            "Повторение изученного",
            "Морфемика и словообразование",
            "Имя существительное",
            "Имя прилагательное",
            "Глагол",
            "Правописание приставок",
            "Словосочетание",
            "Простое предложение",
        ],
        "litread" | "lit" => &[
            "Устное народное творчество",
            "А. С. Пушкин. Лирика",
            "Басни И. А. Крылова",
            "Н. В. Гоголь",
            "Л. Н. Толстой. Рассказы",
            "Стихи о природе",
            "Развитие речи: сочинение",
        ],
        "math" | "alg" => &[
            "Натуральные числа",
            "Действия с дробями",
            "Уравнения",
            "Линейная функция",
            "Степень с натуральным показателем",
            "Многочлены",
            "Решение текстовых задач",
        ],
        "geom" => &[
            "Треугольники",
            "Признаки равенства треугольников",
            "Параллельные прямые",
            "Окружность",
        ],
        "prob" => &["Таблицы и диаграммы", "Среднее арифметическое и медиана", "Случайные события"],
        "eng" => {
            &["My family", "School life", "Hobbies", "Travelling", "Present Simple", "Past Simple"]
        }
        "world" => &[
            "Природа и человек",
            "Наш край",
            "Растения и животные",
            "Безопасность дома и на улице",
        ],
        "hist" | "soc" => &[
            "Древняя Русь",
            "Раздробленность",
            "Московское государство",
            "Человек и общество",
            "Право и мораль",
        ],
        "geo" => &["Литосфера", "Гидросфера", "Атмосфера", "Карта и план местности"],
        "bio" => &["Клетка", "Ткани и органы", "Царство растений", "Экосистемы"],
        "phys" => &["Механическое движение", "Силы в природе", "Давление", "Работа и мощность"],
        "chem" => &["Вещества и их свойства", "Строение атома", "Химические реакции", "Растворы"],
        "inf" => &["Информация и её кодирование", "Алгоритмы", "Электронные таблицы"],
        "pe" => {
            &["Лёгкая атлетика", "Гимнастика", "Спортивные игры: волейбол", "Лыжная подготовка"]
        }
        "music" | "art" => {
            &["Народное искусство", "Классическая музыка", "Образы природы", "Портрет"]
        }
        "tech" => &["Технологии обработки материалов", "Проектная работа", "Робототехника"],
        "obzr" => &["Безопасность в быту", "Первая помощь", "Основы обороны государства"],
        _ => &["Введение в предмет", "Культура и традиции", "Нравственные ценности"],
    }
}

fn homework(subject: &str, n: u32) -> String {
    match subject {
        "rus" => format!("Упр. {}, {}", 100 + n * 3, 101 + n * 3),
        "math" | "alg" | "geom" | "prob" => {
            format!("№ {}, {}, {}", 200 + n * 4, 201 + n * 4, 203 + n * 4)
        }
        "lit" | "litread" => {
            format!("Читать с. {}–{}, ответить на вопросы", 20 + n * 6, 26 + n * 6)
        }
        "eng" => format!("Ex. {} p. {}, выучить слова", 1 + n % 7, 10 + n * 2),
        "pe" | "music" | "art" | "tech" => String::new(),
        _ => format!("§ {}, вопросы в конце параграфа", 1 + n / 2),
    }
}

/// Учебные периоды of the year starting on 1 September of `y`, with holidays excluded from
/// school days below.
fn quarters(y: i32) -> [(NaiveDate, NaiveDate); 4] {
    [
        (ymd(y, 9, 1), ymd(y, 10, 24)),
        (ymd(y, 11, 5), ymd(y, 12, 27)),
        (ymd(y + 1, 1, 12), ymd(y + 1, 3, 20)),
        (ymd(y + 1, 3, 30), ymd(y + 1, 5, 26)),
    ]
}

fn half_years(y: i32) -> [(NaiveDate, NaiveDate); 2] {
    [(ymd(y, 9, 1), ymd(y, 12, 27)), (ymd(y + 1, 1, 12), ymd(y + 1, 5, 26))]
}

fn is_school_day(d: NaiveDate, y: i32) -> bool {
    let holidays =
        [ymd(y, 11, 4), ymd(y + 1, 2, 23), ymd(y + 1, 3, 9), ymd(y + 1, 5, 1), ymd(y + 1, 5, 11)];
    d.weekday() != Weekday::Sat
        && d.weekday() != Weekday::Sun
        && !holidays.contains(&d)
        && quarters(y).iter().any(|(s, e)| (*s..=*e).contains(&d))
}

/// Finds a (weekday, lesson number) for each of `hours` lessons of assignment `i` of class `ci`
/// where the class and every teacher in `who` are free: a subject is spread over different days
/// and a class's day stays without gaps when possible. `None` if some hour does not fit.
fn place_hours(
    ci: usize,
    i: usize,
    hours: u32,
    max: u8,
    who: &[usize],
    class_busy: &HashSet<(usize, u8, u8)>,
    teacher_busy: &HashSet<(usize, u8, u8)>,
) -> Option<Vec<(u8, u8)>> {
    let mut taken: Vec<(u8, u8)> = Vec::new();
    let class_free = |d: u8, n: u8, taken: &[(u8, u8)]| {
        !class_busy.contains(&(ci, d, n)) && !taken.contains(&(d, n))
    };
    let teachers_free = |d: u8, n: u8| who.iter().all(|t| !teacher_busy.contains(&(*t, d, n)));
    for k in 0..hours {
        let start = ((k * 5 / hours) as usize + ci + i) % 5;
        let mut spot = None;
        'search: for pass in 0..2 {
            for dd in 0..5 {
                let day = ((start + dd) % 5) as u8 + 1;
                if pass == 0 && taken.iter().any(|(d, _)| *d == day) {
                    continue;
                }
                // Keep the day compact: only the first free number is tried.
                if let Some(n) = (1..=max).find(|n| class_free(day, *n, &taken))
                    && teachers_free(day, n)
                {
                    spot = Some((day, n));
                    break 'search;
                }
            }
        }
        let spot = spot.or_else(|| {
            (1..=5u8)
                .flat_map(|d| (1..=max).map(move |n| (d, n)))
                .find(|(d, n)| class_free(*d, *n, &taken) && teachers_free(*d, *n))
        })?;
        taken.push(spot);
    }
    Some(taken)
}

impl Gen {
    fn new(today: NaiveDate) -> Self {
        let start_year = if today.month() >= 8 { today.year() } else { today.year() - 1 };
        Gen {
            rng: StdRng::seed_from_u64(0x005a_4855_524e_414c),
            today,
            start_year,
            b: Batch::default(),
            snils: Vec::new(),
            next_snils: 112_233_000,
            families: Vec::new(),
            persons: BTreeMap::new(),
            family_prefix: "demo-parent-".into(),
        }
    }

    fn pick(&mut self, list: &[&'static str]) -> (usize, &'static str) {
        let i = self.rng.gen_range(0..list.len());
        (i, list[i])
    }

    #[allow(clippy::too_many_arguments)]
    fn add_person(
        &mut self,
        ext: String,
        last: String,
        first: &str,
        middle: &str,
        birth: NaiveDate,
        male: bool,
        phone: Option<String>,
    ) -> String {
        self.next_snils += self.rng.gen_range(1..40);
        let snils = Snils::from_number(self.next_snils);
        self.snils.push((ext.clone(), snils));
        self.persons.insert(ext.clone(), self.b.persons.len());
        self.b.persons.push(BPerson {
            external_id: ext.clone(),
            uid: uid_for(&ext),
            last_name: last,
            first_name: first.into(),
            middle_name: Some(middle.into()),
            birth_date: Some(birth),
            gender: Some(if male { "M" } else { "F" }.into()),
            snils_hmac: None,
            snils_cipher: None,
            phone,
            email: None,
        });
        ext
    }

    fn staff(
        &mut self,
        ext: &str,
        last: &str,
        first: &str,
        middle: &str,
        birth: NaiveDate,
        male: bool,
    ) -> String {
        self.add_person(ext.into(), last.into(), first, middle, birth, male, None)
    }

    fn role(&mut self, person: &str, role: &str, scope: &str) {
        self.b.staff_roles.push(BStaffRole {
            person: person.into(),
            role: role.into(),
            scope: scope.into(),
        });
    }

    fn phone(&mut self) -> String {
        format!(
            "+7 9{:02} {:03}-{:02}-{:02}",
            self.rng.gen_range(0..100),
            self.rng.gen_range(0..1000),
            self.rng.gen_range(0..100),
            self.rng.gen_range(0..100)
        )
    }

    /// A family with a mother and usually a father; `births` fixes (mother, father) birth dates.
    fn new_family(&mut self, births: Option<(NaiveDate, NaiveDate)>) -> usize {
        let id = self.families.len();
        let (_, last) = self.pick(MALE_LAST);
        let (father_name, _) = self.pick(MALE_FIRST);
        let base_year = self.start_year - self.rng.gen_range(32..46);
        let mut parents = Vec::new();
        let fixed = births.is_some();
        let (mother_birth, father_birth) = births.unwrap_or_else(|| {
            let m = ymd(base_year, 1, 1) + Duration::days(self.rng.gen_range(0..365));
            let f = ymd(base_year - self.rng.gen_range(0..5), 1, 1)
                + Duration::days(self.rng.gen_range(0..365));
            (m, f)
        });
        if fixed || self.rng.gen_bool(0.93) {
            let (_, first) = self.pick(FEMALE_FIRST);
            let (_, middle) = self.pick(PATRONYMIC_F);
            let phone = Some(self.phone());
            let ext = format!("{}{id}-m", self.family_prefix);
            parents.push(self.add_person(
                ext,
                format!("{last}а"),
                first,
                middle,
                mother_birth,
                false,
                phone,
            ));
        }
        if fixed || parents.is_empty() || self.rng.gen_bool(0.82) {
            let first = MALE_FIRST[father_name];
            let (_, middle) = self.pick(PATRONYMIC_M);
            let phone = Some(self.phone());
            let ext = format!("{}{id}-f", self.family_prefix);
            parents.push(self.add_person(
                ext,
                last.into(),
                first,
                middle,
                father_birth,
                true,
                phone,
            ));
        }
        self.families.push(Family { last, father_name, parents, children: 0 });
        id
    }

    fn school(&mut self, spec: SchoolSpec, forced: &BTreeMap<(u8, char), Forced>) -> SchoolOut {
        let y = self.start_year;
        let s = spec.ext.as_str();
        self.b.schools.push(BSchool {
            external_id: s.into(),
            municipality: spec.muni.clone(),
            name: spec.name.clone(),
            short_name: spec.short.clone(),
        });
        let year = format!("{s}-{y}");
        let (year_start, year_end) = (ymd(y, 9, 1), ymd(y + 1, 5, 31));
        self.b.years.push(BYear {
            external_id: year.clone(),
            school: s.into(),
            name: format!("{y}/{}", y + 1),
            starts_on: year_start,
            ends_on: year_end,
        });
        let closed = |end: NaiveDate| {
            let close = end + Duration::days(2);
            (close <= self.today).then_some(close)
        };
        let mut periods = Vec::new();
        for (i, (a, e)) in quarters(y).iter().enumerate() {
            periods.push(BPeriod {
                external_id: format!("{year}-q{}", i + 1),
                year: year.clone(),
                scheme: "quarters".into(),
                number: i as u8 + 1,
                starts_on: *a,
                ends_on: *e,
                closed_on: closed(*e),
            });
        }
        for (i, (a, e)) in half_years(y).iter().enumerate() {
            periods.push(BPeriod {
                external_id: format!("{year}-h{}", i + 1),
                year: year.clone(),
                scheme: "half_years".into(),
                number: i as u8 + 1,
                starts_on: *a,
                ends_on: *e,
                closed_on: closed(*e),
            });
        }
        self.b.periods.extend(periods);
        for (code, name, grading) in SUBJECTS {
            self.b.subjects.push(BSubject {
                external_id: format!("{s}-{code}"),
                school: s.into(),
                name: (*name).into(),
                grading: (*grading).into(),
            });
        }
        for (code, name, weight) in WORK_TYPES {
            self.b.work_types.push(BWorkType {
                school: s.into(),
                code: (*code).into(),
                name: (*name).into(),
                weight: *weight,
            });
        }

        // Students and families.
        let mut classes = Vec::new();
        for (grade, letter) in &spec.classes {
            let (grade, letter) = (*grade, *letter);
            let ext = format!("{s}-{grade}{letter}");
            let size = self.rng.gen_range(spec.class_size.0..=spec.class_size.1);
            let mut students = Vec::new();
            let mut families = Vec::new();
            for i in 0..size {
                let forced_here = if i == 0 { forced.get(&(grade, letter)) } else { None };
                let family = match forced_here {
                    Some(f) => f.family,
                    None if self.rng.gen_bool(0.05) && !self.families.is_empty() => {
                        let f = self.rng.gen_range(0..self.families.len());
                        if self.families[f].children < 3 { f } else { self.new_family(None) }
                    }
                    None => self.new_family(None),
                };
                let male = forced_here.map_or_else(|| self.rng.gen_bool(0.5), |f| f.male);
                let birth = forced_here.map_or_else(
                    || {
                        ymd(y - 6 - i32::from(grade), 9, 1)
                            + Duration::days(self.rng.gen_range(0..365))
                    },
                    |f| f.birth,
                );
                let fam = &self.families[family];
                let (last, patronymic_idx) = (fam.last, fam.father_name);
                let last = if male { last.to_string() } else { format!("{last}а") };
                let middle =
                    if male { PATRONYMIC_M[patronymic_idx] } else { PATRONYMIC_F[patronymic_idx] };
                let (_, first) = self.pick(if male { MALE_FIRST } else { FEMALE_FIRST });
                let st = format!("{ext}-s{i}");
                let phone = (grade >= 7).then(|| self.phone());
                self.add_person(st.clone(), last, first, middle, birth, male, phone);
                self.families[family].children += 1;
                for p in self.families[family].parents.clone() {
                    self.b.guardianships.push(BGuardianship { parent: p, child: st.clone() });
                }
                let departed = forced_here.is_some_and(|f| f.departed);
                self.b.enrolments.push(BEnrolment {
                    external_id: format!("{st}-enr"),
                    student: st.clone(),
                    class: ext.clone(),
                    admitted_on: year_start,
                    departed_on: departed.then(|| ymd(y, 10, 15)),
                    departure_kind: departed.then(|| "transfer".into()),
                    departure_reason: departed
                        .then(|| "Перевод в другую школу в связи с переездом".into()),
                });
                students.push(st);
                families.push(family);
            }
            classes.push(ClassOut {
                ext,
                name: format!("{grade}{letter}"),
                grade,
                students,
                families,
                class_teacher: String::new(),
            });
        }

        // Teachers: a homeroom teacher per primary class, subject teachers by pool and load.
        let mut teachers: Vec<Teacher> = Vec::new();
        let mut assignments: Vec<Planned> = Vec::new();
        for (ci, class) in classes.iter().enumerate() {
            let mut homeroom = None;
            for (ri, req) in curriculum(class.grade).into_iter().enumerate() {
                let parts: &[Option<&str>] =
                    if req.groups { &[Some("1"), Some("2")] } else { &[None] };
                let mut placed = Vec::new();
                for part in parts {
                    let t = if req.pool == "primary" {
                        match homeroom {
                            Some(t) => t,
                            None => {
                                let t = self.teacher(&mut teachers, s, "primary");
                                homeroom = Some(t);
                                t
                            }
                        }
                    } else {
                        // Both halves of a split class need different teachers at the same time.
                        let taken: Vec<usize> = placed.iter().map(|(_, t)| *t).collect();
                        let found = teachers
                            .iter()
                            .enumerate()
                            .filter(|(i, t)| {
                                t.pool == req.pool && t.load + req.hours <= 24 && !taken.contains(i)
                            })
                            .min_by_key(|(_, t)| t.load)
                            .map(|(i, _)| i);
                        match found {
                            Some(t) => t,
                            None => self.teacher(&mut teachers, s, req.pool),
                        }
                    };
                    teachers[t].load += req.hours;
                    let group = part.map(|n| format!("{}-g{n}", class.ext));
                    let aext = match part {
                        Some(n) => format!("{}-{}-g{n}", class.ext, req.subject),
                        None => format!("{}-{}", class.ext, req.subject),
                    };
                    self.b.assignments.push(BAssignment {
                        external_id: aext.clone(),
                        teacher: teachers[t].ext.clone(),
                        class: class.ext.clone(),
                        group,
                        subject: format!("{s}-{}", req.subject),
                    });
                    placed.push((aext, t));
                }
                let _ = ri;
                assignments.push((ci, placed, req.hours, req.subject));
            }
        }
        // Groups for split subjects.
        for class in &classes {
            if class.grade >= 2 {
                let half = class.students.len().div_ceil(2);
                for (n, members) in [(1, &class.students[..half]), (2, &class.students[half..])] {
                    self.b.groups.push(BGroup {
                        external_id: format!("{}-g{n}", class.ext),
                        class: class.ext.clone(),
                        name: format!("Английский язык, {n} группа"),
                        members: members.to_vec(),
                    });
                }
            }
        }
        // Class teachers: the homeroom teacher in primary school, else a teacher of the class
        // (Russian first, never the math pool so the math teacher persona stays a plain teacher).
        let mut leads: HashSet<usize> = HashSet::new();
        for (ci, class) in classes.iter_mut().enumerate() {
            let preference = [
                "primary", "rus", "hist", "eng", "bio", "geo", "chem", "phys", "inf", "pe", "tech",
            ];
            let mut chosen = None;
            'pools: for pool in preference {
                for (aci, placed, _, _) in &assignments {
                    if *aci != ci {
                        continue;
                    }
                    for (_, t) in placed {
                        if teachers[*t].pool == pool && !leads.contains(t) {
                            chosen = Some(*t);
                            break 'pools;
                        }
                    }
                }
            }
            let t = match chosen {
                Some(t) => t,
                None => self.teacher(&mut teachers, s, "rus"),
            };
            leads.insert(t);
            class.class_teacher = teachers[t].ext.clone();
        }
        for class in &classes {
            let (grade, letter) = class.name.split_at(if class.grade >= 10 { 2 } else { 1 });
            self.b.classes.push(BClass {
                external_id: class.ext.clone(),
                school: s.into(),
                year: year.clone(),
                grade: class.grade,
                letter: letter.into(),
                class_teacher: Some(class.class_teacher.clone()),
                period_scheme: if class.grade >= 10 { "half_years" } else { "quarters" }.into(),
                newly_formed: class.grade == 1 || (class.grade == 7 && letter == "В"),
            });
            let _ = grade;
        }

        // Timetable: place every hour where the class and all its teachers are free, spreading
        // a subject over different days and keeping the class's day without gaps when possible.
        let mut teacher_busy: HashSet<(usize, u8, u8)> = HashSet::new();
        let mut class_busy: HashSet<(usize, u8, u8)> = HashSet::new();
        let mut slots: Vec<Slot> = Vec::new();
        let mut order: Vec<usize> = (0..assignments.len()).collect();
        // Teachers shared between classes are placed first, while the grid is still empty; a
        // homeroom teacher only teaches their own class and fits wherever the class is free.
        order.sort_by_key(|&i| {
            let homeroom = assignments[i].1.iter().all(|(_, t)| teachers[*t].pool == "primary");
            (homeroom, assignments[i].0, std::cmp::Reverse(assignments[i].2))
        });
        for i in order {
            let (ci, hours, subject) = (assignments[i].0, assignments[i].2, assignments[i].3);
            let max = max_lessons_per_day(classes[ci].grade);
            let place = |who: &[usize], teacher_busy: &HashSet<(usize, u8, u8)>| {
                place_hours(ci, i, hours, max, who, &class_busy, teacher_busy)
            };
            let who: Vec<usize> = assignments[i].1.iter().map(|(_, t)| *t).collect();
            let mut found = place(&who, &teacher_busy).map(|spots| (who.clone(), spots));
            // The chosen teacher has no free time left where the class does: hand the class to
            // a colleague of the same subject, or hire one.
            for j in 0..who.len() {
                if found.is_some() {
                    break;
                }
                let pool = teachers[who[j]].pool;
                let colleagues: Vec<usize> = (0..teachers.len())
                    .filter(|t| {
                        teachers[*t].pool == pool
                            && !who.contains(t)
                            && teachers[*t].load + hours <= 28
                    })
                    .collect();
                for c in colleagues {
                    let mut alt = who.clone();
                    alt[j] = c;
                    if let Some(spots) = place(&alt, &teacher_busy) {
                        found = Some((alt, spots));
                        break;
                    }
                }
                if found.is_none() {
                    let mut alt = who.clone();
                    alt[j] = self.teacher(&mut teachers, s, pool);
                    found = place(&alt, &teacher_busy).map(|spots| (alt, spots));
                }
            }
            let Some((who_now, spots)) = found else {
                continue;
            };
            for (j, t) in who_now.iter().enumerate() {
                if *t != who[j] {
                    teachers[who[j]].load -= hours;
                    teachers[*t].load += hours;
                    let aext = assignments[i].1[j].0.clone();
                    if let Some(a) = self.b.assignments.iter_mut().find(|a| a.external_id == aext) {
                        a.teacher = teachers[*t].ext.clone();
                    }
                    assignments[i].1[j].1 = *t;
                }
            }
            for (day, n) in spots {
                class_busy.insert((ci, day, n));
                for t in &who_now {
                    teacher_busy.insert((*t, day, n));
                }
                slots.push((
                    classes[ci].ext.clone(),
                    ci,
                    assignments[i].1.clone(),
                    day,
                    n,
                    subject,
                ));
            }
        }
        for (_, _, placed, day, n, _) in &slots {
            for (aext, _) in placed {
                self.b.timetable.push(BSlot {
                    external_id: format!("{aext}-d{day}n{n}"),
                    assignment: aext.clone(),
                    weekday: *day,
                    lesson_number: *n,
                    room: Some(format!("{}", 100 + u32::from(n % 4) * 100 + u32::from(*day) * 3)),
                });
            }
        }

        // Замены: one in the past week, one later this week, each by a free colleague.
        let mut substitutions: BTreeMap<(String, NaiveDate), String> = BTreeMap::new();
        let week_start =
            self.today - Duration::days(i64::from(self.today.weekday().num_days_from_monday()));
        for (offset, reason) in [(-5i64, "Больничный"), (2, "Курсы повышения квалификации")]
        {
            let date = week_start + Duration::days(offset + 2);
            let day = date.weekday().number_from_monday() as u8;
            let Some((_, _, placed, _, n, _)) =
                slots.iter().find(|(_, _, p, d, _, _)| *d == day && p.len() == 1)
            else {
                continue;
            };
            let (aext, absent) = &placed[0];
            let pool = teachers[*absent].pool;
            let free = (0..teachers.len())
                .find(|t| {
                    t != absent
                        && teachers[*t].pool == pool
                        && !teacher_busy.contains(&(*t, day, *n))
                })
                .or_else(|| {
                    (0..teachers.len())
                        .find(|t| t != absent && !teacher_busy.contains(&(*t, day, *n)))
                });
            let Some(sub) = free else { continue };
            let slot = format!("{aext}-d{day}n{n}");
            self.b.substitutions.push(BSubstitution {
                slot: slot.clone(),
                date,
                substitute: teachers[sub].ext.clone(),
                reason: Some(reason.into()),
            });
            substitutions.insert((slot, date), teachers[sub].ext.clone());
        }

        self.lessons(&classes, &slots, &teachers, &substitutions, y);

        let math_teacher =
            teachers.iter().find(|t| t.pool == "math").map(|t| t.ext.clone()).unwrap_or_default();
        for t in &teachers {
            self.role(&t.ext, "teacher", s);
        }
        SchoolOut { short: spec.short.clone(), classes, math_teacher }
    }

    fn teacher(&mut self, teachers: &mut Vec<Teacher>, school: &str, pool: &'static str) -> usize {
        let male = self.rng.gen_bool(0.2);
        let (_, last) = self.pick(MALE_LAST);
        let last = if male { last.to_string() } else { format!("{last}а") };
        let (_, first) = self.pick(if male { MALE_FIRST } else { FEMALE_FIRST });
        let (_, middle) = self.pick(if male { PATRONYMIC_M } else { PATRONYMIC_F });
        let birth =
            ymd(self.rng.gen_range(1964..1999), 1, 1) + Duration::days(self.rng.gen_range(0..365));
        let ext = format!("{school}-t{}", teachers.len() + 1);
        self.add_person(ext.clone(), last, first, middle, birth, male, None);
        teachers.push(Teacher { ext, pool, load: 0 });
        teachers.len() - 1
    }

    /// Lessons from 1 September to today with topics and homework, marks (none in grade 1) and
    /// attendance, so averages, reports and the diary have something real to show.
    fn lessons(
        &mut self,
        classes: &[ClassOut],
        slots: &[Slot],
        teachers: &[Teacher],
        substitutions: &BTreeMap<(String, NaiveDate), String>,
        y: i32,
    ) {
        // Per student: ability (typical mark) and illness days.
        let mut ability: BTreeMap<&str, f64> = BTreeMap::new();
        let mut ill: HashSet<(&str, NaiveDate)> = HashSet::new();
        let mut departed: BTreeMap<&str, NaiveDate> = BTreeMap::new();
        for e in &self.b.enrolments {
            if let Some(d) = e.departed_on {
                departed.insert(e.student.as_str(), d);
            }
        }
        let departed: BTreeMap<String, NaiveDate> =
            departed.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        let mut day = ymd(y, 9, 1);
        let last_day = self.today.min(ymd(y + 1, 5, 31));
        for class in classes {
            for st in &class.students {
                ability.insert(st.as_str(), self.rng.gen_range(2.9..4.9));
                let mut d = ymd(y, 9, 1);
                while d <= last_day {
                    if self.rng.gen_bool(0.012) {
                        for k in 0..self.rng.gen_range(2..6) {
                            ill.insert((st.as_str(), d + Duration::days(k)));
                        }
                    }
                    d += Duration::days(1);
                }
            }
        }
        let mut count: BTreeMap<String, u32> = BTreeMap::new();
        let mut lessons = Vec::new();
        let mut marks = Vec::new();
        let mut attendance = Vec::new();
        let offset = Duration::hours(3);
        while day <= last_day {
            if !is_school_day(day, y) {
                day += Duration::days(1);
                continue;
            }
            let weekday = day.weekday().number_from_monday() as u8;
            for (_, ci, placed, d, n, subject) in slots {
                if *d != weekday {
                    continue;
                }
                let class = &classes[*ci];
                for (gi, (aext, t)) in placed.iter().enumerate() {
                    let k = {
                        let c = count.entry(aext.clone()).or_insert(0);
                        *c += 1;
                        *c - 1
                    };
                    let list = topics(subject);
                    let topic_name = list[(k as usize / 3) % list.len()];
                    let is_test =
                        k % 12 == 11 && !matches!(*subject, "pe" | "music" | "art" | "orkse");
                    let is_independent = k % 7 == 6 && !is_test;
                    let topic = if is_test {
                        format!("Контрольная работа по теме «{topic_name}»")
                    } else {
                        topic_name.to_string()
                    };
                    let hw = homework(subject, k);
                    let lesson = format!("{aext}-{day}-{n}");
                    lessons.push(BLesson {
                        external_id: lesson.clone(),
                        assignment: aext.clone(),
                        date: day,
                        lesson_number: *n,
                        topic: Some(topic),
                        homework: (!hw.is_empty() && self.rng.gen_bool(0.9)).then_some(hw),
                    });
                    let slot = format!("{aext}-d{d}n{n}");
                    let author = substitutions
                        .get(&(slot, day))
                        .cloned()
                        .unwrap_or_else(|| teachers[*t].ext.clone());
                    let starts = NaiveTime::from_hms_opt(8, 30, 0).unwrap_or_default()
                        + Duration::minutes(55 * i64::from(n - 1));
                    let at = (day.and_time(starts) + Duration::minutes(40) - offset)
                        .and_utc()
                        .timestamp_micros();
                    // Students of this lesson: the whole class or one half for a split subject.
                    let half = class.students.len().div_ceil(2);
                    let members: &[String] = match (placed.len(), gi) {
                        (2, 0) => &class.students[..half],
                        (2, _) => &class.students[half..],
                        _ => &class.students,
                    };
                    let mut present = Vec::new();
                    for st in members {
                        if departed.get(st).is_some_and(|d| day >= *d) {
                            continue;
                        }
                        let kind = if ill.contains(&(st.as_str(), day)) {
                            Some("ill")
                        } else {
                            match self.rng.gen_range(0..1000) {
                                0..=5 => Some("late"),
                                6..=8 => Some("absent"),
                                9..=10 => Some("valid_reason"),
                                _ => None,
                            }
                        };
                        if let Some(kind) = kind {
                            attendance.push(BAttendance {
                                lesson: lesson.clone(),
                                student: st.clone(),
                                kind: kind.into(),
                                author: author.clone(),
                            });
                        }
                        if matches!(kind, None | Some("late")) {
                            present.push(st);
                        }
                    }
                    if class.grade == 1 {
                        continue;
                    }
                    let pass_fail = *subject == "orkse";
                    let (work, chosen): (&str, Vec<&String>) = if is_test || is_independent {
                        (if is_test { "test" } else { "independent" }, present.clone())
                    } else {
                        let mut picked = Vec::new();
                        for st in &present {
                            if self.rng.gen_bool(0.16) {
                                picked.push(*st);
                            }
                        }
                        (if k % 4 == 1 { "homework" } else { "answer" }, picked)
                    };
                    if pass_fail && !(is_test || is_independent) {
                        continue;
                    }
                    for st in chosen {
                        let a = ability.get(st.as_str()).copied().unwrap_or(4.0);
                        let noise: f64 =
                            self.rng.gen_range(-1.0..1.0) + self.rng.gen_range(-0.6..0.6);
                        let value = if pass_fail {
                            if a + noise >= 2.8 { "pass" } else { "fail" }.to_string()
                        } else {
                            ((a + noise).round().clamp(2.0, 5.0) as u8).to_string()
                        };
                        marks.push(BMark {
                            external_id: format!("{lesson}-{st}"),
                            lesson: lesson.clone(),
                            student: st.clone(),
                            value,
                            work_type: work.into(),
                            comment: None,
                            author: author.clone(),
                            created_at: at,
                        });
                    }
                }
            }
            day += Duration::days(1);
        }
        self.b.lessons.extend(lessons);
        self.b.marks.extend(marks);
        self.b.attendance.extend(attendance);
    }

    fn persona(
        &self,
        id: &str,
        title: &str,
        ext: &str,
        trusted: bool,
        kids: Vec<String>,
    ) -> Persona {
        let p = &self.b.persons[self.persons[ext]];
        let snils = self.snils.iter().find(|(e, _)| e == ext).map(|(_, s)| s.clone());
        Persona {
            id: id.into(),
            title: title.into(),
            external_id: Some(ext.into()),
            last_name: p.last_name.clone(),
            first_name: p.first_name.clone(),
            middle_name: p.middle_name.clone(),
            birth_date: p.birth_date.unwrap_or_default(),
            gender: p.gender.clone().unwrap_or_default(),
            snils,
            trusted,
            email: Some(format!("{id}@demo.zhurnal.local")),
            mobile: Some("+7(900)0000000".into()),
            kids,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo() -> DemoData {
        generate(ymd(2026, 11, 23))
    }

    #[test]
    fn the_same_day_gives_the_same_demo() {
        let (a, b) = (demo(), demo());
        assert_eq!(serde_json::to_string(&a.batch).ok(), serde_json::to_string(&b.batch).ok());
        assert_eq!(uid_for("x"), uid_for("x"));
        assert_ne!(uid_for("x"), uid_for("y"));
    }

    #[test]
    fn the_main_school_has_the_promised_shape() {
        let d = demo();
        let classes: Vec<_> = d.batch.classes.iter().filter(|c| c.school == MAIN_SCHOOL).collect();
        assert_eq!(classes.len(), 25);
        assert!(classes.iter().any(|c| c.grade == 11 && c.letter == "А"));
        let main_students =
            d.batch.enrolments.iter().filter(|e| e.class.starts_with(MAIN_SCHOOL)).count();
        assert!((550..=650).contains(&main_students), "{main_students}");
        let teachers = d
            .batch
            .staff_roles
            .iter()
            .filter(|r| r.role == "teacher" && r.scope == MAIN_SCHOOL)
            .count();
        assert!((30..=55).contains(&teachers), "{teachers}");
        let parents: HashSet<&str> =
            d.batch.guardianships.iter().map(|g| g.parent.as_str()).collect();
        let ratio = d.batch.guardianships.len() as f64 / d.batch.enrolments.len() as f64;
        assert!((1.4..=1.9).contains(&ratio), "{ratio}");
        assert!(!parents.is_empty());
        assert_eq!(d.batch.enrolments.iter().filter(|e| e.departed_on.is_some()).count(), 1);
    }

    #[test]
    fn nobody_is_in_two_places_at_once() {
        let d = demo();
        let teacher_of: BTreeMap<&str, &str> = d
            .batch
            .assignments
            .iter()
            .map(|a| (a.external_id.as_str(), a.teacher.as_str()))
            .collect();
        let mut seen = HashSet::new();
        for s in &d.batch.timetable {
            let teacher = teacher_of[s.assignment.as_str()];
            assert!(
                seen.insert((teacher, s.weekday, s.lesson_number)),
                "{} double-booked",
                s.external_id
            );
        }
        // Every planned hour found a place.
        for a in &d.batch.assignments {
            let grade: u8 =
                d.batch.classes.iter().find(|c| c.external_id == a.class).map_or(0, |c| c.grade);
            let subject = a.subject.rsplit('-').next().unwrap_or_default();
            let hours =
                curriculum(grade).iter().find(|r| r.subject == subject).map_or(0, |r| r.hours);
            let placed = d.batch.timetable.iter().filter(|s| s.assignment == a.external_id).count();
            assert_eq!(placed as u32, hours, "{}", a.external_id);
        }
    }

    #[test]
    fn marks_follow_the_rules_of_the_school() {
        let d = demo();
        let grade_of: BTreeMap<&str, u8> =
            d.batch.classes.iter().map(|c| (c.external_id.as_str(), c.grade)).collect();
        let class_of: BTreeMap<&str, &str> = d
            .batch
            .assignments
            .iter()
            .map(|a| (a.external_id.as_str(), a.class.as_str()))
            .collect();
        let lesson_class: BTreeMap<&str, &str> = d
            .batch
            .lessons
            .iter()
            .map(|l| (l.external_id.as_str(), class_of[l.assignment.as_str()]))
            .collect();
        assert!(d.batch.marks.len() > 10_000, "{}", d.batch.marks.len());
        for m in &d.batch.marks {
            assert_ne!(grade_of[lesson_class[m.lesson.as_str()]], 1, "no marks in grade 1");
        }
        assert!(d.batch.lessons.iter().all(|l| l.date <= ymd(2026, 11, 23)));
        assert!(
            d.batch.lessons.iter().all(|l| l.date != ymd(2026, 11, 4)),
            "no lessons on a holiday"
        );
        let departed =
            &d.batch.enrolments.iter().find(|e| e.departed_on.is_some()).expect("departed").student;
        assert!(d.batch.marks.iter().filter(|m| &m.student == departed).all(|m| m.created_at
            < ymd(2026, 10, 15).and_hms_opt(0, 0, 0).expect("t").and_utc().timestamp_micros()));
    }

    #[test]
    fn personas_match_the_registered_people() {
        let d = demo();
        let ids: Vec<&str> = d.personas.iter().map(|p| p.id.as_str()).collect();
        for id in [
            "teacher-1",
            "parent-1",
            "student-teen-1",
            "student-child-1",
            "stranger-1",
            "departed-1",
        ] {
            assert!(ids.contains(&id), "{id}");
        }
        for p in d.personas.iter().filter(|p| p.external_id.is_some()) {
            let ext = p.external_id.as_deref().unwrap_or_default();
            let registered = d.snils.iter().find(|(e, _)| e == ext).map(|(_, s)| s);
            assert_eq!(registered, p.snils.as_ref(), "{}", p.id);
        }
        let stranger = d.personas.iter().find(|p| p.id == "stranger-1").expect("stranger");
        assert!(d.snils.iter().all(|(_, s)| Some(s) != stranger.snils.as_ref()));
        let teacher =
            d.personas.iter().find(|p| p.id == "teacher-1").and_then(|p| p.external_id.clone());
        let monday =
            d.batch
                .lessons
                .iter()
                .filter(|l| l.date == ymd(2026, 11, 23))
                .filter(|l| {
                    d.batch.assignments.iter().any(|a| {
                        a.external_id == l.assignment && Some(&a.teacher) == teacher.as_ref()
                    })
                })
                .count();
        assert!(monday >= 1);
        let all: HashSet<&String> = d.snils.iter().map(|(e, _)| e).collect();
        assert_eq!(all.len(), d.snils.len());
        let numbers: HashSet<&Snils> = d.snils.iter().map(|(_, s)| s).collect();
        assert_eq!(numbers.len(), d.snils.len(), "СНИЛС are unique");
    }
}
