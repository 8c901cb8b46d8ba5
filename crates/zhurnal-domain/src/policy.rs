//! The one authorization policy (УПД.2). Every use case calls [`authorize`] before it touches
//! personal data; the web crate never decides access on its own.
//!
//! The actor carries its relationships (own assignments, own class, own children, own school,
//! own territory) as loaded from storage; the resource carries where it sits. The decision is a
//! pure function, so the whole role × relation matrix is tested without a database.

use chrono::NaiveDate;
use serde::Serialize;
use thiserror::Error;

use crate::{AssignmentId, ClassId, MunicipalityId, PersonId, RegionId, Role, RoleScope, SchoolId};

/// What the actor wants to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// See a school's card and its list of classes (no personal data).
    ViewSchool,
    /// See a class roster: names of students (personal data).
    ViewRoster,
    /// Read a class journal of one assignment.
    ViewJournal,
    /// Enter or correct marks, attendance, topics and homework.
    EditJournal,
    /// Read a lesson's homework files (students of the class, their parents, staff).
    ViewHomework,
    /// Set period, annual and final marks.
    SetPeriodMarks,
    /// The class teacher's summary of all subjects.
    ViewClassSummary,
    /// A student's diary (дневник): marks, attendance, homework.
    ViewDiary,
    /// Parents' contacts (class teacher, school admin).
    ViewContacts,
    /// Years, periods, classes, timetable, enrolments, staff.
    ManageSchool,
    /// Reopen a closed period (an audited admin act).
    ReopenPeriod,
    /// Aggregated reports of a school or a territory.
    ViewReports,
    /// Grant or revoke staff roles.
    GrantRole,
    /// Export personal data (needs a fresh login and a reason as well).
    ExportPersonalData,
    /// Post an announcement to a class's students and parents.
    PostAnnouncement,
    /// Release held announcements and recall delivered ones (school admin, audited).
    ModerateAnnouncements,
    /// Read the audit log.
    ViewAudit,
    /// Work the incident register and the ministry report.
    ManageIncidents,
    /// Региональный мониторинг: adoption figures of a territory's schools.
    ViewMonitoring,
    /// Integration deliveries of a school or the region: status, dead letters, replay.
    ManageIntegrations,
    /// Load data from the old journal (school admin: own school; regional admin: the region).
    ImportData,
    /// See the migration register and the acts of destruction.
    ViewMigration,
    /// Destroy personal data: retention run, purge of import sources, acts of destruction.
    DestroyData,
}

impl Action {
    pub fn title(self) -> &'static str {
        match self {
            Self::ViewSchool => "просмотр школы",
            Self::ViewRoster => "просмотр списка класса",
            Self::ViewJournal => "просмотр журнала",
            Self::EditJournal => "изменение журнала",
            Self::ViewHomework => "просмотр файлов домашнего задания",
            Self::SetPeriodMarks => "выставление итоговых отметок",
            Self::ViewClassSummary => "сводка по классу",
            Self::ViewDiary => "просмотр дневника",
            Self::ViewContacts => "просмотр контактов родителей",
            Self::ManageSchool => "управление школой",
            Self::ReopenPeriod => "открытие закрытого периода",
            Self::ViewReports => "просмотр отчётов",
            Self::GrantRole => "назначение ролей",
            Self::ExportPersonalData => "выгрузка персональных данных",
            Self::PostAnnouncement => "отправка объявления",
            Self::ModerateAnnouncements => "проверка и отзыв объявлений",
            Self::ViewAudit => "просмотр журнала аудита",
            Self::ManageIncidents => "работа с инцидентами",
            Self::ViewMonitoring => "просмотр мониторинга",
            Self::ManageIntegrations => "управление интеграциями",
            Self::ImportData => "загрузка данных из прежней системы",
            Self::ViewMigration => "просмотр хода перехода и актов уничтожения",
            Self::DestroyData => "уничтожение персональных данных",
        }
    }
}

