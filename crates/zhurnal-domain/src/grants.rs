//! Who may grant or revoke which staff role (issue 3, item 6): a role is granted with a scope
//! of its own kind (school roles at a school, the municipal officer at a municipality, regional
//! roles at the region), and the grantor must hold [`Action::GrantRole`] on that scope. So a
//! school admin grants `teacher` and `school-admin` in their own school only, and only a
//! regional admin reaches municipalities and the region: nobody grants above their own scope.

use crate::Role;
use crate::policy::{Action, Actor, Denied, Resource, authorize};

/// Decides whether `actor` may grant or revoke `role` at `scope` (the resource the scope
/// names: a school, a municipality or the region).
pub fn authorize_grant(actor: &Actor, role: Role, scope: &Resource) -> Result<(), Denied> {
    let kind_matches = matches!(
        (role.scope_kind(), scope),
        ("school", Resource::School(_))
            | ("municipality", Resource::Municipality { .. })
            | ("region", Resource::Region(_))
    );
    if !kind_matches {
        return Err(Denied {
            action: Action::GrantRole,
            action_title: Action::GrantRole.title(),
            reason: "роль назначается только на свой уровень: учитель и администратор — в школе, специалист — в муниципалитете, администратор региона и ответственный за ИБ — в регионе",
        });
    }
    authorize(actor, Action::GrantRole, scope).map_err(|_| Denied {
        action: Action::GrantRole,
        action_title: Action::GrantRole.title(),
        reason: "нельзя назначить роль выше своего уровня или за пределами своей школы или территории",
    })
}

/// Whether the actor may grant any role anywhere: the question asked before a grant form is
/// read, so that someone without the right learns nothing about what the form expects.
pub fn may_grant_some_role(actor: &Actor) -> Result<(), Denied> {
    // The grantors of `authorize(GrantRole, …)`: a school's administrator, a region's.
    if actor.grants.iter().any(|(role, _)| matches!(role, Role::SchoolAdmin | Role::RegionalAdmin))
    {
        Ok(())
    } else {
        Err(Denied {
            action: Action::GrantRole,
            action_title: Action::GrantRole.title(),
            reason: "роли назначают администратор школы и администратор региона",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Place;
    use crate::{MunicipalityId, PersonId, RegionId, RoleScope, SchoolId};

    const PLACE: Place =
        Place { region: RegionId(1), municipality: MunicipalityId(10), school: SchoolId(100) };
    const OTHER: Place =
        Place { region: RegionId(1), municipality: MunicipalityId(11), school: SchoolId(101) };

    fn school_admin() -> Actor {
        Actor {
            person: PersonId(1),
            grants: vec![(Role::SchoolAdmin, RoleScope::School(PLACE.school))],
            ..Actor::default()
        }
    }

    fn regional_admin() -> Actor {
        Actor {
            person: PersonId(2),
            grants: vec![(Role::RegionalAdmin, RoleScope::Region(RegionId(1)))],
            ..Actor::default()
        }
    }

    #[test]
    fn a_school_admin_grants_school_roles_in_their_own_school_only() {
        let a = school_admin();
        assert!(authorize_grant(&a, Role::Teacher, &Resource::School(PLACE)).is_ok());
        assert!(authorize_grant(&a, Role::SchoolAdmin, &Resource::School(PLACE)).is_ok());
        assert!(authorize_grant(&a, Role::Teacher, &Resource::School(OTHER)).is_err());
        assert!(authorize_grant(&a, Role::RegionalAdmin, &Resource::Region(RegionId(1))).is_err());
        assert!(authorize_grant(&a, Role::RegionalAdmin, &Resource::School(PLACE)).is_err());
        let muni = Resource::Municipality { region: RegionId(1), municipality: PLACE.municipality };
        assert!(authorize_grant(&a, Role::MunicipalOfficer, &muni).is_err());
    }

    #[test]
    fn a_regional_admin_grants_any_role_in_the_region() {
        let r = regional_admin();
        assert!(authorize_grant(&r, Role::SchoolAdmin, &Resource::School(OTHER)).is_ok());
        let muni = Resource::Municipality { region: RegionId(1), municipality: OTHER.municipality };
        assert!(authorize_grant(&r, Role::MunicipalOfficer, &muni).is_ok());
        assert!(authorize_grant(&r, Role::SecurityOfficer, &Resource::Region(RegionId(1))).is_ok());
        assert!(authorize_grant(&r, Role::RegionalAdmin, &Resource::Region(RegionId(1))).is_ok());
        assert!(authorize_grant(&r, Role::RegionalAdmin, &Resource::Region(RegionId(2))).is_err());
        // The scope must be of the role's own kind.
        assert!(authorize_grant(&r, Role::Teacher, &Resource::Region(RegionId(1))).is_err());
    }

    #[test]
    fn a_teacher_grants_nothing() {
        let t = Actor {
            person: PersonId(3),
            grants: vec![(Role::Teacher, RoleScope::School(PLACE.school))],
            ..Actor::default()
        };
        assert!(authorize_grant(&t, Role::Teacher, &Resource::School(PLACE)).is_err());
    }

    #[test]
    fn only_school_and_regional_admins_may_grant_at_all() {
        assert!(may_grant_some_role(&school_admin()).is_ok());
        assert!(may_grant_some_role(&regional_admin()).is_ok());
        for role in [Role::Teacher, Role::MunicipalOfficer, Role::SecurityOfficer] {
            let a =
                Actor { grants: vec![(role, RoleScope::Region(RegionId(1)))], ..Actor::default() };
            assert!(may_grant_some_role(&a).is_err(), "{role:?}");
        }
        assert!(may_grant_some_role(&Actor::default()).is_err());
    }
}
