//! Roles a person can hold. Staff roles are granted with a scope; parent and student roles come
//! from parent–child links and enrolments, never from a grant.

use serde::{Deserialize, Serialize};

use crate::{MunicipalityId, RegionId, SchoolId};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Учитель.
    Teacher,
    /// Администратор ОО (директор, завуч).
    SchoolAdmin,
    /// Специалист МОУО.
    MunicipalOfficer,
    /// Администратор региона (министерство).
    RegionalAdmin,
    /// Ответственный за информационную безопасность.
    SecurityOfficer,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Self::Teacher,
        Self::SchoolAdmin,
        Self::MunicipalOfficer,
        Self::RegionalAdmin,
        Self::SecurityOfficer,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Self::Teacher => "teacher",
            Self::SchoolAdmin => "school-admin",
            Self::MunicipalOfficer => "municipal-officer",
            Self::RegionalAdmin => "regional-admin",
            Self::SecurityOfficer => "security-officer",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.code() == code)
    }

    pub fn title(self) -> &'static str {
        match self {
            Self::Teacher => "Учитель",
            Self::SchoolAdmin => "Администратор школы",
            Self::MunicipalOfficer => "Специалист муниципалитета",
            Self::RegionalAdmin => "Администратор региона",
            Self::SecurityOfficer => "Ответственный за ИБ",
        }
    }

    /// Privileged roles are never re-activated at login and need an admin (security.md D1).
    pub fn is_privileged(self) -> bool {
        !matches!(self, Self::Teacher)
    }

    /// The kind of scope a grant of this role must carry.
    pub fn scope_kind(self) -> &'static str {
        match self {
            Self::Teacher | Self::SchoolAdmin => "school",
            Self::MunicipalOfficer => "municipality",
            Self::RegionalAdmin | Self::SecurityOfficer => "region",
        }
    }
}

/// Where a staff role applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "id")]
pub enum RoleScope {
    School(SchoolId),
    Municipality(MunicipalityId),
    Region(RegionId),
}
