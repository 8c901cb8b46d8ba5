//! School administration use cases that take more than one store call: admission with СНИЛС,
//! transfer and departure, role grants within the grantor's scope, and the year rollover.
//! Each authorizes first and audits in the same transaction as the change.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use zhurnal_domain::grants::authorize_grant;
use zhurnal_domain::policy::Resource;
use zhurnal_domain::rollover::{
    ClassFate, RolloverClass, RolloverInput, RolloverPeriod, RolloverPlan, RolloverStudent,
    plan_rollover,
};
use zhurnal_domain::{
    AcademicYearId, Action, Actor, ClassId, PeriodScheme, PersonId, Role, RoleScope, SchoolId,
    Snils, authorize,
};
use zhurnal_store::{
    AcademicYearRow, Admission, ClassRow, DepartureKind, NewAudit, NewClass, NewPeriod, NewPerson,
    NewYear, RolloverWrite, SchoolRow, StoreError,
};

use crate::login::AuditContext;
use crate::{App, AppError};

/// Who acts, for the audit record.
#[derive(Clone, Debug)]
pub struct Caller {
    pub actor: Actor,
    pub role: String,
    pub ctx: AuditContext,
}

impl Caller {
    pub fn audit(&self, at: i64, action: &str) -> NewAudit {
        self.ctx.event(at, action, "ok").actor(self.actor.person.0, self.role.clone())
    }
}

/// What the admission form carries (already trimmed; parsed here).
#[derive(Clone, Debug, Default)]
pub struct AdmissionForm {
    pub last_name: String,
    pub first_name: String,
    pub middle_name: String,
    pub birth_date: Option<NaiveDate>,
    pub gender: String,
    pub snils: String,
    pub admitted_on: Option<NaiveDate>,
}

fn invalid(msg: impl Into<String>) -> AppError {
    AppError::Invalid(msg.into())
}

impl App {
    /// The school when the actor administers it.
    pub async fn managed_school(
        &self,
        actor: &Actor,
        school: SchoolId,
    ) -> Result<SchoolRow, AppError> {
        let school = self.store.get_school(school).await?;
        authorize(actor, Action::ManageSchool, &Resource::School(school.place()))?;
        Ok(school)
    }

    /// The class and its school when the actor administers it.
    pub async fn managed_class(
        &self,
        actor: &Actor,
        class: ClassId,
    ) -> Result<(SchoolRow, ClassRow), AppError> {
        let class = self.store.get_class(class).await?;
        let school = self.store.get_school(class.school_id).await?;
        authorize(
            actor,
            Action::ManageSchool,
            &Resource::Class { place: school.place(), class: class.id },
        )?;
        Ok((school, class))
    }

    /// Archived years are read-only.
    pub async fn ensure_year_open(&self, year: AcademicYearId) -> Result<(), AppError> {
        year_open(self.store.find_year_archived_at(year).await?)
    }

    /// The year the administration works in: the open year containing today; after a
    /// rollover (today still in the archived year) the upcoming open year; else the latest
    /// open one; an archived year only when nothing else exists (shown read-only).
    pub async fn current_year(
        &self,
        school: SchoolId,
    ) -> Result<Option<AcademicYearRow>, AppError> {
        let today = self.today();
        let years = self.store.list_academic_years(school).await?;
        let mut open = Vec::new();
        for y in &years {
            if self.store.find_year_archived_at(y.id).await?.is_none() {
                open.push(y.clone());
            }
        }
        let contains = |y: &&AcademicYearRow| y.starts_on <= today && today <= y.ends_on;
        if let Some(y) = open.iter().find(contains) {
            return Ok(Some(y.clone()));
        }
        if let Some(y) = open.iter().filter(|y| y.starts_on > today).min_by_key(|y| y.starts_on) {
            return Ok(Some(y.clone()));
        }
        if let Some(y) = open.first() {
            return Ok(Some(y.clone()));
        }
        Ok(years.iter().find(contains).or(years.first()).cloned())
    }