/// Where an object sits in the region → municipality → school tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Place {
    pub region: RegionId,
    pub municipality: MunicipalityId,
    pub school: SchoolId,
}

/// The object of an action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Resource {
    School(Place),
    Class { place: Place, class: ClassId },
    Assignment { place: Place, class: ClassId, assignment: AssignmentId },
    Student { place: Place, class: ClassId, student: PersonId },
    Municipality { region: RegionId, municipality: MunicipalityId },
    Region(RegionId),
}

impl Resource {
    fn place(&self) -> Option<Place> {
        match *self {
            Self::School(p) => Some(p),
            Self::Class { place, .. }
            | Self::Assignment { place, .. }
            | Self::Student { place, .. } => Some(place),
            Self::Municipality { .. } | Self::Region(_) => None,
        }
    }
    fn region(&self) -> RegionId {
        match *self {
            Self::Municipality { region, .. } | Self::Region(region) => region,
            _ => self.place().map_or(RegionId(-1), |p| p.region),
        }
    }
    fn municipality(&self) -> Option<MunicipalityId> {
        match *self {
            Self::Municipality { municipality, .. } => Some(municipality),
            _ => self.place().map(|p| p.municipality),
        }
    }
    fn class(&self) -> Option<ClassId> {
        match *self {
            Self::Class { class, .. }
            | Self::Assignment { class, .. }
            | Self::Student { class, .. } => Some(class),
            _ => None,
        }
    }
}

/// A teaching assignment the actor holds (own or as a substitute today).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Teaching {
    pub assignment: AssignmentId,
    pub class: ClassId,
    pub school: SchoolId,
}

/// A parent's link to a child; `visible_until` is the departure date when the child left.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ChildLink {
    pub child: PersonId,
    pub visible_until: Option<NaiveDate>,
}

/// Who is asking, with every relationship the policy needs.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Actor {
    pub person: PersonId,
    pub grants: Vec<(Role, RoleScope)>,
    pub teaching: Vec<Teaching>,
    /// Classes where the actor is классный руководитель.
    pub class_teacher_of: Vec<ClassId>,
    pub children: Vec<ChildLink>,
    /// The actor's own active enrolments (as a student): school and class.
    pub enrolled_in: Vec<(SchoolId, ClassId)>,
}

impl Actor {
    pub fn has_role(&self, role: Role) -> bool {
        self.grants.iter().any(|(r, _)| *r == role)
    }
    fn has_school_role(&self, role: Role, school: SchoolId) -> bool {
        self.grants.contains(&(role, RoleScope::School(school)))
    }
    fn has_territory_role(&self, role: Role, resource: &Resource) -> bool {
        self.grants.iter().any(|(r, scope)| {
            *r == role
                && match *scope {
                    RoleScope::Region(region) => region == resource.region(),
                    RoleScope::Municipality(m) => resource.municipality() == Some(m),
                    RoleScope::School(s) => resource.place().is_some_and(|p| p.school == s),
                }
        })
    }
    fn teaches_class(&self, class: ClassId) -> bool {
        self.teaching.iter().any(|t| t.class == class)
    }
    fn works_in(&self, school: SchoolId) -> bool {
        self.teaching.iter().any(|t| t.school == school)
            || self.has_school_role(Role::Teacher, school)
            || self.has_school_role(Role::SchoolAdmin, school)
    }
    pub fn is_student(&self) -> bool {
        !self.enrolled_in.is_empty()
    }
    pub fn is_parent(&self) -> bool {
        !self.children.is_empty()
    }
}

/// A refusal, with the reason shown to the user and written to the audit log.
#[derive(Clone, Debug, Error, PartialEq, Eq, Serialize)]
#[error("нет доступа: {action_title} — {reason}")]
pub struct Denied {
    pub action: Action,
    pub action_title: &'static str,
    pub reason: &'static str,
}

fn deny(action: Action, reason: &'static str) -> Result<(), Denied> {
    Err(Denied { action, action_title: action.title(), reason })
}

/// Decides whether `actor` may do `action` on `resource`.
pub fn authorize(actor: &Actor, action: Action, resource: &Resource) -> Result<(), Denied> {
    use Action::*;
    let place = resource.place();
    let school = place.map(|p| p.school);
    let is_school_admin = school.is_some_and(|s| actor.has_school_role(Role::SchoolAdmin, s));
    let is_class_teacher = resource.class().is_some_and(|c| actor.class_teacher_of.contains(&c));

    let allowed = match (action, resource) {
        (ViewSchool, Resource::School(p)) => {
            is_school_admin
                || actor.works_in(p.school)
                || actor.has_territory_role(Role::MunicipalOfficer, resource)
                || actor.has_territory_role(Role::RegionalAdmin, resource)
        }
        (ViewRoster, Resource::Class { class, .. }) => {
            is_school_admin || is_class_teacher || actor.teaches_class(*class)
        }
        (ViewJournal, Resource::Assignment { assignment, .. }) => {
            is_school_admin
                || is_class_teacher
                || actor.teaching.iter().any(|t| t.assignment == *assignment)
        }
        (ViewHomework, Resource::Assignment { assignment, class, .. }) => {
            is_school_admin
                || is_class_teacher
                || actor.teaching.iter().any(|t| t.assignment == *assignment)
                || actor.enrolled_in.iter().any(|(_, c)| c == class)
        }
        // A parent reads homework through the child: the caller names the child as a
        // `Resource::Student` of the assignment's class.
        (ViewHomework, Resource::Student { student, .. }) => {
            actor.children.iter().any(|c| c.child == *student)
                || *student == actor.person
                || is_school_admin
        }
        (EditJournal | SetPeriodMarks, Resource::Assignment { assignment, .. }) => {
            actor.teaching.iter().any(|t| t.assignment == *assignment)
        }
        (ViewClassSummary | ViewContacts, Resource::Class { .. }) => {
            is_school_admin || is_class_teacher
        }
        (PostAnnouncement, Resource::Class { class, .. }) => {
            is_school_admin || is_class_teacher || actor.teaches_class(*class)
        }
        (ViewDiary, Resource::Student { student, .. }) => {
            *student == actor.person
                || actor.children.iter().any(|c| c.child == *student)
                || is_class_teacher
                || is_school_admin
        }
        (ModerateAnnouncements, Resource::School(_)) => is_school_admin,
        (
            ManageSchool | ReopenPeriod | ExportPersonalData,
            Resource::School(_) | Resource::Class { .. },
        ) => is_school_admin,
        (ViewReports, Resource::School(_)) => {
            is_school_admin
                || actor.has_territory_role(Role::MunicipalOfficer, resource)
                || actor.has_territory_role(Role::RegionalAdmin, resource)
        }
        (ViewReports, Resource::Municipality { .. } | Resource::Region(_)) => {
            actor.has_territory_role(Role::MunicipalOfficer, resource)
                || actor.has_territory_role(Role::RegionalAdmin, resource)
        }
        (GrantRole, Resource::School(_)) => {
            is_school_admin || actor.has_territory_role(Role::RegionalAdmin, resource)
        }
        (GrantRole, Resource::Municipality { .. } | Resource::Region(_)) => {
            actor.has_territory_role(Role::RegionalAdmin, resource)
        }
        // Import area: a school admin loads and checks their school; the regional admin the
        // whole region and every school in it.
        (ImportData | ViewMigration | DestroyData, Resource::School(_)) => {
            is_school_admin || actor.has_territory_role(Role::RegionalAdmin, resource)
        }
        (ImportData | ViewMigration | DestroyData, Resource::Region(_)) => {
            actor.has_territory_role(Role::RegionalAdmin, resource)
        }
        (ViewAudit | ManageIncidents, Resource::Region(_)) => {
            actor.has_territory_role(Role::SecurityOfficer, resource)
        }
        // Area `integrations`: monitoring is for territory officials only (a school sees its
        // own deliveries through ManageIntegrations).
        (ViewMonitoring, Resource::Municipality { .. } | Resource::Region(_)) => {
            actor.has_territory_role(Role::MunicipalOfficer, resource)
                || actor.has_territory_role(Role::RegionalAdmin, resource)
        }
        (ManageIntegrations, Resource::School(_)) => is_school_admin,
        (ManageIntegrations, Resource::Region(_)) => {
            actor.has_territory_role(Role::RegionalAdmin, resource)
        }
        _ => false,
    };
    if allowed { Ok(()) } else { deny(action, reason_for(actor, action)) }
}