    /// Зачисление. A valid СНИЛС is required: it is how the student (and later the parent)
    /// is matched at the ESIA login. Stored only as a keyed hash and ciphertext.
    pub async fn admit_student(
        &self,
        caller: &Caller,
        class: ClassId,
        form: &AdmissionForm,
    ) -> Result<PersonId, AppError> {
        let (school, class) = self.managed_class(&caller.actor, class).await?;
        self.ensure_year_open(class.academic_year_id).await?;
        let snils = Snils::parse(&form.snils).map_err(|e| {
            invalid(format!("СНИЛС: {e}. Проверьте номер по документу (формат 123-456-789 01); ученик не зачислен."))
        })?;
        let last = form.last_name.trim();
        let first = form.first_name.trim();
        if last.is_empty() || first.is_empty() {
            return Err(invalid("Укажите фамилию и имя ученика; ученик не зачислен."));
        }
        let birth = form.birth_date.ok_or_else(|| {
            invalid(
                "Укажите дату рождения ученика: по ней сверяется СНИЛС при входе через Госуслуги.",
            )
        })?;
        let on = form.admitted_on.unwrap_or_else(|| self.today());
        let hmac = self.vault.match_key(&snils);
        let admission = match self.store.find_person_by_snils_hmac(&hmac).await? {
            Some(existing) => {
                if existing.birth_date.is_some_and(|b| b != birth) {
                    return Err(invalid(
                        "Человек с этим СНИЛС уже зарегистрирован с другой датой рождения: проверьте СНИЛС и дату.",
                    ));
                }
                Admission::Existing(existing.id)
            }
            None => {
                let uid = uuid::Uuid::new_v4().simple().to_string();
                Admission::New(NewPerson {
                    external_id: format!("admitted-{uid}"),
                    snils_cipher: Some(self.vault.encrypt(&snils, &uid)),
                    uid,
                    last_name: last.to_string(),
                    first_name: first.to_string(),
                    middle_name: Some(form.middle_name.trim().to_string())
                        .filter(|m| !m.is_empty()),
                    birth_date: Some(birth),
                    gender: Some(form.gender.clone()).filter(|g| g == "M" || g == "F"),
                    snils_hmac: Some(hmac),
                })
            }
        };
        let audit = caller
            .audit(self.now_micros(), "student.admit")
            .target("class", class.id)
            .school(school.id.0)
            .details(serde_json::json!({ "class": class.name(), "admitted_on": on.to_string() }));
        match self.store.admit_student(&admission, class.id, on, audit).await {
            Ok((person, _)) => Ok(person),
            Err(StoreError::Conflict { .. }) => Err(invalid(
                "Этот ученик уже обучается (есть действующее зачисление): оформите перевод или выбытие.",
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Перевод в другой класс той же школы с даты.
    pub async fn transfer_student(
        &self,
        caller: &Caller,
        enrolment: i64,
        to_class: ClassId,
        on: NaiveDate,
    ) -> Result<i64, AppError> {
        let e = self.store.get_enrolment(enrolment).await?;
        let (school, from) = self.managed_class(&caller.actor, e.class_id).await?;
        let (_, to) = self.managed_class(&caller.actor, to_class).await?;
        if to.school_id != school.id {
            return Err(invalid(
                "Перевод возможен только в класс своей школы; для другой школы оформите выбытие.",
            ));
        }
        if to.id == from.id {
            return Err(invalid("Ученик уже в этом классе: выберите другой класс."));
        }
        self.ensure_year_open(to.academic_year_id).await?;
        if on < e.admitted_on {
            return Err(invalid(format!(
                "Дата перевода раньше даты зачисления ({}).",
                e.admitted_on.format("%d.%m.%Y")
            )));
        }
        let audit = caller
            .audit(self.now_micros(), "student.transfer")
            .target("enrolment", enrolment)
            .school(school.id.0)
            .details(
                serde_json::json!({ "from": from.name(), "to": to.name(), "on": on.to_string() }),
            );
        match self.store.transfer_student(enrolment, to.id, on, audit).await {
            Err(StoreError::Conflict { .. }) => {
                Err(invalid("Зачисление уже закрыто: ученик выбыл или переведён."))
            }
            other => Ok(other?),
        }
    }

    /// Выбытие с датой, видом и причиной.
    pub async fn depart_student(
        &self,
        caller: &Caller,
        enrolment: i64,
        on: NaiveDate,
        kind: DepartureKind,
        reason: &str,
    ) -> Result<(), AppError> {
        let e = self.store.get_enrolment(enrolment).await?;
        let (school, class) = self.managed_class(&caller.actor, e.class_id).await?;
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(invalid("Укажите причину выбытия (например, «переезд в другой город»)."));
        }
        if on < e.admitted_on {
            return Err(invalid(format!(
                "Дата выбытия раньше даты зачисления ({}).",
                e.admitted_on.format("%d.%m.%Y")
            )));
        }
        let audit = caller
            .audit(self.now_micros(), "student.depart")
            .target("enrolment", enrolment)
            .school(school.id.0)
            .details(serde_json::json!({ "class": class.name(), "on": on.to_string(), "kind": kind.code() }));
        match self.store.depart_student(enrolment, on, kind, reason, audit).await {
            Err(StoreError::Conflict { .. }) => {
                Err(invalid("Зачисление уже закрыто: ученик выбыл или переведён."))
            }
            other => Ok(other?),
        }
    }

    /// The resource a scope names, for the grant rule.
    pub async fn scope_resource(&self, scope: RoleScope) -> Result<Resource, AppError> {
        Ok(match scope {
            RoleScope::School(s) => Resource::School(self.store.get_school(s).await?.place()),
            RoleScope::Municipality(m) => {
                let m = self.store.get_municipality(m).await?;
                Resource::Municipality { region: m.region_id, municipality: m.id }
            }
            RoleScope::Region(r) => Resource::Region(r),
        })
    }

    /// Grants a staff role to the person with this СНИЛС (registering them when names are
    /// given and nobody has it yet). Refused above the grantor's own scope.
    pub async fn grant_role_by_snils(
        &self,
        caller: &Caller,
        snils: &str,
        names: Option<(&str, &str)>,
        role: Role,
        scope: RoleScope,
    ) -> Result<PersonId, AppError> {
        let resource = self.scope_resource(scope).await?;
        authorize_grant(&caller.actor, role, &resource)?;
        let snils =
            Snils::parse(snils).map_err(|e| invalid(format!("СНИЛС: {e}. Роль не назначена.")))?;
        let hmac = self.vault.match_key(&snils);
        let school_id = match scope {
            RoleScope::School(s) => Some(s.0),
            _ => None,
        };
        let person = match self.store.find_person_by_snils_hmac(&hmac).await? {
            Some(p) => p.id,
            None => {
                let Some((last, first)) =
                    names.filter(|(l, f)| !l.trim().is_empty() && !f.trim().is_empty())
                else {
                    return Err(invalid(
                        "Человек с таким СНИЛС не зарегистрирован: укажите фамилию и имя, чтобы зарегистрировать сотрудника.",
                    ));
                };
                let uid = uuid::Uuid::new_v4().simple().to_string();
                let p = NewPerson {
                    external_id: format!("staff-{uid}"),
                    snils_cipher: Some(self.vault.encrypt(&snils, &uid)),
                    uid,
                    last_name: last.trim().into(),
                    first_name: first.trim().into(),
                    middle_name: None,
                    birth_date: None,
                    gender: None,
                    snils_hmac: Some(hmac),
                };
                let mut audit =
                    caller.audit(self.now_micros(), "person.create").target("person", &p.uid);
                if let Some(s) = school_id {
                    audit = audit.school(s);
                }
                self.store.create_person(&p, audit).await?
            }
        };
        let mut audit = caller
            .audit(self.now_micros(), "role.grant")
            .target("person", person)
            .details(serde_json::json!({ "role": role.code(), "scope": scope }));
        if let Some(s) = school_id {
            audit = audit.school(s);
        }
        self.store.grant_role(person, role, scope, Some(caller.actor.person), audit).await?;
        Ok(person)
    }

    pub async fn revoke_role(&self, caller: &Caller, grant: i64) -> Result<(), AppError> {
        let g = self.store.get_role_grant(grant).await?;
        let resource = self.scope_resource(g.scope).await?;
        authorize_grant(&caller.actor, g.role, &resource)?;
        if g.person_id == caller.actor.person && g.role == Role::SchoolAdmin {
            return Err(invalid(
                "Нельзя снять роль администратора с самого себя: попросите другого администратора.",
            ));
        }
        let mut audit = caller
            .audit(self.now_micros(), "role.revoke")
            .target("person", g.person_id)
            .details(serde_json::json!({ "role": g.role.code(), "scope": g.scope }));
        if let RoleScope::School(s) = g.scope {
            audit = audit.school(s.0);
        }
        self.store.revoke_role(grant, audit).await?;
        Ok(())
    }

    /// The rollover plan of the school's current year.
    pub async fn rollover_plan(
        &self,
        actor: &Actor,
        school: SchoolId,
        leaving: &BTreeSet<PersonId>,
    ) -> Result<(SchoolRow, AcademicYearRow, RolloverPlan), AppError> {
        let school = self.managed_school(actor, school).await?;
        let year = self
            .current_year(school.id)
            .await?
            .ok_or_else(|| invalid("В школе нет открытого учебного года: переводить нечего."))?;
        self.ensure_year_open(year.id).await?;
        let classes = self.store.list_classes(school.id, year.id).await?;
        let on = self.today().clamp(year.starts_on, year.ends_on);
        let mut students = Vec::new();
        for c in &classes {
            for e in self.store.list_roster(c.id, on).await? {
                if e.departed_on.is_none() {
                    students.push(RolloverStudent {
                        enrolment_id: e.enrolment_id,
                        student: e.person.id,
                        class: c.id,
                    });
                }
            }
        }
        let periods = self.store.list_periods(year.id).await?;
        let input = RolloverInput {
            year_name: year.name.clone(),
            starts_on: year.starts_on,
            ends_on: year.ends_on,
            periods: periods
                .iter()
                .map(|p| RolloverPeriod {
                    scheme: p.period.scheme,
                    number: p.period.number,
                    starts_on: p.period.starts_on,
                    ends_on: p.period.ends_on,
                })
                .collect(),
            classes: classes
                .iter()
                .map(|c| RolloverClass {
                    id: c.id,
                    grade: c.grade,
                    letter: c.letter.clone(),
                    class_teacher: c.class_teacher_id,
                    scheme: c.period_scheme,
                })
                .collect(),
            students,
            leaving_after_nine: leaving.clone(),
        };
        let plan = plan_rollover(&input).map_err(|e| invalid(e.to_string()))?;
        Ok((school, year, plan))
    }

    /// The earliest day the rollover may be applied: after the year's last period.
    pub async fn rollover_opens_on(&self, year: &AcademicYearRow) -> Result<NaiveDate, AppError> {
        let periods = self.store.list_periods(year.id).await?;
        Ok(periods.iter().map(|p| p.period.ends_on).max().unwrap_or(year.ends_on).min(year.ends_on))
    }

    /// Applies the rollover in one transaction.
    pub async fn apply_rollover(
        &self,
        caller: &Caller,
        school: SchoolId,
        leaving: &BTreeSet<PersonId>,
    ) -> Result<AcademicYearId, AppError> {
        let (school, year, plan) = self.rollover_plan(&caller.actor, school, leaving).await?;
        let opens = self.rollover_opens_on(&year).await?;
        if self.today() <= opens {
            return Err(invalid(format!(
                "Переход на новый учебный год возможен после окончания последнего учебного периода ({}). Сейчас можно только посмотреть план.",
                opens.format("%d.%m.%Y")
            )));
        }
        let new_ext =
            format!("{}-{}-rollover", school.external_id, plan.new_starts_on.format("%Y"));
        let classes = plan
            .classes
            .iter()
            .filter_map(|c| match c.fate {
                ClassFate::Promoted { new_grade } => Some((
                    c.class.id,
                    NewClass {
                        school: school.id,
                        year: year.id,
                        external_id: format!("{new_ext}-{new_grade}{}", c.class.letter),
                        grade: new_grade,
                        letter: c.class.letter.clone(),
                        class_teacher: c.class.class_teacher,
                        // A class on the default scheme follows the default (10th grade: half-years).
                        scheme: if c.class.scheme == PeriodScheme::default_for_grade(c.class.grade)
                        {
                            PeriodScheme::default_for_grade(new_grade)
                        } else {
                            c.class.scheme
                        },
                        newly_formed: false,
                    },
                )),
                ClassFate::Graduates => None,
            })
            .collect();
        let moves = plan
            .classes
            .iter()
            .flat_map(|c| c.moving.iter().map(|s| (s.enrolment_id, s.class)))
            .collect();
        let departures = plan
            .classes
            .iter()
            .flat_map(|c| {
                let reason = if c.fate == ClassFate::Graduates {
                    "выпуск: среднее общее образование (11 класс)"
                } else {
                    "окончил 9 классов: основное общее образование"
                };
                c.leaving
                    .iter()
                    .map(move |s| (s.enrolment_id, DepartureKind::Graduation, reason.to_string()))
            })
            .collect();
        let write = RolloverWrite {
            old_year: year.id,
            new_year: NewYear {
                school: school.id,
                external_id: new_ext,
                name: plan.new_year_name.clone(),
                starts_on: plan.new_starts_on,
                ends_on: plan.new_ends_on,
                periods: plan
                    .new_periods
                    .iter()
                    .map(|p| NewPeriod {
                        scheme: p.scheme,
                        number: p.number,
                        starts_on: p.starts_on,
                        ends_on: p.ends_on,
                    })
                    .collect(),
            },
            classes,
            moves,
            departures,
            leave_on: plan.leave_on,
        };
        let audit = caller
            .audit(self.now_micros(), "rollover.apply")
            .target("academic_year", year.id)
            .school(school.id.0)
            .details(serde_json::json!({
                "new_year": plan.new_year_name,
                "promoted": plan.promoted_students(),
                "graduates": plan.graduates(),
                "left_after_9": plan.leavers_after_nine(),
            }));
        match self.store.apply_rollover(&write, audit).await {
            Err(StoreError::Conflict { constraint }) => Err(invalid(format!(
                "Переход не выполнен, ничего не изменено: конфликт данных ({constraint}). Возможно, год уже переведён."
            ))),
            other => Ok(other?),
        }
    }
}

/// Refuses a write to a year archived at `archived_at` (Unix µs): archived years are read-only.
pub(crate) fn year_open(archived_at: Option<i64>) -> Result<(), AppError> {
    match archived_at {
        Some(_) => Err(invalid("Учебный год в архиве: изменения невозможны.")),
        None => Ok(()),
    }
}