fn reason_for(actor: &Actor, action: Action) -> &'static str {
    match action {
        Action::EditJournal | Action::SetPeriodMarks => {
            "журнал ведёт только учитель, за которым закреплена нагрузка"
        }
        Action::ViewDiary if actor.is_parent() => "родитель видит дневники только своих детей",
        Action::ViewDiary if actor.is_student() => "ученик видит только свой дневник",
        Action::ViewAudit | Action::ManageIncidents => {
            "доступно только ответственному за информационную безопасность"
        }
        Action::ViewReports => {
            "отчёты доступны администрации школы и органам управления своей территории"
        }
        Action::ManageSchool
        | Action::ReopenPeriod
        | Action::ExportPersonalData
        | Action::ModerateAnnouncements => "доступно только администратору этой школы",
        Action::ViewMonitoring => {
            "мониторинг доступен органам управления образованием своей территории"
        }
        Action::ManageIntegrations => {
            "доступно администратору школы (и региона — по всему региону)"
        }
        Action::ImportData | Action::ViewMigration | Action::DestroyData => {
            "доступно администратору школы (своей школы) и региональному администратору"
        }
        Action::PostAnnouncement => {
            "объявления отправляют только учителя и классные руководители своим классам"
        }
        _ => "этот объект не относится к вашей школе, классу или семье",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REGION: RegionId = RegionId(1);
    const MUNI: MunicipalityId = MunicipalityId(10);
    const OTHER_MUNI: MunicipalityId = MunicipalityId(11);
    const SCHOOL: SchoolId = SchoolId(100);
    const OTHER_SCHOOL: SchoolId = SchoolId(101);
    const CLASS: ClassId = ClassId(1000);
    const OTHER_CLASS: ClassId = ClassId(1001);
    const ASSIGNMENT: AssignmentId = AssignmentId(5000);
    const OTHER_ASSIGNMENT: AssignmentId = AssignmentId(5001);
    const CHILD: PersonId = PersonId(7);
    const OTHER_CHILD: PersonId = PersonId(8);

    fn place(school: SchoolId) -> Place {
        Place {
            region: REGION,
            municipality: if school == SCHOOL { MUNI } else { OTHER_MUNI },
            school,
        }
    }

    fn teacher() -> Actor {
        Actor {
            person: PersonId(1),
            grants: vec![(Role::Teacher, RoleScope::School(SCHOOL))],
            teaching: vec![Teaching { assignment: ASSIGNMENT, class: CLASS, school: SCHOOL }],
            ..Actor::default()
        }
    }

    fn parent() -> Actor {
        Actor {
            person: PersonId(2),
            children: vec![ChildLink { child: CHILD, visible_until: None }],
            ..Actor::default()
        }
    }

    fn journal(assignment: AssignmentId, class: ClassId) -> Resource {
        Resource::Assignment { place: place(SCHOOL), class, assignment }
    }

    fn diary(student: PersonId, class: ClassId) -> Resource {
        Resource::Student { place: place(SCHOOL), class, student }
    }

    #[test]
    fn a_teacher_edits_only_their_own_assignment() {
        assert!(authorize(&teacher(), Action::EditJournal, &journal(ASSIGNMENT, CLASS)).is_ok());
        assert!(
            authorize(&teacher(), Action::EditJournal, &journal(OTHER_ASSIGNMENT, CLASS)).is_err()
        );
    }

    #[test]
    fn a_class_teacher_reads_every_journal_of_the_class_but_edits_none() {
        let ct = Actor { person: PersonId(3), class_teacher_of: vec![CLASS], ..Actor::default() };
        assert!(authorize(&ct, Action::ViewJournal, &journal(OTHER_ASSIGNMENT, CLASS)).is_ok());
        assert!(authorize(&ct, Action::EditJournal, &journal(OTHER_ASSIGNMENT, CLASS)).is_err());
        assert!(
            authorize(
                &ct,
                Action::ViewClassSummary,
                &Resource::Class { place: place(SCHOOL), class: CLASS }
            )
            .is_ok()
        );
        assert!(
            authorize(
                &ct,
                Action::ViewClassSummary,
                &Resource::Class { place: place(SCHOOL), class: OTHER_CLASS }
            )
            .is_err()
        );
    }

    #[test]
    fn homework_files_are_for_the_class_its_families_and_staff() {
        let student =
            Actor { person: CHILD, enrolled_in: vec![(SCHOOL, CLASS)], ..Actor::default() };
        assert!(authorize(&student, Action::ViewHomework, &journal(ASSIGNMENT, CLASS)).is_ok());
        assert!(
            authorize(&student, Action::ViewHomework, &journal(ASSIGNMENT, OTHER_CLASS)).is_err()
        );
        assert!(authorize(&teacher(), Action::ViewHomework, &journal(ASSIGNMENT, CLASS)).is_ok());
        assert!(
            authorize(&teacher(), Action::ViewHomework, &journal(OTHER_ASSIGNMENT, OTHER_CLASS))
                .is_err()
        );
        assert!(authorize(&parent(), Action::ViewHomework, &diary(CHILD, CLASS)).is_ok());
        assert!(authorize(&parent(), Action::ViewHomework, &diary(OTHER_CHILD, CLASS)).is_err());
        assert!(authorize(&parent(), Action::ViewHomework, &journal(ASSIGNMENT, CLASS)).is_err());
    }

    #[test]
    fn only_the_school_admin_reopens_a_period() {
        let admin = Actor {
            person: PersonId(4),
            grants: vec![(Role::SchoolAdmin, RoleScope::School(SCHOOL))],
            ..Actor::default()
        };
        let school = Resource::School(place(SCHOOL));
        assert!(authorize(&admin, Action::ReopenPeriod, &school).is_ok());
        assert!(authorize(&teacher(), Action::ReopenPeriod, &school).is_err());
        assert!(
            authorize(&admin, Action::ReopenPeriod, &Resource::School(place(OTHER_SCHOOL)))
                .is_err()
        );
    }

    #[test]
    fn a_parent_sees_only_their_own_children() {
        assert!(authorize(&parent(), Action::ViewDiary, &diary(CHILD, CLASS)).is_ok());
        let err = authorize(&parent(), Action::ViewDiary, &diary(OTHER_CHILD, CLASS))
            .expect_err("denied");
        assert_eq!(err.reason, "родитель видит дневники только своих детей");
        assert!(
            authorize(
                &parent(),
                Action::ViewRoster,
                &Resource::Class { place: place(SCHOOL), class: CLASS }
            )
            .is_err()
        );
    }

    #[test]
    fn a_student_sees_only_their_own_diary() {
        let s = Actor { person: CHILD, enrolled_in: vec![(SCHOOL, CLASS)], ..Actor::default() };
        assert!(authorize(&s, Action::ViewDiary, &diary(CHILD, CLASS)).is_ok());
        assert!(authorize(&s, Action::ViewDiary, &diary(OTHER_CHILD, CLASS)).is_err());
    }

    #[test]
    fn a_school_admin_is_confined_to_their_school() {
        let admin = Actor {
            person: PersonId(4),
            grants: vec![(Role::SchoolAdmin, RoleScope::School(SCHOOL))],
            ..Actor::default()
        };
        assert!(authorize(&admin, Action::ManageSchool, &Resource::School(place(SCHOOL))).is_ok());
        assert!(
            authorize(&admin, Action::ManageSchool, &Resource::School(place(OTHER_SCHOOL)))
                .is_err()
        );
        assert!(
            authorize(
                &admin,
                Action::ViewRoster,
                &Resource::Class { place: place(SCHOOL), class: CLASS }
            )
            .is_ok()
        );
        assert!(authorize(&admin, Action::EditJournal, &journal(ASSIGNMENT, CLASS)).is_err());
    }

    #[test]
    fn territory_officials_see_aggregates_of_their_territory_only() {
        let muni = Actor {
            person: PersonId(5),
            grants: vec![(Role::MunicipalOfficer, RoleScope::Municipality(MUNI))],
            ..Actor::default()
        };
        assert!(authorize(&muni, Action::ViewReports, &Resource::School(place(SCHOOL))).is_ok());
        assert!(
            authorize(&muni, Action::ViewReports, &Resource::School(place(OTHER_SCHOOL))).is_err()
        );
        assert!(
            authorize(
                &muni,
                Action::ViewRoster,
                &Resource::Class { place: place(SCHOOL), class: CLASS }
            )
            .is_err()
        );
        assert!(authorize(&muni, Action::ViewDiary, &diary(CHILD, CLASS)).is_err());
        let region = Actor {
            person: PersonId(6),
            grants: vec![(Role::RegionalAdmin, RoleScope::Region(REGION))],
            ..Actor::default()
        };
        assert!(authorize(&region, Action::ViewReports, &Resource::Region(REGION)).is_ok());
        assert!(authorize(&region, Action::ViewReports, &Resource::Region(RegionId(2))).is_err());
        assert!(authorize(&region, Action::ViewDiary, &diary(CHILD, CLASS)).is_err());
    }

    #[test]
    fn the_security_officer_reads_audit_but_never_edits_marks() {
        let so = Actor {
            person: PersonId(9),
            grants: vec![(Role::SecurityOfficer, RoleScope::Region(REGION))],
            ..Actor::default()
        };
        assert!(authorize(&so, Action::ViewAudit, &Resource::Region(REGION)).is_ok());
        assert!(authorize(&so, Action::EditJournal, &journal(ASSIGNMENT, CLASS)).is_err());
        assert!(authorize(&teacher(), Action::ViewAudit, &Resource::Region(REGION)).is_err());
    }

    #[test]
    fn nobody_without_relations_gets_anything() {
        let nobody = Actor { person: PersonId(99), ..Actor::default() };
        for action in [
            Action::ViewSchool,
            Action::ViewRoster,
            Action::ViewJournal,
            Action::ViewDiary,
            Action::ManageSchool,
            Action::ViewReports,
        ] {
            for r in [
                Resource::School(place(SCHOOL)),
                Resource::Class { place: place(SCHOOL), class: CLASS },
                journal(ASSIGNMENT, CLASS),
                diary(CHILD, CLASS),
            ] {
                assert!(authorize(&nobody, action, &r).is_err(), "{action:?} on {r:?}");
            }
        }
    }

    #[test]
    fn announcements_go_to_own_classes_and_only_the_admin_moderates() {
        let class = |c| Resource::Class { place: place(SCHOOL), class: c };
        assert!(authorize(&teacher(), Action::PostAnnouncement, &class(CLASS)).is_ok());
        let err = authorize(&teacher(), Action::PostAnnouncement, &class(OTHER_CLASS))
            .expect_err("not their class");
        assert!(err.reason.contains("своим классам"));
        let ct =
            Actor { person: PersonId(3), class_teacher_of: vec![OTHER_CLASS], ..Actor::default() };
        assert!(authorize(&ct, Action::PostAnnouncement, &class(OTHER_CLASS)).is_ok());
        assert!(authorize(&parent(), Action::PostAnnouncement, &class(CLASS)).is_err());
        let admin = Actor {
            person: PersonId(4),
            grants: vec![(Role::SchoolAdmin, RoleScope::School(SCHOOL))],
            ..Actor::default()
        };
        let school = Resource::School(place(SCHOOL));
        assert!(authorize(&admin, Action::ModerateAnnouncements, &school).is_ok());
        assert!(
            authorize(
                &admin,
                Action::ModerateAnnouncements,
                &Resource::School(place(OTHER_SCHOOL))
            )
            .is_err()
        );
        assert!(authorize(&teacher(), Action::ModerateAnnouncements, &school).is_err());
        assert!(authorize(&ct, Action::ViewContacts, &class(OTHER_CLASS)).is_ok());
        assert!(authorize(&teacher(), Action::ViewContacts, &class(CLASS)).is_err());
    }

    // Area `integrations`.
    #[test]
    fn monitoring_is_for_territory_officials_and_integrations_for_admins() {
        let muni = |m| Resource::Municipality { region: REGION, municipality: m };
        let officer = Actor {
            person: PersonId(20),
            grants: vec![(Role::MunicipalOfficer, RoleScope::Municipality(MUNI))],
            ..Actor::default()
        };
        assert!(authorize(&officer, Action::ViewMonitoring, &muni(MUNI)).is_ok());
        assert!(authorize(&officer, Action::ViewMonitoring, &muni(OTHER_MUNI)).is_err());
        assert!(authorize(&officer, Action::ViewMonitoring, &Resource::Region(REGION)).is_err());
        let regional = Actor {
            person: PersonId(21),
            grants: vec![(Role::RegionalAdmin, RoleScope::Region(REGION))],
            ..Actor::default()
        };
        assert!(authorize(&regional, Action::ViewMonitoring, &muni(OTHER_MUNI)).is_ok());
        assert!(
            authorize(&regional, Action::ManageIntegrations, &Resource::Region(REGION)).is_ok()
        );
        let admin = Actor {
            person: PersonId(4),
            grants: vec![(Role::SchoolAdmin, RoleScope::School(SCHOOL))],
            ..Actor::default()
        };
        let err = authorize(&admin, Action::ViewMonitoring, &muni(MUNI)).expect_err("school");
        assert!(err.reason.contains("органам управления"));
        let school = Resource::School(place(SCHOOL));
        assert!(authorize(&admin, Action::ManageIntegrations, &school).is_ok());
        assert!(
            authorize(&admin, Action::ManageIntegrations, &Resource::School(place(OTHER_SCHOOL)))
                .is_err()
        );
        assert!(authorize(&teacher(), Action::ManageIntegrations, &school).is_err());
        assert!(authorize(&parent(), Action::ViewMonitoring, &Resource::Region(REGION)).is_err());
    }

    #[test]
    fn import_and_destruction_belong_to_the_school_admin_and_the_regional_admin() {
        let admin = Actor {
            person: PersonId(4),
            grants: vec![(Role::SchoolAdmin, RoleScope::School(SCHOOL))],
            ..Actor::default()
        };
        let regional = Actor {
            person: PersonId(5),
            grants: vec![(Role::RegionalAdmin, RoleScope::Region(REGION))],
            ..Actor::default()
        };
        let school = Resource::School(place(SCHOOL));
        let other = Resource::School(place(OTHER_SCHOOL));
        for action in [Action::ImportData, Action::ViewMigration, Action::DestroyData] {
            assert!(authorize(&admin, action, &school).is_ok(), "{action:?}");
            assert!(authorize(&admin, action, &other).is_err(), "{action:?}: another school");
            assert!(authorize(&admin, action, &Resource::Region(REGION)).is_err());
            assert!(authorize(&regional, action, &school).is_ok());
            assert!(authorize(&regional, action, &Resource::Region(REGION)).is_ok());
            assert!(authorize(&regional, action, &Resource::Region(RegionId(2))).is_err());
            let err = authorize(&teacher(), action, &school).expect_err("a teacher never");
            assert!(err.reason.contains("региональному администратору"));
            assert!(authorize(&parent(), action, &school).is_err());
        }
    }
}
